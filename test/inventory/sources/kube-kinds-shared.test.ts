// Label maps shared between slim objects (kube-kinds.ts sharedStringMap): the shared map always
// has exactly the content a fresh copy would have, equal maps are one frozen object, and a map
// with any difference (a value, a key, the order, a __proto__ key) is not mistaken for another.

import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { sharedStringMap, stripObject } from '../../../src/inventory/sources/kube-kinds.js';

const labelMap = fc.dictionary(fc.constantFrom('app', 'tier', 'shard', '__proto__', 'constructor', 'k\u0000', 'a"b'), fc.oneof(fc.constantFrom('web', 'db', '', 'x\u0000y'), fc.integer()), { maxKeys: 4 });

testProp('the shared map equals a plain copy of the string entries, whatever was shared before', [fc.array(labelMap, { minLength: 1, maxLength: 20 })], (t, maps) => {
  for (const m of maps) {
    const got = sharedStringMap(m);
    const want = Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === 'string'));
    t.deepEqual(got === undefined ? undefined : Object.entries(got), Object.entries(want));
    t.true(Object.isFrozen(got));
  }
});

test('equal maps are one object; a changed value, key or order is another', (t) => {
  const a = sharedStringMap({ app: 'web', tier: 'front' });
  t.is(sharedStringMap({ app: 'web', tier: 'front' }), a);
  t.not(sharedStringMap({ app: 'web', tier: 'back' }), a);
  t.not(sharedStringMap({ app: 'web', tiers: 'front' }), a);
  const reordered = sharedStringMap({ tier: 'front', app: 'web' });
  t.not(reordered, a);
  t.deepEqual(Object.keys(reordered ?? {}), ['tier', 'app']);
  // Keys and values that could run together in a naive key: still apart.
  t.not(sharedStringMap({ 'a,b': 'c' }), sharedStringMap({ a: 'b,c' }));
  const proto = sharedStringMap(JSON.parse('{"__proto__": "x"}'));
  t.true(Object.hasOwn(proto ?? {}, '__proto__'));
  t.is(proto?.['__proto__' as string], 'x');
  // Pods of one ReplicaSet share their labels through stripObject; a relabelled pod gets its own.
  const pod = (name: string, app: string) => stripObject('pod', { metadata: { name, namespace: 'ns', labels: { app, 'pod-template-hash': 'abc' } } });
  t.is(pod('p1', 'web').metadata.labels, pod('p2', 'web').metadata.labels);
  t.deepEqual(pod('p3', 'db').metadata.labels, { app: 'db', 'pod-template-hash': 'abc' });
  t.not(pod('p3', 'db').metadata.labels, pod('p1', 'web').metadata.labels);
});
