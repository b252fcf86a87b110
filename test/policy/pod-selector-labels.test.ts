// podSelectorLabels (resolve-peers.ts) is memoised per Labels object, namespace, cluster name and label
// filter: whatever was asked before, it must answer as a first call on a fresh Labels object does.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import type { LabelFilter, Labels, PodInfo } from '../../src/inventory/types.js';
import { podSelectorLabels } from '../../src/policy/resolve-peers.js';

const labelsArb = fc.dictionary(fc.constantFrom('app', 'tier', 'pod-template-hash', 'io.kubernetes.pod.namespace', 'controller-uid'), fc.constantFrom('web', 'db', 'x'));
const askArb = fc.record({
  labels: fc.integer({ min: 0, max: 2 }),
  namespace: fc.constantFrom('default', 'prod', 'kube-system'),
  cluster: fc.constantFrom('default', 'c2'),
  filter: fc.constantFrom<LabelFilter>('cilium', 'none'),
});

testProp('podSelectorLabels answers as on a fresh Labels object, for any order of questions', [fc.array(labelsArb, { minLength: 3, maxLength: 3 }), fc.array(askArb, { minLength: 1, maxLength: 30 })], (t, shared, asks) => {
  const objects: Labels[] = shared.map((l) => ({ ...l }));
  for (const a of asks) {
    const labels = objects[a.labels] ?? {};
    const pod = (l: Labels): PodInfo => ({ namespace: a.namespace, name: 'p', labels: l, addresses: [] });
    const memoised = podSelectorLabels(pod(labels), a.cluster, a.filter);
    const fresh = podSelectorLabels(pod({ ...labels }), a.cluster, a.filter);
    t.deepEqual(memoised, fresh);
    // Asked again: the same answer object (the memo is used).
    t.is(podSelectorLabels(pod(labels), a.cluster, a.filter), memoised);
  }
});

test('podSelectorLabels: the namespace, cluster name and filter each change the answer for one Labels object', (t) => {
  const labels: Labels = { app: 'web', 'controller-uid': 'u1' };
  const pod = (namespace: string): PodInfo => ({ namespace, name: 'p', labels, addresses: [] });
  const a = podSelectorLabels(pod('default'), 'default', 'cilium');
  t.not(podSelectorLabels(pod('prod'), 'default', 'cilium').key, a.key);
  t.not(podSelectorLabels(pod('default'), 'c2', 'cilium').key, a.key);
  t.not(podSelectorLabels(pod('default'), 'default', 'none').key, a.key);
  t.is(podSelectorLabels(pod('default'), 'default', 'cilium'), a);
});
