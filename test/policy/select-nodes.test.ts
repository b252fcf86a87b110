import test from 'ava';
import { nodeSelectorMatches, selectingRules } from '../../src/policy/select-nodes.js';
import { ccnp, hostRule } from '../helpers/policy-builders.js';

const nodeA = { type: 'worker', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': 'node-a', 'topology.kubernetes.io/zone': 'z1', 'node-role.kubernetes.io/control-plane': '' };

test('empty nodeSelector selects every node', (t) => {
  t.true(nodeSelectorMatches({}, nodeA, 'cilium'));
  t.true(nodeSelectorMatches({ matchLabels: {} }, {}, 'cilium'));
});

test('visible labels select; filtered labels never match', (t) => {
  t.true(nodeSelectorMatches({ matchLabels: { type: 'worker' } }, nodeA, 'cilium'));
  t.true(nodeSelectorMatches({ matchLabels: { 'k8s:type': 'worker' } }, nodeA, 'cilium'));
  t.true(nodeSelectorMatches({ matchLabels: { 'node-role.kubernetes.io/control-plane': '' } }, nodeA, 'cilium'));
  t.false(nodeSelectorMatches({ matchLabels: { 'kubernetes.io/os': 'linux' } }, nodeA, 'cilium'));
  t.false(nodeSelectorMatches({ matchLabels: { 'kubernetes.io/hostname': 'node-a' } }, nodeA, 'cilium'));
  t.false(nodeSelectorMatches({ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'Exists' }] }, nodeA, 'cilium'));
  t.true(nodeSelectorMatches({ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'DoesNotExist' }] }, nodeA, 'cilium'));
  // with the filter off they are visible
  t.true(nodeSelectorMatches({ matchLabels: { 'kubernetes.io/os': 'linux' } }, nodeA, 'none'));
});

test('reserved:host / host keys always hold for the positive operators', (t) => {
  t.true(nodeSelectorMatches({ matchLabels: { 'reserved:host': '' } }, {}, 'cilium'));
  t.true(nodeSelectorMatches({ matchLabels: { host: '' } }, {}, 'cilium'));
  t.true(nodeSelectorMatches({ matchLabels: { 'reserved:host': 'anything' } }, {}, 'cilium'));
  t.true(nodeSelectorMatches({ matchExpressions: [{ key: 'reserved:host', operator: 'Exists' }] }, {}, 'cilium'));
  t.false(nodeSelectorMatches({ matchExpressions: [{ key: 'reserved:host', operator: 'DoesNotExist' }] }, {}, 'cilium'));
  t.false(nodeSelectorMatches({ matchLabels: { 'reserved:host': '', type: 'infra' } }, nodeA, 'cilium'));
  t.false(nodeSelectorMatches({ matchLabels: { 'k8s:host': '' } }, {}, 'cilium'), 'k8s:host is an ordinary k8s label');
});

test('NotIn / DoesNotExist on absent keys select the node', (t) => {
  t.true(nodeSelectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['core'] }] }, nodeA, 'cilium'));
  t.false(nodeSelectorMatches({ matchExpressions: [{ key: 'type', operator: 'NotIn', values: ['worker'] }] }, nodeA, 'cilium'));
});

test('selectingRules: only CCNP host rules that select the node', (t) => {
  const p1 = ccnp('p1', [hostRule({ ingress: [{}] }), { endpointSelector: {}, ingress: [{}] }, hostRule({ nodeSelector: { matchLabels: { type: 'infra' } }, ingress: [{}] })]);
  const cnp = ccnp('ns-policy', hostRule({ ingress: [{}] }), 'CiliumNetworkPolicy');
  const got = selectingRules([p1, cnp], nodeA, 'cilium');
  t.deepEqual(got.map((s) => `${s.policy.name} ${s.rule.path}`), ['p1 specs[0]']);
});
