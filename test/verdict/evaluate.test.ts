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
