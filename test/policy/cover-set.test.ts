import test from 'ava';
import fc from 'fast-check';
import { formatPrefixesByFamily, mergePrefixes, subtractPrefixes, type Prefix } from '../../src/policy/cidr.js';
import { CoverSet, CoverSetError } from '../../src/policy/cover-set.js';

// A small corner of each family, so that inputs nest, touch and merge often.
const v4Base = 0xc0000200n; // 192.0.2.0
const v6Base = 0x20010db8n << 96n;
const prefixIn = (family: 'ipv4' | 'ipv6'): fc.Arbitrary<Prefix> => {
  const width = family === 'ipv4' ? 32 : 128;
  const base = family === 'ipv4' ? v4Base : v6Base;
  return fc.tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: width - 5, max: width })).map(([off, len]) => {
    const bits = ((base + BigInt(off)) >> BigInt(width - len)) << BigInt(width - len);
    return { family, bits, len };
  });
};
const anyPrefix = fc.oneof(prefixIn('ipv4'), prefixIn('ipv6'));
const hostIn = fc.oneof(
  fc.integer({ min: 0, max: 31 }).map((o): Prefix => ({ family: 'ipv4', bits: v4Base + BigInt(o), len: 32 })),
  fc.integer({ min: 0, max: 31 }).map((o): Prefix => ({ family: 'ipv6', bits: v6Base + BigInt(o), len: 128 })),
);

type Op = { op: 'add' | 'remove' | 'hole' | 'unhole'; p: Prefix; pick: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), p: anyPrefix, pick: fc.nat() }),
  fc.record({ op: fc.constant('remove' as const), p: anyPrefix, pick: fc.nat() }),
  fc.record({ op: fc.constant('hole' as const), p: hostIn, pick: fc.nat() }),
  fc.record({ op: fc.constant('unhole' as const), p: hostIn, pick: fc.nat() }),
);

function expected(inputs: readonly Prefix[], holes: readonly Prefix[]): { v4: string[]; v6: string[] } {
  return formatPrefixesByFamily(holes.length === 0 ? mergePrefixes(inputs) : subtractPrefixes(mergePrefixes(inputs), holes));
}

// Prefixes of lengths 8 to 32 around 10.1.2.0: a removed /8 or /16 input has more inputs possibly
// inside it than are looked up one by one (cover-set.ts descendantProbeLimit), so its descendants are
// found by the scan; a removed /24 or longer one, by the lookups.
const wideV4 = fc.tuple(fc.integer({ min: 0, max: 31 }), fc.constantFrom(8, 16, 22, 24, 26, 28, 29, 30, 31, 32, 32, 32)).map(([off, len]): Prefix => {
  const bits = ((0x0a010200n + BigInt(off)) >> BigInt(32 - len)) << BigInt(32 - len);
  return { family: 'ipv4', bits, len };
});
const wideOpArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), p: wideV4, pick: fc.nat() }),
  fc.record({ op: fc.constant('add' as const), p: wideV4, pick: fc.nat() }),
  fc.record({ op: fc.constant('remove' as const), p: wideV4, pick: fc.nat() }),
  fc.record({ op: fc.constant('hole' as const), p: wideV4.map((p) => ({ ...p, bits: p.bits + 3n * BigInt(p.len === 32 ? 0 : 1), len: 32 })), pick: fc.nat() }),
  fc.record({ op: fc.constant('unhole' as const), p: wideV4, pick: fc.nat() }),
);

test('after every add, remove, hole and unhole the elements equal a full merge minus the holes, and the changes are the difference', (t) => {
  againstFullMerge(prefixIn('ipv4'), opArb, 400);
  t.pass();
});

test('the same with nested inputs from /8 to /32 (descendants of a removed input found by lookups and by the scan)', (t) => {
  againstFullMerge(wideV4, wideOpArb, 300);
  t.pass();
});

function againstFullMerge(initialArb: fc.Arbitrary<Prefix>, ops: fc.Arbitrary<Op>, numRuns: number): void {
  fc.assert(
    fc.property(fc.array(initialArb, { maxLength: 12 }), fc.array(ops, { minLength: 1, maxLength: 60 }), (initial, ops) => {
      const set = new CoverSet();
      const inputs = [...initial];
      const holes: Prefix[] = [];
      set.load(inputs, holes);
      // A chained set that takes this one's output as its only input, with node-address holes of its own.
      const chained = new CoverSet();
      set.feeds(chained, true);
      chained.load(mergePrefixes(inputs));
      const chainedHoles: Prefix[] = [];
      let before = expected(inputs, holes);
      for (const { op, p, pick } of ops) {
        if (op === 'add') inputs.push(p);
        if (op === 'hole') {
          holes.push(p);
          set.addHole(p);
          chainedHoles.push(p);
          chained.addHole(p);
        }
        if (op === 'add') set.add(p);
        if (op === 'remove') {
          if (inputs.length === 0) continue;
          const [q] = inputs.splice(pick % inputs.length, 1);
          if (q !== undefined) set.remove(q);
        }
        if (op === 'unhole') {
          if (holes.length === 0) continue;
          const [q] = holes.splice(pick % holes.length, 1);
          if (q !== undefined) set.removeHole(q);
          const [r] = chainedHoles.splice(chainedHoles.findIndex((h) => h.family === q?.family && h.bits === q.bits), 1);
          if (r !== undefined) chained.removeHole(r);
        }
        const want = expected(inputs, holes);
        const got = set.elements();
        if (JSON.stringify(got) !== JSON.stringify(want)) return false;
        const chainedWant = expected(mergePrefixes(inputs).filter(() => true), [...holes, ...chainedHoles]);
        if (JSON.stringify(chained.elements()) !== JSON.stringify(chainedWant)) return false;
        for (const fam of ['v4', 'v6'] as const) {
          const ch = set[fam].takeChanges();
          const wantAdd = want[fam].filter((x) => !before[fam].includes(x)).sort();
          const wantRemove = before[fam].filter((x) => !want[fam].includes(x)).sort();
          if (JSON.stringify([...ch.add].sort()) !== JSON.stringify(wantAdd)) return false;
          if (JSON.stringify([...ch.remove].sort()) !== JSON.stringify(wantRemove)) return false;
        }
        before = want;
      }
      return true;
    }),
    { seed: 9, numRuns },
  );
}

test('an element array handed out never changes afterwards', (t) => {
  const set = new CoverSet();
  set.load([{ family: 'ipv4', bits: v4Base, len: 32 }]);
  const first = set.elements().v4;
  set.add({ family: 'ipv4', bits: v4Base + 1n, len: 32 });
  t.deepEqual(first, ['192.0.2.0/32']);
  t.deepEqual(set.elements().v4, ['192.0.2.0/31']);
});

test('removing what was never added is a typed error', (t) => {
  const set = new CoverSet();
  const err = t.throws(() => set.remove({ family: 'ipv4', bits: v4Base, len: 32 }));
  t.true(err instanceof CoverSetError);
  t.regex(err?.message ?? '', /192\.0\.2\.0\/32 removed but never added/);
});

// The edges of each family (block-list.ts keeps starts as 32-bit words): /0, the first and the last
// address, /1 halves, and IPv6 starts on either side of every 32-bit word boundary.
function edgePrefix(family: 'ipv4' | 'ipv6'): fc.Arbitrary<Prefix> {
  const width = family === 'ipv4' ? 32 : 128;
  const max = (1n << BigInt(width)) - 1n;
  const points = family === 'ipv4' ? [0n, 1n, max, max - 1n, 1n << 31n, (1n << 31n) - 1n] : [0n, 1n, max, max - 1n, 1n << 127n, 1n << 96n, (1n << 96n) - 1n, 1n << 64n, (1n << 64n) - 1n, 1n << 32n, (1n << 32n) - 1n];
  const lens = family === 'ipv4' ? [0, 1, 31, 32, 32, 32, 24] : [0, 1, 32, 33, 64, 95, 96, 127, 128, 128, 128];
  return fc.tuple(fc.constantFrom(...points), fc.constantFrom(...lens)).map(([bits, len]) => ({ family, bits: (bits >> BigInt(width - len)) << BigInt(width - len), len }));
}
const edgeHost = (family: 'ipv4' | 'ipv6'): fc.Arbitrary<Prefix> => edgePrefix(family).filter((p) => p.len === (family === 'ipv4' ? 32 : 128));

for (const family of ['ipv4', 'ipv6'] as const) {
  test(`${family}: /0, the first and last address and word-boundary starts give a full merge minus the holes`, (t) => {
    const ops: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('add' as const), p: edgePrefix(family), pick: fc.nat() }),
      fc.record({ op: fc.constant('remove' as const), p: edgePrefix(family), pick: fc.nat() }),
      fc.record({ op: fc.constant('hole' as const), p: edgeHost(family), pick: fc.nat() }),
      fc.record({ op: fc.constant('unhole' as const), p: edgeHost(family), pick: fc.nat() }),
    );
    againstFullMerge(edgePrefix(family), ops, 300);
    t.pass();
  });
}
