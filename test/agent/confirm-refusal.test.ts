// confirm-refusal: what a commit-confirm rollback of an agent change refuses, through RefusedChanges (the
// record the rollout probes use), and how the refused policies' last good versions come back.

import test from 'ava';
import type { PolicyDocument } from '../../src/api/types.js';
import { newPending } from '../../src/agent/commit-confirm.js';
import { confirmRefuser, confirmRefusalsInForce, inputRefusal, planConfirmRefusal, refuseUnconfirmed } from '../../src/agent/confirm-refusal.js';
import type { Desired } from '../../src/agent/reconcile.js';
import { RefusedChanges } from '../../src/agent/refused-changes.js';
import * as b from '../helpers/model-builders.js';
import { goodEntry as good, policyDoc as doc } from './fixtures.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
const before = b.model({ sets: [world], ingress: b.enforced([b.allow('world', [b.tcp(22)], 'spec.ingress[0]', 'ssh')]) });
const after = b.model({ sets: [world], ingress: b.enforced([b.allow('world', [b.tcp(2222)], 'spec.ingress[0]', 'ssh')]) });
const desired = (valid: PolicyDocument[], kept: { policy: string; reason: string }[] = []): Desired =>
  ({ state: { model: after, valid }, inputHash: 'in-2', merge: { kept, withheld: [] } }) as unknown as Desired;
const agentRecord = (inputHash?: string) => newPending({
  origin: 'agent', by: 'agent pid 1', seconds: 60, table: 'nodewall', previous: { kind: 'absent' }, ...(inputHash === undefined ? {} : { inputHash }),
});

test('a changed policy with a new version is refused by version, and its last good version comes back', (t) => {
  const lastGoodBefore = new Map([['ssh', good(doc('ssh', 's1'))]]);
  const plan = planConfirmRefusal(desired([doc('ssh', 's2')]), after, before, lastGoodBefore);
  t.deepEqual(plan.policies, [{ policy: 'ssh', version: 's2' }]);
  const refused = new RefusedChanges();
  // The agent persisted the unconfirmed version as last good after loading it.
  const lastGood = new Map([['ssh', good(doc('ssh', 's2'))]]);
  const r = refuseUnconfirmed(refused, lastGood, agentRecord('in-2'), plan, 'not confirmed by T');
  t.is(r?.by, confirmRefuser);
  t.regex(r?.reason ?? '', /was not confirmed \(not confirmed by T\); policies involved: ssh/);
  t.true(refused.isRefused('ssh', 's2'));
  t.false(refused.isInputRefused('in-2'));
  t.is(lastGood.get('ssh')?.doc.hash, 's1', 'the confirmed version is last good again');
  t.regex(refused.statusLines()[0] ?? '', /^policy ssh \(version s2\) refused at \S+ by commit-confirm: /);
  // A later version is tried again (the same retry rule as the probes).
  t.deepEqual(refused.forgetChanged(new Map([['ssh', 's3']]), 'in-3').map((x) => x.by), [confirmRefuser]);
  t.is(refused.size, 0);
});

test('no document explains the change, or the model before is unknown: the whole input is refused', (t) => {
  const same = new Map([['ssh', good(doc('ssh', 's1'))]]);
  const plan = planConfirmRefusal(desired([doc('ssh', 's1')]), after, before, same);
  t.deepEqual(plan.policies, []);
  t.deepEqual(plan.changed, ['ssh']);
  const unknown = planConfirmRefusal(desired([doc('ssh', 's2')]), after, undefined, same);
  t.deepEqual(unknown.policies, []);
  const refused = new RefusedChanges();
  refuseUnconfirmed(refused, new Map(same), agentRecord('in-2'), plan, 'x');
  t.true(refused.isInputRefused('in-2'));
  t.is(inputRefusal(refused, 'in-2')?.by, confirmRefuser);
  t.is(inputRefusal(refused, 'in-other'), undefined);
});

test('an earlier run\'s change refuses its input; a CLI apply, or a record without input, refuses nothing', (t) => {
  const refused = new RefusedChanges();
  t.truthy(refuseUnconfirmed(refused, new Map(), agentRecord('in-old'), undefined, 'x'));
  t.true(refused.isInputRefused('in-old'));
  t.regex(refused.list()[0]?.reason ?? '', /earlier run of the agent/);
  const cli = newPending({ origin: 'cli', by: 'root', seconds: 60, table: 'nodewall', previous: { kind: 'absent' } });
  t.is(refuseUnconfirmed(refused, new Map(), cli, undefined, 'x'), undefined);
  t.is(refuseUnconfirmed(refused, new Map(), agentRecord(), undefined, 'x'), undefined);
  t.is(refused.size, 1);
});

test('refusals in force for a pass: only commit-confirm ones whose policy the merge kept back', (t) => {
  const refused = new RefusedChanges();
  refused.refuse({ policies: [{ policy: 'ssh', version: 's2' }], inputHash: 'in-2', by: confirmRefuser, reason: 'r' });
  refused.refuse({ policies: [{ policy: 'lock', version: 'l2' }], inputHash: 'in-2', by: 'probe 192.0.2.10:22', reason: 'r' });
  t.deepEqual(confirmRefusalsInForce(refused, desired([], [{ policy: 'ssh', reason: 'refused' }, { policy: 'lock', reason: 'refused' }])).map((r) => r.by), [confirmRefuser]);
  t.deepEqual(confirmRefusalsInForce(refused, desired([], [{ policy: 'ssh', reason: 'invalid' }])), []);
  t.deepEqual(confirmRefusalsInForce(undefined, desired([])), []);
});
