// NameIndex (src/inventory/name-index.ts), the sorted-chunk index of the inventory's objects and the
// incremental model's pods, against a Map keyed by "namespace/name": after a load (sorted or not,
// with repeated keys) and any sequence of sets and deletes, every key answers the same, the size is the
// Map's and values() lists the Map's values in the order of their joined keys. compareJoined against
// comparing the joined strings, namespaces and names with '/' in them included.
import test from 'ava';
import fc from 'fast-check';
import { compareJoined, NameIndex, sortByKey } from '../../src/inventory/name-index.js';

const part = fc.oneof(
  fc.constantFrom('', 'a', 'b', 'ab', 'a/b', 'a/', '/', '/a', 'a-', 'a.', 'a0', 'x/y/z', '\u00e9', '\ud83d\ude00', '\uffff', 'a\u0000'),
  fc.string({ maxLength: 4 }),
);

test('compareJoined orders as the joined strings do', (t) => {
  fc.assert(
    fc.property(part, part, part, part, (a, b, c, d) => {
      const l = `${a}/${b}`;
      const r = `${c}/${d}`;
      return Math.sign(compareJoined(a, b, c, d)) === (l < r ? -1 : l > r ? 1 : 0);
    }),
    { numRuns: 20000 },
  );
  t.is(compareJoined('a', 'b/c', 'a/b', 'c'), 0);
  t.true(compareJoined('a', 'z', 'a-b', 'a') > 0); // '/' (0x2f) sorts after '-' (0x2d)
  t.true(compareJoined('a', 'z', 'a0', 'a') < 0); // and before '0' (0x30)
});

interface Item {
  readonly ns: string;
  readonly name: string;
  readonly tag: number;
}

const itemArb = fc.record({ ns: part, name: part, tag: fc.nat(1000) });
type Op = { op: 'set'; item: Item } | { op: 'delete'; ns: string; name: string };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  itemArb.map((item) => ({ op: 'set' as const, item })),
  fc.record({ ns: part, name: part }).map((k) => ({ op: 'delete' as const, ...k })),
);

const joined = (ns: string, name: string): string => `${ns}/${name}`;

test('after a load and any sets and deletes it answers as a Map keyed by namespace/name', (t) => {
  fc.assert(
    fc.property(
      fc.array(itemArb, { maxLength: 60 }),
      fc.boolean(),
      fc.array(opArb, { maxLength: 80 }),
      fc.constantFrom(1, 2, 3, 512),
      (initial, sortFirst, ops, chunkSize) => {
        const idx = new NameIndex<Item>((v) => v.ns, (v) => v.name, chunkSize);
        const ref = new Map<string, Item>();
        const loaded = sortFirst ? [...initial].sort((x, y) => compareJoined(x.ns, x.name, y.ns, y.name)) : initial;
        idx.load(loaded);
        for (const it of loaded) ref.set(joined(it.ns, it.name), it);
        const probes = new Set<string>();
        const probeKeys: [string, string][] = [];
        const probe = (ns: string, name: string): void => {
          if (!probes.has(`${ns}\u0001${name}`)) probeKeys.push([ns, name]);
          probes.add(`${ns}\u0001${name}`);
        };
        for (const it of initial) probe(it.ns, it.name);
        const agree = (): boolean => {
          if (idx.size !== ref.size) return false;
          for (const [ns, name] of probeKeys) if (idx.get(ns, name) !== ref.get(joined(ns, name))) return false;
          const expected = [...ref.keys()].sort().map((k) => ref.get(k));
          const got = [...idx.values()];
          return got.length === expected.length && got.every((v, i) => v === expected[i]);
        };
        if (!agree()) return false;
        for (const op of ops) {
          if (op.op === 'set') {
            probe(op.item.ns, op.item.name);
            const k = joined(op.item.ns, op.item.name);
            const before = ref.get(k);
            if (idx.set(op.item) !== before) return false;
            ref.set(k, op.item);
          } else {
            probe(op.ns, op.name);
            const k = joined(op.ns, op.name);
            const before = ref.get(k);
            if (idx.delete(op.ns, op.name) !== before) return false;
            ref.delete(k);
          }
          if (!agree()) return false;
        }
        return true;
      },
    ),
    { numRuns: 1500 },
  );
  t.pass();
});

test('of repeated keys in an unsorted load the last one stays', (t) => {
  const idx = new NameIndex<Item>((v) => v.ns, (v) => v.name, 2);
  const a = { ns: 'n', name: 'p', tag: 1 };
  const b = { ns: 'n', name: 'p', tag: 2 };
  const c = { ns: 'a', name: 'z', tag: 3 };
  idx.load([a, c, b]);
  t.is(idx.size, 2);
  t.is(idx.get('n', 'p'), b);
  t.deepEqual([...idx.values()], [c, b]);
});

test('chunks split as they grow and go when emptied; 20k values set and deleted one by one', (t) => {
  const idx = new NameIndex<Item>((v) => v.ns, (v) => v.name, 4);
  const items: Item[] = [];
  for (let i = 0; i < 20_000; i++) items.push({ ns: `ns-${i % 7}`, name: `pod-${(i * 7919) % 20_000}`, tag: i });
  for (const it of items) if (idx.set(it) !== undefined) t.fail();
  t.is(idx.size, 20_000);
  t.true(idx.chunkCount >= 20_000 / 8);
  let bad = 0;
  for (const it of items) if (idx.get(it.ns, it.name) !== it) bad++;
  t.is(bad, 0);
  for (const it of items) if (idx.delete(it.ns, it.name) !== it) bad++;
  t.is(bad, 0);
  t.is(idx.size, 0);
  t.is(idx.chunkCount, 0);
  t.is(idx.get('ns-0', 'pod-0'), undefined);
  // Usable again once empty.
  t.is(idx.set(items[0] as Item), undefined);
  t.is(idx.get(items[0]?.ns ?? '', items[0]?.name ?? ''), items[0]);
});

test('a bad chunk size is a RangeError', (t) => {
  t.throws(() => new NameIndex<Item>((v) => v.ns, (v) => v.name, 0), { instanceOf: RangeError });
});

test('sortByKey equals a stable sort by the joined key, namespaces with a / in them included', (t) => {
  fc.assert(
    fc.property(fc.array(itemArb, { maxLength: 80 }), (items) => {
      const got = sortByKey(items, (v) => v.ns, (v) => v.name);
      const want = [...items].sort((x, y) => {
        const a = joined(x.ns, x.name);
        const b = joined(y.ns, y.name);
        return a < b ? -1 : a > b ? 1 : 0;
      });
      return got.length === want.length && got.every((v, i) => v === want[i]);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
