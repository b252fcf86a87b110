import test from 'ava';
import type { Problem } from '../../src/api/problem.js';
import { ProblemLogGate } from '../../src/agent/problem-log.js';
import type { Desired } from '../../src/agent/reconcile.js';

const problem = (message: string, line = 3): Problem => ({ severity: 'warning', pos: { file: 'k8s:ccnp/p', line, col: 5 }, policy: 'p', field: 'spec', code: 'lint/x', message });

/** Only the fields the gate reads. */
function desired(problems: Problem[], kept: Desired['merge']['kept'] = []): Desired {
  return { state: { problems }, merge: { replacedProblems: [], kept, rejected: [], removed: [] } } as unknown as Desired;
}

test('Kubernetes passes log the input problems only when they changed; other passes always', (t) => {
  const gate = new ProblemLogGate();
  t.true(gate.fresh(desired([problem('a')]), false), 'first time');
  t.false(gate.fresh(desired([problem('a')]), false), 'same problems again (a pod event)');
  t.true(gate.fresh(desired([problem('a')]), true), 'a file edit or SIGHUP logs them again');
  t.true(gate.fresh(desired([problem('a', 4)]), false), 'moved to another line');
  t.true(gate.fresh(desired([problem('a', 4), problem('b')]), false), 'one more');
  t.true(gate.fresh(desired([problem('a', 4), problem('b')], [{ policy: 'p', file: 'k8s:ccnp/p', reason: 'invalid' }]), false), 'a policy now kept at its last good version');
  t.false(gate.fresh(desired([problem('a', 4), problem('b')], [{ policy: 'p', file: 'k8s:ccnp/p', reason: 'invalid' }]), false));
  t.true(gate.fresh(desired([]), false), 'all gone');
});
