// ObjectsByKey (build-inventory.ts) stores pod and node objects by namespace and name instead of by
// "pod:NS/NAME" strings: after any sequence of adds, sets and deletes it must answer every key as a
// plain Map keyed by objectKey does, including names and namespaces with a '/' in them.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import type { KubeObject } from '../../src/api/types.js';
import { ObjectsByKey, objectKey } from '../../src/inventory/build-inventory.js';

const part = fc.constantFrom('a', 'b', 'a/b', 'b/', '/', 'x/y/z', '');
const objArb = fc.record({
  kind: fc.constantFrom('Pod', 'CiliumEndpoint', 'Node', 'CiliumNode'),
  namespace: fc.option(part, { nil: undefined }),
  name: part,
});

function object(spec: { kind: string; namespace: string | undefined; name: string }): KubeObject {
  const metadata = spec.namespace === undefined ? { name: spec.name } : { name: spec.name, namespace: spec.namespace };
  return { apiVersion: 'v1', kind: spec.kind, metadata } as unknown as KubeObject;
}

type Op = { op: 'add'; o: KubeObject } | { op: 'set'; o: KubeObject; list: boolean } | { op: 'delete'; o: KubeObject };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  objArb.map((s) => ({ op: 'add' as const, o: object(s) })),
  fc.tuple(objArb, fc.boolean()).map(([s, list]) => ({ op: 'set' as const, o: object(s), list })),
  objArb.map((s) => ({ op: 'delete' as const, o: object(s) })),
);

testProp('ObjectsByKey answers every key as a Map keyed by objectKey', [fc.array(opArb, { maxLength: 40 }), fc.array(objArb, { minLength: 1, maxLength: 20 })], (t, ops, probes) => {
  const idx = new ObjectsByKey();
  const ref = new Map<string, KubeObject | readonly KubeObject[]>();
  const keys = new Set<string>();
  for (const step of ops) {
    const k = objectKey(step.o);
    keys.add(k);
    if (step.op === 'add') {
      idx.add(step.o);
      const have = ref.get(k);
      ref.set(k, have === undefined ? step.o : Array.isArray(have) ? [...(have as KubeObject[]), step.o] : [have as KubeObject, step.o]);
    } else if (step.op === 'set') {
      // Separate arrays: add() may extend the list it holds.
      idx.set(k, step.list ? [step.o, step.o] : step.o);
      ref.set(k, step.list ? [step.o, step.o] : step.o);
    } else {
      idx.delete(k);
      ref.delete(k);
    }
  }
  for (const p of probes) keys.add(objectKey(object(p)));
  for (const k of keys) t.deepEqual(idx.get(k), ref.get(k), k);
});

test('ObjectsByKey keys a pod by the object\'s own name string', (t) => {
  const idx = new ObjectsByKey();
  const o = object({ kind: 'Pod', namespace: 'ns', name: 'p' });
  idx.add(o);
  t.is(idx.get('pod:ns/p'), o);
  t.is(idx.get('node:p'), undefined);
  idx.delete('pod:ns/p');
  t.is(idx.get('pod:ns/p'), undefined);
});

testProp(
  'ObjectsByKey.of (one sorted load) equals add() of each object in order, then answers sets and deletes the same',
  [fc.array(objArb, { maxLength: 60 }), fc.array(opArb, { maxLength: 30 }), fc.array(objArb, { minLength: 1, maxLength: 20 })],
  (t, objs, ops, probes) => {
    const list = objs.map(object);
    // Some kinds the index leaves out.
    const withOthers = [...list, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } } as unknown as KubeObject];
    const loaded = ObjectsByKey.of(withOthers);
    const added = new ObjectsByKey();
    for (const o of list) added.add(o);
    const keys = new Set(list.map(objectKey));
    for (const step of ops) {
      const k = objectKey(step.o);
      keys.add(k);
      for (const idx of [loaded, added]) {
        if (step.op === 'add') idx.add(step.o);
        else if (step.op === 'set') idx.set(k, step.list ? [step.o, step.o] : step.o);
        else idx.delete(k);
      }
    }
    for (const p of probes) keys.add(objectKey(object(p)));
    for (const k of keys) t.deepEqual(loaded.get(k), added.get(k), k);
  },
);

test('ObjectsByKey.set refuses objects of another key (a caller bug, not input)', (t) => {
  const idx = new ObjectsByKey();
  const o = object({ kind: 'Pod', namespace: 'ns', name: 'p' });
  t.throws(() => idx.set('pod:ns/q', o), { name: 'ObjectsByKeyError' });
  t.throws(() => idx.set('node:p', o), { name: 'ObjectsByKeyError' });
  t.is(idx.get('pod:ns/q'), undefined);
});

test('ObjectsByKey.of keeps 20k pods of 7 namespaces in any order, and the objects of one key as a list in order', (t) => {
  const pods: KubeObject[] = [];
  for (let i = 0; i < 20_000; i++) pods.push(object({ kind: 'Pod', namespace: `ns-${(i * 31) % 7}`, name: `pod-${(i * 7919) % 20_000}` }));
  const dup = object({ kind: 'CiliumEndpoint', namespace: 'ns-0', name: 'pod-0' });
  const first = pods.find((o) => objectKey(o) === 'pod:ns-0/pod-0');
  const idx = ObjectsByKey.of([...pods, dup]);
  let bad = 0;
  for (const o of pods) {
    const got = idx.get(objectKey(o));
    if (o === first ? !(Array.isArray(got) && got[0] === o && got[1] === dup) : got !== o) bad++;
  }
  t.is(bad, 0);
});
