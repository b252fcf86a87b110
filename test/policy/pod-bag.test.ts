// PodBag (src/policy/pod-bag.ts), an identity's pods in the incremental model, against a Set: after
// any adds (of non-members), deletes and replaces it has the Set's members and size, crossing between
// its array and Set forms both ways.
import test from 'ava';
import fc from 'fast-check';
import { PodBag } from '../../src/policy/pod-bag.js';

type Op = { op: 'add'; v: number } | { op: 'delete'; v: number } | { op: 'replace'; old: number; v: number };
const value = fc.integer({ min: 0, max: 30 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('add' as const), v: value }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), v: value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('replace' as const), old: value, v: value }) },
);

test('any adds, deletes and replaces leave the members of a Set, in array and Set form', (t) => {
  let crossed = 0;
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 150 }), fc.constantFrom(1, 2, 4, 8, 1024), (ops, limit) => {
      const bag = new PodBag<number>(limit);
      const ref = new Set<number>();
      let wasSet = false;
      for (const o of ops) {
        if (o.op === 'add') {
          if (ref.has(o.v)) continue; // the model adds a pod once
          bag.add(o.v);
          ref.add(o.v);
        } else if (o.op === 'delete') {
          if (bag.delete(o.v) !== ref.delete(o.v)) return false;
        } else {
          if (o.old !== o.v && ref.has(o.v)) continue; // replaced by a non-member only
          const had = ref.has(o.old);
          if (bag.replace(o.old, o.v) !== had) return false;
          if (had) {
            ref.delete(o.old);
            ref.add(o.v);
          }
        }
        if (bag.isSet !== wasSet) crossed++;
        wasSet = bag.isSet;
        if (bag.size !== ref.size) return false;
        for (let v = 0; v <= 30; v++) if (bag.has(v) !== ref.has(v)) return false;
        if ([...bag].sort((a, b) => a - b).join() !== [...ref].sort((a, b) => a - b).join()) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  // The runs went between the two forms.
  t.true(crossed > 0);
});

test('an identity of 100k pods: a Set, and removing them all is back to an array', (t) => {
  const bag = new PodBag<object>();
  const pods = Array.from({ length: 100_000 }, () => ({}));
  for (const p of pods) bag.add(p);
  t.true(bag.isSet);
  t.is(bag.size, 100_000);
  for (const p of pods) bag.delete(p);
  t.false(bag.isSet);
  t.is(bag.size, 0);
  t.false(bag.has(pods[0] as object));
});

test('a bad limit is a RangeError', (t) => {
  t.throws(() => new PodBag(0), { instanceOf: RangeError });
});
