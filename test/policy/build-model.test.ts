import test from 'ava';
import type { PolicyDocument } from '../../src/api/types.js';
import type { EngineConfig } from '../../src/inventory/types.js';
import { buildHostModel, comparePaths } from '../../src/policy/build-model.js';
import type { HostModel } from '../../src/policy/model.js';
import { baseInventory, ccnp, config, hostRule, ports } from '../helpers/policy-builders.js';

function model(policies: PolicyDocument[], cfg: Partial<EngineConfig> = {}): HostModel {
  return buildHostModel(policies, baseInventory(), config(cfg), 'enforce');
}
const state = (m: HostModel) => ({
  ingress: [m.ingress.enforced, m.ingress.defaultDeny],
  egress: [m.egress.enforced, m.egress.defaultDeny],
});

test('default-deny matrix: no rules, ingress: [] and foreign-node rules leave both directions open', (t) => {
  t.deepEqual(state(model([])), { ingress: [false, false], egress: [false, false] });
  t.deepEqual(state(model([ccnp('p', hostRule({ ingress: [], egress: [] }))])), { ingress: [false, false], egress: [false, false] });
  t.deepEqual(state(model([ccnp('p', hostRule({ nodeSelector: { matchLabels: { role: 'db' } }, ingress: [{}] }))])), { ingress: [false, false], egress: [false, false] });
});

test('default-deny matrix: allow entries in one direction enforce only that direction', (t) => {
  t.deepEqual(state(model([ccnp('p', hostRule({ ingress: [{ entities: ['world'] }] }))])), { ingress: [true, true], egress: [false, false] });
  t.deepEqual(state(model([ccnp('p', hostRule({ egress: [{ entities: ['world'] }] }))])), { ingress: [false, false], egress: [true, true] });
});

test('default-deny matrix: a deny-only rule switches default deny on', (t) => {
  const m = model([ccnp('p', hostRule({ ingressDeny: [{ entities: ['world'], ...ports('23/TCP') }] }))]);
  t.deepEqual(state(m), { ingress: [true, true], egress: [false, false] });
  const off = model([ccnp('p', hostRule({ enableDefaultDeny: { ingress: false }, ingressDeny: [{ entities: ['world'] }] }))]);
  t.deepEqual(state(off), { ingress: [true, false], egress: [false, false] });
  t.regex(off.ingress.reason, /enableDefaultDeny\.ingress: false/);
});

test('default-deny matrix: any rule asking wins over rules opting out', (t) => {
  const m = model([
    ccnp('a-off', hostRule({ enableDefaultDeny: { ingress: false }, ingress: [{ entities: ['world'] }] })),
    ccnp('b-on', hostRule({ ingress: [{ entities: ['remote-node'] }] })),
  ]);
  t.deepEqual(state(m), { ingress: [true, true], egress: [false, false] });
  t.regex(m.ingress.reason, /b-on spec/);
  t.notRegex(m.ingress.reason, /a-off/);
});

test('default-deny matrix: enableDefaultDeny true without entries in that direction does nothing', (t) => {
  const m = model([ccnp('p', hostRule({ enableDefaultDeny: { egress: true, ingress: false }, ingress: [{ entities: ['world'] }] }))]);
  t.deepEqual(state(m), { ingress: [true, false], egress: [false, false] });
});

test('default-deny matrix: enableNonDefaultDenyPolicies false forces default deny', (t) => {
  const m = model([ccnp('p', hostRule({ enableDefaultDeny: { ingress: false }, ingress: [{ entities: ['world'] }] }))], { enableNonDefaultDenyPolicies: false });
  t.deepEqual(state(m), { ingress: [true, true], egress: [false, false] });
  t.regex(m.ingress.reason, /enableNonDefaultDenyPolicies is false/);
});

test('mode always: both directions default deny even without rules', (t) => {
  const m = model([], { policyEnforcement: 'always' });
  t.deepEqual(state(m), { ingress: [true, true], egress: [true, true] });
  t.is(m.enforcementMode, 'always');
  t.regex(m.egress.reason, /always/);
  const off = model([ccnp('p', hostRule({ enableDefaultDeny: { ingress: false }, ingress: [{ entities: ['world'] }] }))], { policyEnforcement: 'always' });
  t.deepEqual(state(off).ingress, [true, true]);
});

test('mode never: rules ignored, nothing enforced', (t) => {
  const m = model([ccnp('p', hostRule({ ingressDeny: [{ entities: ['all'] }], egress: [{}] }))], { policyEnforcement: 'never' });
  t.deepEqual(state(m), { ingress: [false, false], egress: [false, false] });
  t.deepEqual(m.ingress.entries, []);
  t.deepEqual(m.selectedPolicies, ['p']);
  t.regex(m.ingress.reason, /never/);
});

test('entries: deny first, then allow; policy name then natural rule path order', (t) => {
  const rules = Array.from({ length: 11 }, (_, i) => hostRule({ ingress: [{ entities: ['world'], ...ports(`${1000 + i}/TCP`) }] }));
  const m = model([
    ccnp('zeta', rules),
    ccnp('alpha', hostRule({ ingress: [{ entities: ['host'] }, { entities: ['health'] }], ingressDeny: [{ cidr: ['203.0.113.0/24'] }] })),
    ccnp('mid', hostRule({ ingressDeny: [{ entities: ['world'], ...ports('23/TCP') }] })),
  ]);
  const order = m.ingress.entries.map((e) => `${e.action} ${e.policy} ${e.rule}`);
  t.deepEqual(order.slice(0, 5), ['deny alpha spec.ingressDeny[0]', 'deny mid spec.ingressDeny[0]', 'allow alpha spec.ingress[0]', 'allow alpha spec.ingress[1]', 'allow zeta specs[0].ingress[0]']);
  t.deepEqual(order.slice(-2), ['allow zeta specs[9].ingress[0]', 'allow zeta specs[10].ingress[0]']);
  t.deepEqual(m.selectedPolicies, ['alpha', 'mid', 'zeta']);
});

test('comparePaths orders spec before specs and indices numerically', (t) => {
  t.deepEqual(['specs[10]', 'specs[2]', 'spec'].sort(comparePaths), ['spec', 'specs[2]', 'specs[10]']);
});

test('entries: one per peer, L4 shared; identical peers share one set across policies', (t) => {
  const m = model([
    ccnp('a', hostRule({ ingress: [{ entities: ['remote-node', 'health'], ...ports('10250/TCP') }, { cidr: ['10.0.0.0/8'] }] })),
    ccnp('b', hostRule({ egress: [{ entities: ['remote-node'] }, { cidr: ['10.0.0.1/8'] }] })),
  ]);
  const ing = m.ingress.entries;
  t.deepEqual(ing.map((e) => [e.rule, e.peer]), [
    ['spec.ingress[0]', 'remote_node'],
    ['spec.ingress[0]', 'health'],
    ['spec.ingress[1]', m.egress.entries[1]!.peer],
  ]);
  t.deepEqual(ing[0]!.l4, [{ kind: 'ports', proto: 'tcp', ranges: [[10250, 10250]] }]);
  t.deepEqual(ing[2]!.l4, [{ kind: 'all' }]);
  t.deepEqual(Object.keys(m.sets).sort(), ['cidr_' + m.egress.entries[1]!.peer!.slice(5), 'health', 'remote_node'].sort());
});

test('entries that match nothing: empty peer list, no peer and no port, toPorts [{}]', (t) => {
  const m = model([ccnp('p', hostRule({ ingress: [{ entities: [], ...ports('22/TCP') }, {}, { toPorts: [{}] }, { entities: ['world'], toPorts: [{}] }] }))]);
  const es = m.ingress.entries;
  t.is(es.length, 4);
  for (const e of es) t.deepEqual(e.l4, []);
  t.regex(es[0]!.note ?? '', /empty peer list/);
  t.is(es[0]!.peer, null);
  t.regex(es[1]!.note ?? '', /no peer and no port/);
  t.is(es[2]!.peer, null);
  t.regex(es[2]!.note ?? '', /toPorts/);
  t.is(es[3]!.peer, 'world');
  t.deepEqual(state(m).ingress, [true, true]);
  t.deepEqual(Object.keys(m.sets), ['world'], 'only referenced sets');
});

test('port-only entry has peer null (anyone)', (t) => {
  const m = model([ccnp('p', hostRule({ ingress: [ports('22/TCP')] }))]);
  t.deepEqual(m.ingress.entries, [{ action: 'allow', policy: 'p', rule: 'spec.ingress[0]', peer: null, l4: [{ kind: 'ports', proto: 'tcp', ranges: [[22, 22]] }] }]);
});

test('datapath, addresses, exclusions and run mode', (t) => {
  const m = buildHostModel([], baseInventory(), config({ allowICMPFragNeeded: false, enableExtendedIPProtocols: true }), 'audit');
  t.is(m.runMode, 'audit');
  t.is(m.node, 'node-a');
  t.deepEqual(m.datapath, {
    allowICMPFragNeeded: false,
    icmpv6AlwaysAllow: [1, 2, 3, 4, 130, 131, 132, 133, 134, 135, 136, 141, 142, 143, 148, 149, 151, 152, 153],
    icmpv6IngressPolicyTypes: [128, 129],
    extendedProtocols: true,
  });
  t.deepEqual(m.hostAddresses, ['192.0.2.1', '2001:db8::1']);
  t.deepEqual(m.exclusions.cluster.v4, ['192.0.2.1/32', '192.0.2.2/31', '192.0.2.101/32', '192.0.2.102/31', '198.51.100.0/24']);
  t.deepEqual(m.exclusions.cluster_non_node.v4, ['192.0.2.101/32', '192.0.2.102/31', '198.51.100.0/24']);
  t.deepEqual(m.exclusions.cluster.v6, ['2001:db8::1/128', '2001:db8::2/127', '2001:db8:100::/64']);
});

test('set names are stable when addresses change', (t) => {
  const pol = [ccnp('p', hostRule({ ingress: [{ endpoints: [{ matchLabels: { app: 'web' } }] }, { cidr: ['203.0.113.0/24'] }] }))];
  const a = buildHostModel(pol, baseInventory(), config(), 'enforce');
  const b = buildHostModel(pol, baseInventory({ pods: [] }), config(), 'enforce');
  t.deepEqual(Object.keys(a.sets), Object.keys(b.sets));
  const ep = a.ingress.entries[0]!.peer!;
  t.deepEqual(a.sets[ep]!.v4, ['198.51.100.20/32']);
  t.deepEqual(b.sets[ep]!.v4, []);
});
