import test from 'ava';
import { droppingPattern, filterLabels, hostEndpointLabels, keepsLabel } from '../../src/policy/label-filter.js';

const dropped = [
  'kubernetes.io/hostname',
  'kubernetes.io/os',
  'kubernetes.io/arch',
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'beta.kubernetes.io/os',
  'failure-domain.beta.kubernetes.io/zone',
  'k8s.io/cloud-provider',
  'io.kubernetes.container.name',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'batch.kubernetes.io/job-completion-index',
  'pod-template-hash',
  'pod-template-generation',
  'controller-revision-hash',
  'controller-uid',
  'annotation.foo',
  'etcd_node',
];

const kept = [
  'node-role.kubernetes.io/control-plane',
  'node.kubernetes.io/instance-type',
  'type',
  'tier',
  'app.kubernetes.io/name',
  'io.kubernetes.pod.namespace',
  'io.cilium.k8s.namespace.labels.team',
  'io.cilium.k8s.policy.cluster',
  'io.cilium.k8s.policy.serviceaccount',
  'my.kubernetes.io.example/x',
];

for (const k of dropped) {
  test(`cilium filter drops ${k}`, (t) => {
    t.false(keepsLabel(k, 'cilium'));
    t.truthy(droppingPattern(k, 'cilium'));
    t.true(keepsLabel(k, 'none'));
  });
}

for (const k of kept) {
  test(`cilium filter keeps ${k}`, (t) => {
    t.true(keepsLabel(k, 'cilium'));
    t.is(droppingPattern(k, 'cilium'), undefined);
  });
}

test('droppingPattern names the prefix for messages', (t) => {
  t.is(droppingPattern('kubernetes.io/os', 'cilium'), 'kubernetes.io');
  t.is(droppingPattern('topology.kubernetes.io/zone', 'cilium'), 'topology.kubernetes.io');
  t.is(droppingPattern('failure-domain.beta.kubernetes.io/zone', 'cilium'), '*beta.kubernetes.io');
});

test('hostEndpointLabels: reserved:host plus filtered node labels as k8s:', (t) => {
  const labels = hostEndpointLabels({ 'kubernetes.io/os': 'linux', type: 'worker', 'node-role.kubernetes.io/control-plane': '' }, 'cilium');
  t.deepEqual(labels, [
    { source: 'reserved', key: 'host', value: '' },
    { source: 'k8s', key: 'type', value: 'worker' },
    { source: 'k8s', key: 'node-role.kubernetes.io/control-plane', value: '' },
  ]);
  const all = hostEndpointLabels({ 'kubernetes.io/os': 'linux' }, 'none');
  t.deepEqual(all[1], { source: 'k8s', key: 'kubernetes.io/os', value: 'linux' });
});

test('filterLabels applies the source', (t) => {
  t.deepEqual(filterLabels({ a: '1', 'kubernetes.io/os': 'x' }, 'cilium', 'node'), [{ source: 'node', key: 'a', value: '1' }]);
});
