// IntCounts (src/policy/int-counts.ts), the open-addressing int32 multiset behind PrefixCounts' host
// tables, against a Map<number, number>: counts, results, size and contents after any sequence of adds
// and removes, including keys that all hash to the same slot, growth, and deletes down to empty.
import test from 'ava';
import fc from 'fast-check';
import { IntCounts } from '../../src/policy/int-counts.js';

/** The inverse of the hash multiplier modulo 2^32: imul(h, inv) hashes to h. */
const inverse = Number(BigInt.asUintN(32, modInverse(0x9e3779b1n, 1n << 32n)));

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/** Keys whose hash has the same top 20 bits: one home slot in any table up to 2^20 slots. */
const colliding = (i: number): number => Math.imul(((0xabcde << 12) | i) >>> 0, inverse);

test('the colliding keys do hash to one value in their top bits', (t) => {
  const tops = new Set<number>();
  for (let i = 0; i < 4096; i++) tops.add(Math.imul(colliding(i), 0x9e3779b1) >>> 12);
  t.is(tops.size, 1);
});

const keyArb = fc.oneof(
  fc.constantFrom(0, -1, 1, 0x7fffffff, -0x80000000, 0x40000000),
  fc.integer({ min: -40, max: 40 }),
  fc.integer({ min: 0, max: 63 }).map(colliding),
  fc.integer({ min: -0x80000000, max: 0x7fffffff }),
);

type Op = { add: boolean; key: number };
const opsArb = fc.array(
  fc.record({ add: fc.boolean(), key: keyArb }),
  { maxLength: 400 },
);

function check(ops: readonly Op[]): boolean {
  const c = new IntCounts();
  const ref = new Map<number, number>();
  for (const { add, key } of ops) {
    const had = ref.get(key) ?? 0;
    const got = c.bump(key, add ? 1 : -1);
    if (add) {
      ref.set(key, had + 1);
      if (got !== had + 1) return false;
    } else if (had === 0) {
      if (got !== -1) return false;
    } else {
      if (got !== had - 1) return false;
      if (had === 1) ref.delete(key);
      else ref.set(key, had - 1);
    }
    if (c.get(key) !== (ref.get(key) ?? 0) || c.size !== ref.size) return false;
  }
  for (const [k, n] of ref) if (c.get(k) !== n) return false;
  const listed = [...c.entries()].map(([k, n]) => `${k}:${n}`).sort();
  const expected = [...ref.entries()].map(([k, n]) => `${k}:${n}`).sort();
  return listed.join(',') === expected.join(',');
}

test('any sequence of adds and removes gives the counts, results and contents of a Map', (t) => {
  fc.assert(fc.property(opsArb, check), { numRuns: 3000 });
  t.pass();
});

test('adds then removes in any order, every key many times: the table empties and shrinks back', (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(keyArb, { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (keys, times, seed) => {
      const ops: Op[] = [];
      for (const key of keys) for (let i = 0; i < times; i++) ops.push({ add: true, key });
      const removes: Op[] = [];
      for (const key of keys) for (let i = 0; i < times; i++) removes.push({ add: false, key });
      // A seeded shuffle of the removals.
      let s = seed | 0;
      for (let i = removes.length - 1; i > 0; i--) {
        s = (Math.imul(s, 1103515245) + 12345) | 0;
        const j = (s >>> 0) % (i + 1);
        [removes[i], removes[j]] = [removes[j] as Op, removes[i] as Op];
      }
      return check([...ops, ...removes]);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('4096 keys on one home slot: all found, removed one by one from the middle of the chain', (t) => {
  const c = new IntCounts();
  const keys = Array.from({ length: 4096 }, (_, i) => colliding(i));
  for (const k of keys) t.is(c.bump(k, 1), 1);
  t.is(c.size, 4096);
  for (const k of keys) t.is(c.get(k), 1);
  // Every other key first (holes in the middle of the run), then the rest backwards.
  for (let i = 0; i < keys.length; i += 2) t.is(c.bump(keys[i] as number, -1), 0);
  for (let i = 1; i < keys.length; i += 2) t.is(c.get(keys[i] as number), 1);
  for (let i = keys.length - 1; i >= 1; i -= 2) t.is(c.bump(keys[i] as number, -1), 0);
  t.is(c.size, 0);
  t.is(c.capacity, 8);
  t.deepEqual([...c.entries()], []);
});

test('growth keeps every count; 200k sequential keys (pod addresses) and back to empty', (t) => {
  const c = new IntCounts();
  const base = 0x0a000000;
  for (let i = 0; i < 200_000; i++) c.bump(base + i, 1);
  for (let i = 0; i < 200_000; i += 3) c.bump(base + i, 1);
  t.is(c.size, 200_000);
  // Load stays at most 0.8.
  t.true(c.size <= c.capacity * 0.8);
  let bad = 0;
  for (let i = 0; i < 200_000; i++) if (c.get(base + i) !== (i % 3 === 0 ? 2 : 1)) bad++;
  t.is(bad, 0);
  t.is(c.get(base - 1), 0);
  t.is(c.bump(base - 1, -1), -1);
  for (let i = 0; i < 200_000; i++) c.bump(base + i, -1);
  t.is(c.size, Math.ceil(200_000 / 3));
  for (let i = 0; i < 200_000; i += 3) if (c.bump(base + i, -1) !== 0) bad++;
  t.is(bad, 0);
  t.is(c.size, 0);
  t.is(c.capacity, 8);
});

test('clear empties the table', (t) => {
  const c = new IntCounts();
  for (let i = 0; i < 100; i++) c.bump(i, 1);
  c.clear();
  t.is(c.size, 0);
  t.is(c.get(5), 0);
  t.deepEqual([...c.entries()], []);
  t.is(c.bump(5, 1), 1);
});

test('a key is taken as int32: 2^32 + 5 and 5 are one key (callers pass int32)', (t) => {
  const c = new IntCounts();
  c.bump(5, 1);
  t.is(c.get(2 ** 32 + 5), 1);
  t.is(c.get(0x80000000), c.get(-0x80000000));
});
