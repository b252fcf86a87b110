// BlockList (src/policy/block-list.ts), CoverHalf's output blocks in typed arrays, against the sorted
// bigint/number/string arrays it replaced: after a load and any inserts and removals, every start,
// length and text and every lowerBound answer (including one past the last address) are the same, and
// a text array handed out never changes afterwards. IPv4 and IPv6, /0 and full-length blocks, starts
// that differ only in one 32-bit word, growth and shrinking.
import test from 'ava';
import fc from 'fast-check';
import { BlockList } from '../../src/policy/block-list.js';
import type { Family } from '../../src/policy/model.js';

const width = (f: Family): number => (f === 'ipv4' ? 32 : 128);

/** Starts near the edges of each 32-bit word, so that comparisons reach every word. */
function startArb(family: Family): fc.Arbitrary<bigint> {
  const w = width(family);
  const max = (1n << BigInt(w)) - 1n;
  const words = family === 'ipv4' ? [0] : [0, 32, 64, 96];
  return fc.oneof(
    fc.constantFrom(0n, max, 1n, max - 1n, 1n << BigInt(w - 1)),
    fc.tuple(fc.constantFrom(...words), fc.constantFrom(0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn), fc.bigInt({ min: 0n, max: 3n })).map(
      ([shift, v, low]) => ((v << BigInt(shift)) | low) & max,
    ),
    fc.bigInt({ min: 0n, max }),
  );
}

type Op = { op: 'insert'; bits: bigint; len: number } | { op: 'remove'; at: number } | { op: 'publish' };

function opsArb(family: Family): fc.Arbitrary<Op[]> {
  return fc.array(
    fc.oneof(
      { weight: 4, arbitrary: fc.record({ op: fc.constant('insert' as const), bits: startArb(family), len: fc.integer({ min: 0, max: width(family) }) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('remove' as const), at: fc.nat() }) },
      { weight: 1, arbitrary: fc.constant({ op: 'publish' as const }) },
    ),
    { maxLength: 120 },
  );
}

const lowerBound = (xs: readonly bigint[], x: bigint): number => {
  let i = 0;
  while (i < xs.length && (xs[i] as bigint) < x) i++;
  return i;
};

for (const family of ['ipv4', 'ipv6'] as const) {
  test(`${family}: any inserts and removals answer as sorted bigint arrays; handed-out texts never change`, (t) => {
    fc.assert(
      fc.property(fc.uniqueArray(startArb(family), { maxLength: 30 }), opsArb(family), fc.array(startArb(family), { maxLength: 10 }), (initial, ops, probes) => {
        const list = new BlockList(family);
        const sorted = [...initial].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const starts = [...sorted];
        const lens = sorted.map((_, i) => i % (width(family) + 1));
        const texts = sorted.map((b, i) => `${b}/${lens[i]}`);
        list.load(
          sorted.map((bits, i) => ({ bits, len: lens[i] as number })),
          [...texts],
        );
        const handedOut: { arr: readonly string[]; copy: string[] }[] = [];
        const agree = (): boolean => {
          if (list.length !== starts.length) return false;
          for (let i = 0; i < starts.length; i++) {
            if (list.start(i) !== starts[i] || list.len(i) !== lens[i] || list.text(i) !== texts[i]) return false;
          }
          const top = 1n << BigInt(width(family));
          for (const x of [...probes, ...starts, 0n, top, top - 1n]) if (list.lowerBound(x) !== lowerBound(starts, x)) return false;
          return handedOut.every((h) => h.arr.length === h.copy.length && h.arr.every((s, i) => s === h.copy[i]));
        };
        if (!agree()) return false;
        for (const op of ops) {
          if (op.op === 'insert') {
            const i = lowerBound(starts, op.bits);
            if (starts[i] === op.bits) continue; // starts are distinct (blocks are disjoint)
            list.insert(i, op.bits, op.len, `${op.bits}/${op.len}`);
            starts.splice(i, 0, op.bits);
            lens.splice(i, 0, op.len);
            texts.splice(i, 0, `${op.bits}/${op.len}`);
          } else if (op.op === 'remove') {
            if (starts.length === 0) continue;
            const i = op.at % starts.length;
            list.removeAt(i);
            starts.splice(i, 1);
            lens.splice(i, 1);
            texts.splice(i, 1);
          } else {
            const arr = list.texts();
            if (arr.join() !== texts.join()) return false;
            handedOut.push({ arr, copy: [...arr] });
          }
          if (!agree()) return false;
        }
        return true;
      }),
      { numRuns: 1500 },
    );
    t.pass();
  });

  test(`${family}: 5000 blocks inserted then removed: the same answers, the texts handed out once stay, back to empty`, (t) => {
    const list = new BlockList(family);
    const step = family === 'ipv4' ? 256n : 1n << 80n;
    const first = list.texts();
    t.deepEqual(first, []);
    for (let k = 0; k < 5000; k++) {
      const bits = BigInt((k * 7919) % 5000) * step;
      list.insert(list.lowerBound(bits), bits, width(family) - 8, String(bits));
    }
    const full = list.texts();
    t.is(full.length, 5000);
    let bad = 0;
    for (let k = 0; k < 5000; k++) if (list.start(k) !== BigInt(k) * step || list.lowerBound(BigInt(k) * step + 1n) !== k + 1) bad++;
    t.is(bad, 0);
    while (list.length > 0) list.removeAt(list.length > 1 ? 1 : 0);
    t.is(list.length, 0);
    t.is(full.length, 5000);
    t.deepEqual(first, []);
    t.is(list.lowerBound(0n), 0);
  });
}
