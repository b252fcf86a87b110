// rollbackPlan: which policy versions a broken probe refuses, or whether the input is refused as a whole.

import test from 'ava';
import type { PolicyDocument } from '../../src/api/types.js';
import type { Desired } from '../../src/agent/reconcile.js';
import { rollbackPlan } from '../../src/agent/rollback.js';
import * as b from '../helpers/model-builders.js';
import { goodEntry as good, policyDoc as doc } from './fixtures.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
const before = b.model({ sets: [world], ingress: b.enforced([b.allow('world', [b.tcp(22)], 'spec.ingress[0]', 'ssh')]) });
const after = b.model({ sets: [world], ingress: b.enforced([b.deny('world', [b.tcp(22)], 'spec.ingressDeny[0]', 'lock'), b.allow('world', [b.tcp(22)], 'spec.ingress[0]', 'ssh')]) });
const broken = { probe: '192.0.2.10:22', error: 'timeout', attempts: 4 };
const desired = (model: typeof after, valid: PolicyDocument[]): Desired => ({ state: { model, valid }, inputHash: 'in-1' }) as unknown as Desired;

test('a policy whose document changed is refused by version, named with the probe', (t) => {
  const plan = rollbackPlan(desired(after, [doc('lock', 'l1'), doc('ssh', 's1')]), before, broken, new Map([['ssh', good(doc('ssh', 's1'))]]));
  t.deepEqual(plan.policies, ['lock']);
  t.deepEqual(plan.refusal.policies, [{ policy: 'lock', version: 'l1' }]);
  t.is(plan.refusal.by, 'probe 192.0.2.10:22');
  t.regex(plan.refusal.reason, /failed for 4 attempt\(s\) after it \(timeout\); policies involved: lock/);
  t.regex(plan.message, /refused lock until it changes again/);
});

test('entries changed but no document did (labels, addresses): the input is refused as a whole', (t) => {
  const plan = rollbackPlan(desired(after, [doc('lock', 'l1'), doc('ssh', 's1')]), before, broken, new Map([['lock', good(doc('lock', 'l1'))], ['ssh', good(doc('ssh', 's1'))]]));
  t.deepEqual(plan.policies, ['lock']);
  t.deepEqual(plan.refusal.policies, []);
  t.is(plan.refusal.inputHash, 'in-1');
  t.regex(plan.message, /refused this input until any input changes \(policies involved: lock\)/);
});
