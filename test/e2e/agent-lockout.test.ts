// The lockout guard: a change that would cut an established inbound session
// is logged loudly with the session and rule; with lockoutGuard: refuse the
// previous ruleset stays; with warn it is applied (and the session is cut).
// Allows are awaited with generous bounds (probeSure, long echo timeouts); the one drop (the cut session)
// keeps a short timeout, paired with a control session the new ruleset keeps, echoed right after.

import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab } from './lab.js';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml, sshFromOperatorsYaml, writeConfig } from './agent-harness.js';

test('lockout guard: refuse keeps the previous ruleset, warn applies with a loud warning', async (t) => {
  const lab = await Lab.create(t, 'agt-lck');
  const dirs = await agentDirs(t, { mode: 'enforce', lockoutGuard: 'refuse' });
  const file = join(dirs.policies, 'ssh.yaml');
  await writeFile(file, policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 20_000, 0, 'first apply');

  // the operator's session, and a control session from an address both rulesets allow
  const conn = await lab.openIngress('203.0.113.5', 22);
  t.true(await lab.echo(conn, 20_000));
  const control = await lab.openIngress('198.51.100.9', 22);
  t.true(await lab.echo(control, 20_000));

  // a change that would cut it
  let mark = agent.lines.length;
  await atomicWrite(file, sshFromOperatorsYaml);
  const warn = await agent.waitFor((l) => l['lockout'] === true, 10_000, mark, 'lockout warning');
  t.regex(String(warn['session']), /^203\.0\.113\.5:\d+ -> local port 22$/);
  t.is(warn['rule'], 'default-deny');
  t.is(warn.level, 40);
  await agent.waitFor((l) => /lockoutGuard refuse: keeping the previous ruleset/.test(l.msg), 30_000, mark, 'refusal');
  t.is(agent.find((l) => l.msg === 'ruleset applied', mark).length, 0);
  t.true(await lab.echo(conn, 20_000), 'session still alive');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.6', proto: 'tcp', port: 22 }, 'allow'), 'allow', 'old ruleset in force');

  // lockoutGuard: warn -> applied, warning names the session again, the session is cut
  mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce', lockoutGuard: 'warn' });
  await agent.waitFor((l) => l['lockout'] === true, 10_000, mark, 'warning in warn mode');
  await agent.waitFor((l) => l.msg === 'ruleset applied', 10_000, mark, 'apply in warn mode');
  t.false(await lab.echo(conn), 'session cut by the new ruleset');
  // Not slowness: the control session answers, and the cut one still does not with a bound the control met.
  t.true(await lab.echo(control, 20_000), 'the control session (allowed by the new ruleset) answers');
  t.false(await lab.echo(conn, 3000), 'still cut');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.7', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await agent.stop(), 0);
});
