import test from 'ava';
import { buildHostModel } from '../../src/policy/build-model.js';
import { evaluate, FlowError } from '../../src/verdict/evaluate.js';
import type { Flow } from '../../src/verdict/types.js';
import type { PolicyDocument } from '../../src/api/types.js';
import type { EngineConfig } from '../../src/inventory/types.js';
import { baseInventory, ccnp, config, hostRule, ports } from '../helpers/policy-builders.js';

function model(policies: PolicyDocument[], cfg: Partial<EngineConfig> = {}) {
  return buildHostModel(policies, baseInventory(), config(cfg), 'enforce');
}

const tcpIn = (peer: string, port: number): Flow => ({ direction: 'ingress', peer, proto: 'tcp', port });

test('no policies: both directions not enforced, everything allowed', (t) => {
  const m = model([]);
  const v = evaluate(m, tcpIn('203.0.113.5', 22));
  t.is(v.verdict, 'allow');
  t.false(v.enforced);
  t.is(v.decidedBy, 'not-enforced');
});

test('world on 22/TCP: world allowed on 22, other ports and cluster peers denied', (t) => {
  const m = model([ccnp('ssh', hostRule({ ingress: [{ entities: ['world'], ...ports('22/TCP') }] }))]);
  const ok = evaluate(m, tcpIn('203.0.113.5', 22));
  t.is(ok.verdict, 'allow');
  t.is(ok.decidedBy, 'allow-entry');
  t.deepEqual(ok.matched, [{ policy: 'ssh', rule: 'spec.ingress[0]', action: 'allow', peer: 'world' }]);
  t.is(evaluate(m, tcpIn('203.0.113.5', 23)).decidedBy, 'default-deny');
  // node-b is a cluster address: world never matches it
  const nodeB = evaluate(m, tcpIn('192.0.2.2', 22));
  t.is(nodeB.verdict, 'deny');
  t.false(nodeB.peerIdentities.includes('world'));
  // pods are cluster addresses too
  t.is(evaluate(m, tcpIn('198.51.100.77', 22)).verdict, 'deny');
  // egress untouched
  t.is(evaluate(m, { direction: 'egress', peer: '203.0.113.5', proto: 'udp', port: 53 }).decidedBy, 'not-enforced');
});

test('deny beats allow regardless of specificity', (t) => {
  const m = model([
    ccnp('allow', hostRule({ ingress: [{ cidr: ['203.0.113.5/32'], ...ports('22/TCP') }] })),
    ccnp('deny', hostRule({ ingressDeny: [{ cidr: ['203.0.113.0/24'] }] })),
  ]);
  const v = evaluate(m, tcpIn('203.0.113.5', 22));
  t.is(v.verdict, 'deny');
  t.is(v.decidedBy, 'deny-entry');
  t.is(v.matched[0]?.policy, 'deny');
  t.is(v.matched.length, 2);
  t.is(v.matched[1]?.action, 'allow');
});

test('enableDefaultDeny false everywhere: only denies drop', (t) => {
  const m = model([
    ccnp('p', hostRule({ enableDefaultDeny: { ingress: false }, ingressDeny: [{ entities: ['world'], ...ports('23/TCP') }] })),
  ]);
  t.true(m.ingress.enforced);
  t.false(m.ingress.defaultDeny);
  t.is(evaluate(m, tcpIn('203.0.113.9', 23)).verdict, 'deny');
  const v = evaluate(m, tcpIn('203.0.113.9', 24));
  t.is(v.verdict, 'allow');
  t.is(v.decidedBy, 'default-allow');
});

test('ICMPv6 datapath exceptions apply before policy', (t) => {
  const m = model([ccnp('p', hostRule({ ingress: [{ entities: ['remote-node'] }] }))]);
  const ns: Flow = { direction: 'ingress', peer: '2001:db8:ffff::5', proto: 'icmpv6', icmpType: 135 };
  t.is(evaluate(m, ns).decidedBy, 'datapath');
  t.is(evaluate(m, ns).verdict, 'allow');
  const redirect: Flow = { direction: 'ingress', peer: '2001:db8::2', proto: 'icmpv6', icmpType: 137 };
  t.is(evaluate(m, redirect).verdict, 'deny');
  t.is(evaluate(m, redirect).decidedBy, 'datapath');
  const echo: Flow = { direction: 'ingress', peer: '2001:db8::2', proto: 'icmpv6', icmpType: 128 };
  t.is(evaluate(m, echo).verdict, 'allow');
  t.is(evaluate(m, echo).decidedBy, 'allow-entry');
  t.is(evaluate(m, { ...echo, peer: '2001:db8:ffff::9' }).decidedBy, 'default-deny');
});

test('frag-needed passes even under default deny; off when configured', (t) => {
  const pol = [ccnp('p', hostRule({ ingress: [{}] }))];
  const f: Flow = { direction: 'ingress', peer: '203.0.113.1', proto: 'icmp', icmpType: 3, icmpCode: 4 };
  t.is(evaluate(model(pol), f).verdict, 'allow');
  t.is(evaluate(model(pol, { allowICMPFragNeeded: false }), f).verdict, 'deny');
});

test('invalid peer address throws FlowError', (t) => {
  t.throws(() => evaluate(model([]), tcpIn('not-an-ip', 1)), { instanceOf: FlowError });
});

test('L3-only allow covers every protocol including ICMP; port-only allow covers any peer', (t) => {
  const m = model([ccnp('p', hostRule({ ingress: [{ entities: ['remote-node'] }, ports('22/TCP')] }))]);
  t.is(evaluate(m, { direction: 'ingress', peer: '192.0.2.3', proto: 'icmp', icmpType: 8 }).verdict, 'allow');
  t.is(evaluate(m, { direction: 'ingress', peer: '192.0.2.3', proto: 'udp', port: 8472 }).verdict, 'allow');
  t.is(evaluate(m, { direction: 'ingress', peer: '203.0.113.7', proto: 'udp', port: 8472 }).verdict, 'deny');
  const any = evaluate(m, tcpIn('203.0.113.7', 22));
  t.is(any.verdict, 'allow');
  t.deepEqual(any.matched, [{ policy: 'p', rule: 'spec.ingress[1]', action: 'allow', peer: null }]);
});

test('protocol numbers are normalized; a tcp flow without port matches only all-port ranges', (t) => {
  const m = model([ccnp('p', hostRule({ ingress: [ports('22/TCP'), { entities: ['world'], ...ports('0/UDP') }] }))]);
  t.is(evaluate(m, { direction: 'ingress', peer: '203.0.113.7', proto: 6, port: 22 }).verdict, 'allow');
  t.is(evaluate(m, { direction: 'ingress', peer: '203.0.113.7', proto: 'tcp' }).verdict, 'deny');
  t.is(evaluate(m, { direction: 'ingress', peer: '203.0.113.7', proto: 17 }).verdict, 'allow');
});

test('ICMP entries match by family and type; code ignored', (t) => {
  const m = model([
    ccnp('p', hostRule({ ingress: [{ entities: ['world'], icmps: [{ fields: [{ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }] }] }] })),
  ]);
  t.is(evaluate(m, { direction: 'ingress', peer: '203.0.113.7', proto: 'icmp', icmpType: 8, icmpCode: 5 }).verdict, 'allow');
  t.is(evaluate(m, { direction: 'ingress', peer: '203.0.113.7', proto: 'icmp', icmpType: 0 }).verdict, 'deny');
  t.is(evaluate(m, { direction: 'ingress', peer: '2001:db8:ffff::1', proto: 'icmpv6', icmpType: 128 }).verdict, 'allow');
  t.is(evaluate(m, { direction: 'ingress', peer: '2001:db8:ffff::1', proto: 58, icmpType: 128 }).verdict, 'allow');
  t.is(evaluate(m, { direction: 'ingress', peer: '2001:db8:ffff::1', proto: 'icmpv6', icmpType: 8 }).decidedBy, 'datapath');
});

test('ICMPv6 on egress: always-allow types pass, others go to policy (no datapath drop)', (t) => {
  const m = model([ccnp('p', hostRule({ egress: [{ entities: ['remote-node'] }] }))]);
  const ns: Flow = { direction: 'egress', peer: '2001:db8:ffff::5', proto: 'icmpv6', icmpType: 135 };
  t.is(evaluate(m, ns).decidedBy, 'datapath');
  const redirect: Flow = { direction: 'egress', peer: '2001:db8::2', proto: 'icmpv6', icmpType: 137 };
  t.is(evaluate(m, redirect).verdict, 'allow');
  t.is(evaluate(m, redirect).decidedBy, 'allow-entry');
  t.is(evaluate(m, { ...redirect, peer: '2001:db8:ffff::5' }).decidedBy, 'default-deny');
});

test('ICMPv6 ingress drop of unlisted types happens even when ingress is not enforced', (t) => {
  const m = model([]);
  const v = evaluate(m, { direction: 'ingress', peer: '2001:db8::2', proto: 'icmpv6', icmpType: 139 });
  t.is(v.verdict, 'deny');
  t.is(v.decidedBy, 'datapath');
  t.false(v.enforced);
  t.is(evaluate(m, { direction: 'ingress', peer: '2001:db8::2', proto: 'icmpv6', icmpType: 128 }).decidedBy, 'not-enforced');
});

test('extended protocols: dropped while enforced unless enabled, then allowed by proto entries', (t) => {
  const pol = [ccnp('p', hostRule({ egress: [{ entities: ['all'] }], ingress: [{ toPorts: [{ ports: [{ protocol: 'VRRP' }] }] }] }))];
  const vrrp: Flow = { direction: 'egress', peer: '224.0.0.18', proto: 112 };
  const off = model(pol);
  t.is(evaluate(off, vrrp).verdict, 'deny');
  t.is(evaluate(off, vrrp).decidedBy, 'datapath');
  const on = model(pol, { enableExtendedIPProtocols: true });
  t.is(evaluate(on, vrrp).verdict, 'allow');
  t.is(evaluate(on, { ...vrrp, direction: 'ingress', peer: '192.0.2.9' }).verdict, 'allow');
  t.is(evaluate(on, { direction: 'ingress', peer: '192.0.2.9', proto: 47 }).verdict, 'deny');
  t.is(evaluate(model([]), vrrp).decidedBy, 'not-enforced', 'an unenforced direction passes everything');
});

test('CIDR peers never match cluster addresses unless policyCIDRMatchMode nodes (then nodes only)', (t) => {
  const pol = [ccnp('p', hostRule({ ingress: [{ cidr: ['192.0.2.0/24', '198.51.100.0/24'] }] }))];
  const def = model(pol);
  t.is(evaluate(def, tcpIn('192.0.2.2', 80)).verdict, 'deny');
  t.is(evaluate(def, tcpIn('192.0.2.50', 80)).verdict, 'allow', 'external kube-apiserver is CIDR-matchable');
  t.is(evaluate(def, tcpIn('192.0.2.200', 80)).verdict, 'allow');
  t.is(evaluate(def, tcpIn('198.51.100.99', 80)).verdict, 'deny', 'pod CIDR addresses are cluster');
  const nodes = model(pol, { policyCIDRMatchMode: 'nodes' });
  t.is(evaluate(nodes, tcpIn('192.0.2.2', 80)).verdict, 'allow');
  t.is(evaluate(nodes, tcpIn('192.0.2.1', 80)).verdict, 'allow');
  t.is(evaluate(nodes, tcpIn('192.0.2.101', 80)).verdict, 'deny', 'health stays cluster');
  t.is(evaluate(nodes, tcpIn('198.51.100.10', 80)).verdict, 'deny');
});

test('external kube-apiserver address resolves to kube-apiserver, world and cluster', (t) => {
  const m = model([ccnp('p', hostRule({ egress: [{ entities: ['kube-apiserver'] }, { entities: ['world'], ...ports('443/TCP') }, { entities: ['cluster'], ...ports('53/UDP') }] }))]);
  const v = evaluate(m, { direction: 'egress', peer: '192.0.2.50', proto: 'tcp', port: 443 });
  t.deepEqual(v.peerIdentities, ['cluster', 'kube_apiserver', 'world']);
  t.deepEqual(v.matched.map((e) => e.rule), ['spec.egress[0]', 'spec.egress[1]']);
  const nodeB = evaluate(m, { direction: 'egress', peer: '192.0.2.2', proto: 'tcp', port: 443 });
  t.deepEqual(nodeB.peerIdentities, ['cluster', 'kube_apiserver']);
});

test('CIDRSet except is a carve-out, not a deny: another rule can still allow', (t) => {
  const m = model([ccnp('p', hostRule({ ingress: [{ cidrSet: [{ cidr: '203.0.113.0/24', except: ['203.0.113.128/25'] }], ...ports('80/TCP') }, { entities: ['world'], ...ports('443/TCP') }] }))]);
  t.is(evaluate(m, tcpIn('203.0.113.5', 80)).verdict, 'allow');
  t.is(evaluate(m, tcpIn('203.0.113.200', 80)).verdict, 'deny');
  t.is(evaluate(m, tcpIn('203.0.113.200', 443)).verdict, 'allow');
});

test('deny on one port of an L3 allow blocks only that port; L3 deny beats L4 allow', (t) => {
  const m = model([
    ccnp('allow', hostRule({ ingress: [{ entities: ['remote-node'] }, { entities: ['world'], ...ports('22/TCP') }] })),
    ccnp('deny', hostRule({ ingressDeny: [{ entities: ['remote-node'], ...ports('2379/TCP') }, { cidr: ['203.0.113.66/32'] }] })),
  ]);
  t.is(evaluate(m, tcpIn('192.0.2.2', 2379)).verdict, 'deny');
  t.is(evaluate(m, tcpIn('192.0.2.2', 2380)).verdict, 'allow');
  t.is(evaluate(m, tcpIn('203.0.113.66', 22)).verdict, 'deny');
  t.is(evaluate(m, tcpIn('203.0.113.67', 22)).verdict, 'allow');
});

test('mode always without rules drops everything but datapath exceptions', (t) => {
  const m = model([], { policyEnforcement: 'always' });
  t.is(evaluate(m, tcpIn('192.0.2.2', 22)).decidedBy, 'default-deny');
  t.is(evaluate(m, { direction: 'egress', peer: '203.0.113.1', proto: 'udp', port: 53 }).verdict, 'deny');
  t.is(evaluate(m, { direction: 'ingress', peer: '2001:db8::2', proto: 'icmpv6', icmpType: 136 }).verdict, 'allow');
});

test('mode never ignores deny rules', (t) => {
  const m = model([ccnp('p', hostRule({ ingressDeny: [{ entities: ['all'] }] }))], { policyEnforcement: 'never' });
  const v = evaluate(m, tcpIn('203.0.113.1', 22));
  t.is(v.verdict, 'allow');
  t.is(v.decidedBy, 'not-enforced');
});

test('entries that match nothing never match', (t) => {
  const m = model([ccnp('p', hostRule({ ingress: [{ entities: [], ...ports('22/TCP') }, {}, { entities: ['all'], toPorts: [{}] }] }))]);
  const v = evaluate(m, tcpIn('203.0.113.1', 22));
  t.is(v.decidedBy, 'default-deny');
  t.deepEqual(v.matched, []);
});
