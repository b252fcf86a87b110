import test from 'ava';
import { guardDecision, inboundSessions, sessionsCut, sessionText } from '../../src/agent/lockout-guard.js';
import type { Flow, Verdict } from '../../src/verdict/types.js';
import { model, sock } from './fixtures.js';

const sockets = [
  sock({ state: 'listen', localAddress: '0.0.0.0', localPort: 22 }),
  sock({ state: 'listen', family: 6, localAddress: '::', localPort: 10250 }),
  sock({ state: 'established', localPort: 22, remoteAddress: '203.0.113.5', remotePort: 50000 }),
  sock({ state: 'established', family: 6, localAddress: '2001:db8::1', localPort: 10250, remoteAddress: '2001:db8::2', remotePort: 41000 }),
  // outbound (local port not listening), loopback, and a closing session: not inbound management sessions
  sock({ state: 'established', localPort: 40000, remoteAddress: '198.51.100.7', remotePort: 443 }),
  sock({ state: 'established', localAddress: '127.0.0.1', localPort: 22, remoteAddress: '127.0.0.1', remotePort: 50001 }),
  sock({ state: 'time-wait', localPort: 22, remoteAddress: '203.0.113.9', remotePort: 50002 }),
];

test('inbound sessions: established, on a listening port, not loopback', (t) => {
  t.deepEqual(inboundSessions(sockets).map(sessionText), ['203.0.113.5:50000 -> local port 22', '[2001:db8::2]:41000 -> local port 10250']);
});

// Fake evaluator: port 22 only from 192.0.2.0/24 (a "mgmt" rule), everything else default deny.
function evaluate(_m: unknown, f: Flow): Verdict {
  if (f.port === 10250) {
    return { verdict: 'deny', enforced: true, reason: 'denied by kubelet-deny', decidedBy: 'deny-entry', peerIdentities: [], matched: [{ policy: 'lockdown', rule: 'spec.ingressDeny[0]', action: 'deny', peer: null }] };
  }
  const ok = f.port === 22 && f.peer.startsWith('192.0.2.');
  return ok
    ? { verdict: 'allow', enforced: true, reason: 'ok', decidedBy: 'allow-entry', peerIdentities: [], matched: [{ policy: 'ssh', rule: 'spec.ingress[0]', action: 'allow', peer: 'mgmt' }] }
    : { verdict: 'deny', enforced: true, reason: 'no allow entry matches', decidedBy: 'default-deny', peerIdentities: [], matched: [] };
}

test('sessionsCut names the session and the deciding rule', (t) => {
  const cut = sessionsCut(model(), inboundSessions(sockets), evaluate);
  t.deepEqual(cut.map((c) => [c.text, c.policy, c.rule]), [
    ['203.0.113.5:50000 -> local port 22', null, 'default-deny'],
    ['[2001:db8::2]:41000 -> local port 10250', 'lockdown', 'spec.ingressDeny[0]'],
  ]);
});

test('an allowed session is not reported', (t) => {
  const ok = [sock({ state: 'listen', localAddress: '0.0.0.0' }), sock({ state: 'established', remoteAddress: '192.0.2.9', remotePort: 50000 })];
  t.deepEqual(sessionsCut(model(), inboundSessions(ok), evaluate), []);
});

test('guard decision: warn applies, refuse keeps the old ruleset only when something is cut, off ignores', (t) => {
  const cut = sessionsCut(model(), inboundSessions(sockets), evaluate);
  t.is(guardDecision(cut, 'warn').action, 'apply');
  t.is(guardDecision(cut, 'warn').cut.length, 2);
  t.is(guardDecision(cut, 'refuse').action, 'refuse');
  t.is(guardDecision([], 'refuse').action, 'apply');
  t.deepEqual(guardDecision(cut, 'off'), { action: 'apply', cut: [] });
});

test('a dual-stack "::" listener makes its IPv4 (v4-mapped) sessions inbound', (t) => {
  const s = inboundSessions([
    sock({ state: 'listen', family: 6, localAddress: '::', localPort: 22 }),
    sock({ state: 'established', family: 4, localAddress: '192.0.2.1', localPort: 22, remoteAddress: '203.0.113.5', remotePort: 50000 }),
  ]);
  t.deepEqual(s.map(sessionText), ['203.0.113.5:50000 -> local port 22']);
});
