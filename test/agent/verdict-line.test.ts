import test from 'ava';
import { dedupeKey, Deduper, verdictLine } from '../../src/agent/verdict-line.js';
import type { LiveFlow } from '../../src/agent/live-flows.js';
import type { Verdict } from '../../src/verdict/types.js';

const flow: LiveFlow = { flow: { direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22 }, kind: 'connection', local: '192.0.2.1:22' };
const allow: Verdict = {
  verdict: 'allow', enforced: true, reason: 'allowed', decidedBy: 'allow-entry', peerIdentities: ['world'],
  matched: [{ policy: 'ssh', rule: 'spec.ingress[0]', action: 'allow', peer: 'world' }],
};
const defaultDeny: Verdict = { verdict: 'deny', enforced: true, reason: 'no allow', decidedBy: 'default-deny', peerIdentities: [], matched: [] };

test('a line names the deciding policy and rule', (t) => {
  t.deepEqual(verdictLine(flow, allow), {
    direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22, verdict: 'would-allow',
    policy: 'ssh', rule: 'spec.ingress[0]', kind: 'connection', local: '192.0.2.1:22',
  });
});

test('without a deciding entry the rule says what decided', (t) => {
  t.like(verdictLine(flow, defaultDeny), { verdict: 'would-deny', policy: null, rule: 'default-deny' });
});

test('same flow and outcome dedupe; a changed verdict is new', (t) => {
  const d = new Deduper();
  t.true(d.fresh(dedupeKey(verdictLine(flow, allow))));
  t.false(d.fresh(dedupeKey(verdictLine(flow, allow))));
  t.true(d.fresh(dedupeKey(verdictLine(flow, defaultDeny))));
  t.true(d.fresh(dedupeKey(verdictLine({ ...flow, flow: { ...flow.flow, peer: '203.0.113.6' } }, allow))));
  t.is(d.size, 3);
});

test('the deduper forgets the oldest key beyond its bound', (t) => {
  const d = new Deduper(2);
  t.true(d.fresh('a'));
  t.true(d.fresh('b'));
  t.true(d.fresh('c'));
  t.is(d.size, 2);
  t.false(d.fresh('c'));
  t.true(d.fresh('a'));
});
