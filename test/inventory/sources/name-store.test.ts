// NameStore (name-store.ts) against the Map<name, value> it stands in for in the Kubernetes source's
// store: after any sequence of sets and deletes it holds the same values in the same (insertion) order,
// answers get/has/size the same, and every array list() gave out stays as it was when given.

import test from 'ava';
import fc from 'fast-check';
import { nameHash, NameStore } from '../../../src/inventory/sources/name-store.js';

interface V {
  readonly name: string;
  readonly rev: number;
}

// Few distinct names (so sets replace and deletes hit often), odd ones included.
const nameArb = fc.constantFrom('a', 'b', 'c', 'web-0', 'web-1', '', 'é', '\u{1F600}', '__proto__', 'constructor', 'x'.repeat(300));
const opArb = fc.oneof(
  fc.record({ set: nameArb, rev: fc.nat(99) }),
  fc.record({ del: nameArb }),
  fc.record({ list: fc.constant(true) }),
  // A burst of distinct names: the table grows, and deletes of them make the array compact.
  fc.record({ many: fc.integer({ min: 1, max: 200 }), drop: fc.boolean() }),
);

test('property: a NameStore equals a Map updated the same way; arrays given out by list() never change', (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const store = new NameStore<V>((v) => v.name);
      const ref = new Map<string, V>();
      const given: { list: readonly V[]; want: V[] }[] = [];
      let burst = 0;
      for (const op of ops) {
        if ('set' in op) {
          const v = { name: op.set, rev: op.rev };
          store.set(v);
          ref.set(v.name, v);
        } else if ('del' in op) {
          t.is(store.delete(op.del), ref.get(op.del));
          ref.delete(op.del);
        } else if ('list' in op) {
          const list = store.list();
          t.deepEqual([...list], [...ref.values()]);
          given.push({ list, want: [...ref.values()] });
        } else {
          const names = Array.from({ length: op.many }, (_, i) => `burst-${burst}-${i}`);
          burst++;
          for (const [i, name] of names.entries()) {
            const v = { name, rev: i };
            store.set(v);
            ref.set(name, v);
          }
          if (op.drop) {
            for (const name of names) {
              t.is(store.delete(name)?.name, name);
              ref.delete(name);
            }
          }
        }
        t.is(store.size, ref.size);
        t.deepEqual([...store.values()], [...ref.values()]);
        // Never more than half full: every probe ends.
        t.true(store.slotCount >= 2 * store.size, `${store.slotCount} slots for ${store.size}`);
      }
      for (const name of ['a', 'b', 'c', 'web-0', 'web-1', '', 'é', '\u{1F600}', '__proto__', 'constructor', 'x'.repeat(300), 'never']) {
        t.is(store.get(name), ref.get(name));
        t.is(store.has(name), ref.has(name));
      }
      for (const g of given) t.deepEqual([...g.list], g.want, 'a list given out stays as it was');
    }),
    { numRuns: 300 },
  );
});

test('set keeps a replaced name in its place; a deleted and re-added name goes last (Map order)', (t) => {
  const store = new NameStore<V>((v) => v.name);
  for (const name of ['a', 'b', 'c']) store.set({ name, rev: 0 });
  const before = store.list();
  store.set({ name: 'a', rev: 1 });
  t.deepEqual([...store.values()].map((v) => `${v.name}${v.rev}`), ['a1', 'b0', 'c0']);
  t.deepEqual(before.map((v) => `${v.name}${v.rev}`), ['a0', 'b0', 'c0'], 'the list given before is not changed');
  store.delete('a');
  store.set({ name: 'a', rev: 2 });
  t.deepEqual([...store.values()].map((v) => `${v.name}${v.rev}`), ['b0', 'c0', 'a2']);
  t.is(store.list(), store.list(), 'no change in between: the same array');
});

test('the table shrinks again after most names are deleted; 100k names stay fast to find', (t) => {
  const store = new NameStore<V>((v) => v.name);
  for (let i = 0; i < 100_000; i++) store.set({ name: `pod-${i}`, rev: i });
  t.is(store.size, 100_000);
  t.is(store.get('pod-77777')?.rev, 77777);
  const big = store.slotCount;
  for (let i = 0; i < 99_990; i++) store.delete(`pod-${i}`);
  store.set({ name: 'late', rev: 0 });
  t.true(store.slotCount < big / 100, `${store.slotCount} slots for ${store.size} values (${big} before)`);
  t.deepEqual(store.list().map((v) => v.name), [...Array.from({ length: 10 }, (_, i) => `pod-${99_990 + i}`), 'late']);
});

test('the name hash depends on the seed and on every code unit', (t) => {
  t.not(nameHash('pod-1', 1), nameHash('pod-1', 2));
  t.not(nameHash('pod-1', 1), nameHash('pod-2', 1));
  t.not(nameHash('ab', 7), nameHash('ba', 7));
  t.is(nameHash('pod-1', 5), nameHash('pod-1', 5));
  const hashes = new Set(Array.from({ length: 10_000 }, (_, i) => nameHash(`pod-${i}`, 12345) & 0xffff));
  // 10k names into 65536 buckets: a hash spreading them evenly leaves few shared buckets (~700 expected).
  t.true(hashes.size > 9_000, `${hashes.size} distinct low 16 bits`);
});

test('deletes and sets alternating at any size rebuild the table rarely (amortised O(1), no rebuild per change)', (t) => {
  for (const size of [7, 100, 819, 820, 821, 1638, 5000]) {
    const store = new NameStore<V>((v) => v.name);
    for (let i = 0; i < size; i++) store.set({ name: `p${i}`, rev: 0 });
    const before = store.rebuilds;
    // 20k changes, the size staying within one of `size`: each delete leaves a deleted slot behind.
    for (let i = 0; i < 10_000; i++) {
      store.delete(`p${i}`);
      store.set({ name: `p${i + size}`, rev: 0 });
    }
    t.is(store.size, size);
    const rebuilds = store.rebuilds - before;
    // A rebuild leaves at least a quarter of the size in free slots, and compacting the array
    // needs half of it to be holes: some 20k / (size / 4) rebuilds at most, never one per change.
    t.true(rebuilds <= 4 + (20_000 * 4) / size, `${rebuilds} rebuilds at size ${size}`);
    t.true(store.slotCount <= Math.max(8, size * 5), `${store.slotCount} slots at size ${size}`);
  }
});

test('a delete then a snapshot (list) moves positions without rebuilding the table; the lists before and after are right', (t) => {
  const store = new NameStore<V>((v) => v.name);
  for (let i = 0; i < 5000; i++) store.set({ name: `p${i}`, rev: 0 });
  const before = store.list();
  const rebuilds = store.rebuilds;
  for (let k = 0; k < 50; k++) {
    store.delete(`p${k * 97}`);
    const now = store.list();
    t.is(now.length, 5000 - k - 1);
    t.false(now.includes(undefined as unknown as V), 'a list has no holes');
  }
  t.is(store.rebuilds, rebuilds, 'no table rebuild for deletes and snapshots');
  t.is(before.length, 5000, 'the list given before the deletes is unchanged');
  for (let i = 0; i < 5000; i++) t.is(store.get(`p${i}`)?.name, i % 97 === 0 && i / 97 < 50 ? undefined : `p${i}`);
});

test('hostile names that all share one slot (the seed known, so a new seed is no help): the store still answers as a Map; the reseeds stop at their bound', (t) => {
  // Names whose hashes under seed 0 agree in their low 12 bits: one probe run at every table size up to 4096 slots.
  const names: string[] = [];
  for (let i = 0; names.length < 120; i++) if ((nameHash(`p-${i}`, 0) & 0xfff) === 0) names.push(`p-${i}`);
  const random = Math.random;
  Math.random = () => 0;
  try {
    const plain = new NameStore<V>((v) => v.name);
    for (let i = 0; i < names.length; i++) plain.set({ name: `q-${i}`, rev: i });
    const store = new NameStore<V>((v) => v.name);
    const ref = new Map<string, V>();
    for (const [i, name] of names.entries()) {
      const v = { name, rev: i };
      store.set(v);
      ref.set(name, v);
    }
    t.true(store.rebuilds > plain.rebuilds, `a probe run past the bound rebuilds with a new seed (${store.rebuilds} rebuilds, ${plain.rebuilds} for spread names)`);
    t.true(store.rebuilds <= plain.rebuilds + 3 * 10, `at most 3 reseeds per table size (${store.rebuilds} rebuilds)`);
    for (const name of names.slice(0, 60)) {
      t.is(store.delete(name), ref.get(name));
      ref.delete(name);
    }
    for (const name of [...names, 'never']) t.is(store.get(name), ref.get(name));
    t.deepEqual([...store.list()], [...ref.values()]);
  } finally {
    Math.random = random;
  }
});
