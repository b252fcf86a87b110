import test from 'ava';
import { listenerReach, peerClasses } from '../../src/agent/listener-reach.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import * as b from '../helpers/model-builders.js';
import { sock } from './fixtures.js';
import { parseFailsafeEntry } from '../../src/policy/failsafe.js';

const cluster = b.identity('cluster', ['192.0.2.1/32', '192.0.2.50/32', '192.0.2.60/32'], [], { kind: 'entity', label: 'entity:cluster' });
const api = b.identity('kube_apiserver', ['192.0.2.50/32'], [], { kind: 'entity', label: 'entity:kube-apiserver' });
const model = b.model({
  sets: [cluster, api],
  ingress: b.enforced([b.allow('cluster', [b.tcp(22)], 'spec.ingress[0]', 'demo-host-policy'), b.deny('kube_apiserver', [b.tcp(8080)], 'spec.ingressDeny[0]', 'demo-host-policy')]),
});

test('each listener says which identities reach it and which rule decides, grouped', (t) => {
  const r = listenerReach(model, [
    sock({ localAddress: '0.0.0.0', localPort: 22 }),
    sock({ localAddress: '0.0.0.0', localPort: 8080 }),
    sock({ localAddress: '127.0.0.1', localPort: 631 }),
  ], evaluate);
  t.deepEqual(r.map((x) => x.text), [
    'tcp/22 on 0.0.0.0: allowed from cluster, kube-apiserver (demo-host-policy spec.ingress[0]); denied from world (default deny)',
    'tcp/8080 on 0.0.0.0: denied from cluster, world (default deny); denied from kube-apiserver (demo-host-policy spec.ingressDeny[0])',
  ]);
  const g = r[0]?.groups[0];
  t.like(g, { verdict: 'allow', decidedBy: 'allow-entry', policy: 'demo-host-policy', rule: 'spec.ingress[0]' });
  // Each set by an address no other set names, never the node's own (192.0.2.1).
  t.deepEqual(g?.identities.map((i) => i.peer), ['192.0.2.60', '192.0.2.50']);
});

test('a set is represented by an address other than the node\'s own when it has one; world is added when no rule names it', (t) => {
  const classes = peerClasses(model, 4);
  t.false(classes.some((c) => c.peer === '192.0.2.1'));
  t.deepEqual(classes.map((c) => c.identity), ['cluster', 'kube-apiserver', 'world']);
  const withWorld = b.model({ sets: [b.identity('world', ['0.0.0.0/0'], [], { kind: 'entity', label: 'entity:world' })] });
  t.deepEqual(peerClasses(withWorld, 4).map((c) => c.identity), ['world']);
});

test('an unenforced direction says so; a "::" listener is evaluated for both families', (t) => {
  const open = b.model({ sets: [] });
  const [r] = listenerReach(open, [sock({ family: 6, localAddress: '::', localPort: 22 })], evaluate);
  t.is(r?.text, 'tcp/22 on ::: allowed from world (ingress not enforced)');
  t.deepEqual(r?.groups[0]?.identities.map((i) => i.peer), ['203.0.113.1']);
});

test('failsafes: the report names them as the deciding rule, and a failsafe peer network no policy names is a class of its own', (t) => {
  const withFailsafe = b.model({
    sets: [cluster, api],
    ingress: b.enforced([b.allow('cluster', [b.tcp(22)], 'spec.ingress[0]', 'demo-host-policy'), b.deny('kube_apiserver', [b.tcp(8080)], 'spec.ingressDeny[0]', 'demo-host-policy')]),
    failsafe: { ingress: [parseFailsafeEntry('tcp/22 from 198.51.100.0/24', 'ingress'), parseFailsafeEntry('tcp/2222', 'ingress')], egress: [] },
  });
  const r = listenerReach(withFailsafe, [
    sock({ localAddress: '0.0.0.0', localPort: 22 }),
    sock({ localAddress: '0.0.0.0', localPort: 2222 }),
    sock({ localAddress: '0.0.0.0', localPort: 8080 }),
  ], evaluate);
  t.deepEqual(r.map((x) => x.text), [
    'tcp/22 on 0.0.0.0: allowed from cluster, kube-apiserver (demo-host-policy spec.ingress[0]); allowed from failsafe 198.51.100.0/24 (failsafe tcp/22 from 198.51.100.0/24); denied from world (default deny)',
    'tcp/2222 on 0.0.0.0: allowed from cluster, kube-apiserver, world (failsafe tcp/2222)',
    // No failsafe covers 8080: no failsafe class either.
    'tcp/8080 on 0.0.0.0: denied from cluster, world (default deny); denied from kube-apiserver (demo-host-policy spec.ingressDeny[0])',
  ]);
  const fs = r[0]?.groups[1];
  t.like(fs, { verdict: 'allow', decidedBy: 'failsafe', policy: null, rule: 'failsafe' });
  t.deepEqual(fs?.identities, [{ identity: 'failsafe 198.51.100.0/24', set: 'failsafe', peer: '198.51.100.1' }]);
  // The class's address is evaluated like any flow: trace says the same.
  t.is(evaluate(withFailsafe, { direction: 'ingress', peer: '198.51.100.1', proto: 'tcp', port: 22 }).decidedBy, 'failsafe');
  // An IPv6 listener gets no IPv4 failsafe class.
  const [v6] = listenerReach(withFailsafe, [sock({ family: 6, localAddress: '2001:db8::1', localPort: 22 })], evaluate);
  t.false(v6?.text.includes('198.51.100.0/24'));
});
