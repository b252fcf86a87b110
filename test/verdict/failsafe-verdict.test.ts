// Failsafe entries decide after the datapath exceptions and before enforcement, deny and allow entries.

import test from 'ava';
import { parseFailsafeEntry, type Failsafes } from '../../src/policy/failsafe.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { explainText } from '../../src/verdict/explain.js';
import { verdictLine } from '../../src/agent/verdict-line.js';
import * as b from '../helpers/model-builders.js';

const failsafe: Failsafes = {
  ingress: [parseFailsafeEntry('tcp/22', 'ingress'), parseFailsafeEntry('tcp/6443 from 192.0.2.0/24', 'ingress')],
  egress: [parseFailsafeEntry('udp/53 to 198.51.100.53', 'egress')],
};
const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
// Deny everything on ingress from world (a deny entry, which would win over any allow), default deny on egress.
const denyAll = b.model({
  sets: [world],
  ingress: b.enforced([b.deny('world', [b.anyL4], 'spec.ingressDeny[0]', 'lockdown')]),
  egress: b.enforced([]),
  failsafe,
});

test('a failsafe beats a deny entry and default deny, names itself', (t) => {
  const v = evaluate(denyAll, { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 22 });
  t.is(v.verdict, 'allow');
  t.is(v.decidedBy, 'failsafe');
  t.deepEqual(v.matched, [{ policy: 'failsafe', rule: 'tcp/22', action: 'allow', peer: null }]);
  t.regex(v.reason, /failsafe `tcp\/22` \(config failsafe\.ingress\[0\]\)/);
  const text = explainText(v, denyAll, { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 22 });
  t.regex(text, /^decided by: failsafe tcp\/22 \(before any policy rule\)/m);
  const e = evaluate(denyAll, { direction: 'egress', peer: '198.51.100.53', proto: 'udp', port: 53 });
  t.is(e.decidedBy, 'failsafe');
  t.is(e.matched[0]?.rule, 'udp/53 to 198.51.100.53/32');
});

test('outside the failsafe the policy decides as before', (t) => {
  t.is(evaluate(denyAll, { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 23 }).decidedBy, 'deny-entry');
  t.is(evaluate(denyAll, { direction: 'ingress', peer: '203.0.113.9', proto: 'udp', port: 22 }).decidedBy, 'deny-entry');
  t.is(evaluate(denyAll, { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 6443 }).verdict, 'deny');
  t.is(evaluate(denyAll, { direction: 'ingress', peer: '192.0.2.77', proto: 'tcp', port: 6443 }).decidedBy, 'failsafe');
  t.is(evaluate(denyAll, { direction: 'ingress', peer: '2001:db8::9', proto: 'tcp', port: 22 }).decidedBy, 'failsafe');
  t.is(evaluate(denyAll, { direction: 'egress', peer: '198.51.100.54', proto: 'udp', port: 53 }).decidedBy, 'default-deny');
  t.is(evaluate(denyAll, { direction: 'egress', peer: '198.51.100.53', proto: 'tcp', port: 53 }).decidedBy, 'default-deny');
  // Ingress failsafes do not open egress and vice versa.
  t.is(evaluate(denyAll, { direction: 'egress', peer: '203.0.113.9', proto: 'tcp', port: 22 }).verdict, 'deny');
});

test('the datapath still comes first; an unenforced direction names the failsafe too', (t) => {
  // Loopback / own addresses: datapath.
  t.is(evaluate(denyAll, { direction: 'ingress', peer: '192.0.2.1', proto: 'tcp', port: 22 }).decidedBy, 'datapath');
  const open = b.model({ failsafe });
  const v = evaluate(open, { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 22 });
  t.is(v.decidedBy, 'failsafe');
  t.false(v.enforced);
});

test('verdict lines (dry-run, audit) name the failsafe as policy "failsafe"', (t) => {
  const flow = { direction: 'ingress' as const, peer: '203.0.113.9', proto: 'tcp' as const, port: 22 };
  const l = verdictLine({ flow, kind: 'connection', local: '192.0.2.1:22' }, evaluate(denyAll, flow));
  t.is(l.policy, 'failsafe');
  t.is(l.rule, 'tcp/22');
  t.is(l.verdict, 'would-allow');
});

test('without failsafes the verdict is unchanged (same object shape as before)', (t) => {
  const none = b.model({ sets: [world], ingress: b.enforced([b.deny('world', [b.anyL4], 'spec.ingressDeny[0]', 'lockdown')]) });
  t.is(evaluate(none, { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 22 }).decidedBy, 'deny-entry');
});
