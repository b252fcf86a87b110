// Issue 10's rollout features together, with the real agent and real packets (rollout.confirm: manual with
// an apply that fails, with a probe that breaks, with a pause). Assertions are about the order of events
// and the state left behind; every wait has a generous bound.

import test, { type ExecutionContext } from 'ava';
import { access, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readOutcomes } from '../../src/agent/commit-confirm.js';
import { runCli } from '../helpers/run-cli.js';
import { AgentProcess, agentDirs, atomicWrite, policyYaml, writeConfig, type AgentDirs, type LogLine } from './agent-harness.js';
import { Lab } from './lab.js';

const onProbation = (l: LogLine): boolean => l['confirm'] === 'pending' && typeof l['deadline'] === 'string';
const confirmed = (l: LogLine): boolean => l['confirm'] === 'confirmed';
const rolledBack = (l: LogLine): boolean => l['confirm'] === 'rolled-back';
const withdrawn = (l: LogLine): boolean => l['confirm'] === 'withdrawn';
const applied = (l: LogLine): boolean => l.msg === 'ruleset applied';
const exists = (p: string) => access(p).then(() => true, () => false);
const peer = '203.0.113.7';

async function confirm(lab: Lab, dirs: AgentDirs): Promise<void> {
  const r = await runCli(['confirm', '--config', dirs.config], { netns: lab.nodeNs, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`confirm failed: ${r.stderr}`);
}

interface StatusJson { refused?: { by: string; policies: { policy: string }[] }[]; lastApply?: { outcome: string } }
async function statusJson(dirs: AgentDirs): Promise<StatusJson> {
  return JSON.parse(await readFile(join(dirs.state, 'status.json'), 'utf8')) as StatusJson;
}

/**
 * The agent's line for the record's deadline having passed (rollout-confirm.ts logs it at the first check after
 * the deadline of a change that ended before it), with the outcome on disk then. Bound: the deadline plus a minute.
 */
async function pastDeadline(agent: AgentProcess, l: LogLine): Promise<LogLine> {
  const ms = Math.max(0, Date.parse(String(l['deadline'])) - Date.now()) + 60_000;
  return agent.waitFor((x) => x['confirm'] === 'deadline-passed' && x['id'] === l['id'], ms, 0, `deadline of ${String(l['id'])} passed`);
}

/** An agent in manual mode whose first ruleset (port 22) is confirmed. */
async function confirmedStart(t: ExecutionContext, tag: string, config: Record<string, unknown>) {
  const lab = await Lab.create(t, tag);
  const dirs = await agentDirs(t, config);
  const file = join(dirs.policies, 'p.yaml');
  await writeFile(file, policyYaml('p', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(onProbation, 30_000, 0, 'first change on probation');
  await agent.waitFor(applied, 30_000, 0, 'first apply');
  await confirm(lab, dirs);
  await agent.waitFor(confirmed, 30_000, 0, 'first change confirmed');
  return { lab, dirs, file, agent };
}

test('manual confirm: an apply that fails after its record was written withdraws the record; nothing is rolled back or refused', async (t) => {
  t.timeout(300_000); // two 30 s confirm windows waited out in full
  // 30 s: `nodewall confirm` must land inside the window on a busy machine.
  const { lab, dirs, file, agent } = await confirmedStart(t, 'rio-fail', { mode: 'enforce', rollout: { confirm: 'manual', confirmSeconds: 30 } });
  // nft that fails every load (`-f -`) opening port 2222 while the flag exists (apply.ts retries a failed delta
  // as a full replace: both fail), and works again once it is gone.
  const flag = join(dirs.root, 'fail');
  const wrapper = join(dirs.root, 'nft-wrapper.sh');
  await writeFile(wrapper, [
    '#!/bin/sh',
    'if [ "$1" = "-f" ] && [ -e "FLAG" ]; then',
    '  script=$(cat)',
    '  if printf "%s" "$script" | grep -q 2222; then echo "simulated nft failure" >&2; exit 1; fi',
    '  printf "%s\\n" "$script" | exec /usr/sbin/nft "$@"',
    'fi',
    'exec /usr/sbin/nft "$@"',
    '',
  ].join('\n').replaceAll('FLAG', flag), { mode: 0o755 });
  let mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce', nft: { path: wrapper, table: 'nodewall' }, rollout: { confirm: 'manual', confirmSeconds: 30 } });
  await agent.waitFor((l) => l.msg === 'ruleset unchanged' || applied(l), 30_000, mark, 'config change pass');

  await writeFile(flag, '');
  mark = agent.lines.length;
  await atomicWrite(file, policyYaml('p', [22, 2222]));
  const first = await agent.waitFor(onProbation, 30_000, mark, 'change on probation');
  await agent.waitFor((l) => /apply failed/.test(l.msg), 30_000, mark, 'apply failure');
  const w = await agent.waitFor(withdrawn, 30_000, mark, 'record withdrawn');
  t.is(w['id'], first['id']);
  t.like((await readOutcomes(dirs.state)).find((o) => o.id === first['id']), { outcome: 'cancelled', origin: 'agent' });
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 2222 }), 'deny', 'nothing new loaded');

  // nft works again: the retry (timer) puts the change on probation afresh, a new record with its own deadline.
  mark = agent.lines.length;
  await unlink(flag);
  const second = await agent.waitFor((l) => onProbation(l) && l['id'] !== first['id'], 30_000, mark, 'retry on probation');
  await agent.waitFor(applied, 30_000, mark, 'retry applied');
  await confirm(lab, dirs);
  await agent.waitFor(confirmed, 30_000, mark, 'retry confirmed');
  t.is((await pastDeadline(agent, first))['outcome'], 'cancelled');
  t.is((await pastDeadline(agent, second))['outcome'], 'confirmed');
  t.is(agent.find(rolledBack).length, 0, 'the withdrawn records were never rolled back');
  for (const o of (await readOutcomes(dirs.state)).filter((x) => x.id !== second['id'] && x.outcome !== 'confirmed')) t.is(o.outcome, 'cancelled', JSON.stringify(o));
  t.is((await statusJson(dirs)).refused, undefined, 'nothing refused');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 2222 }, 'allow'), 'allow');
  t.is(await agent.stop(), 0);
});

test('manual confirm + probes: a probe rolls the change back at once, its confirmation is withdrawn, one refusal (the probe\'s)', async (t) => {
  const api = '198.51.100.20';
  t.timeout(300_000); // the 30 s window is waited out in full
  // 30 s: the first confirm, and the probe's rollback, must both land inside the window on a busy machine.
  const rollout = { confirm: 'manual', confirmSeconds: 30, probes: [`${api}:6443`], probeSeconds: 3 };
  const pre = await Lab.create(t, 'rio-prb');
  await pre.addPeerAddress(api);
  await pre.listen('peer', 'tcp', 6443);
  const dirs = await agentDirs(t, { mode: 'enforce', lockoutGuard: 'off', rollout });
  await writeFile(join(dirs.policies, 'p.yaml'), policyYaml('p', [22]));
  const agent = AgentProcess.start(t, pre.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(onProbation, 30_000, 0, 'first change on probation');
  await agent.waitFor(applied, 30_000, 0, 'first apply');
  await confirm(pre, dirs);
  await agent.waitFor(confirmed, 30_000, 0, 'first change confirmed');

  const mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'lock.yaml'), [
    'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata:', '  name: lock-api', 'spec:', '  nodeSelector: {}',
    '  enableDefaultDeny: {egress: false}', '  egressDeny:', `    - toCIDR: [${api}/32]`, '',
  ].join('\n'));
  const probation = await agent.waitFor(onProbation, 30_000, mark, 'change on probation');
  const rb = await agent.waitFor((l) => l['rollback'] === true && l.level === 50, 60_000, mark, 'probe rollback');
  t.regex(rb.msg, /refused lock-api until it changes again/);
  const w = await agent.waitFor(withdrawn, 30_000, mark, 'confirmation withdrawn');
  t.is(w['id'], probation['id']);
  t.false(await exists(join(dirs.state, 'pending-confirm.json')), 'nothing left to confirm');
  t.like((await readOutcomes(dirs.state)).find((o) => o.id === probation['id']), { outcome: 'cancelled' });
  t.is(await pre.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow');

  t.is((await pastDeadline(agent, probation))['outcome'], 'cancelled');
  t.is(agent.find(rolledBack, mark).length, 0, 'no commit-confirm rollback at the deadline');
  const st = await statusJson(dirs);
  t.deepEqual(st.refused?.map((r) => [r.by, r.policies.map((p) => p.policy)]), [[`probe ${api}:6443`, ['lock-api']]]);
  t.is(await agent.stop(), 0);
});

test('manual confirm + pause: a pause ends the pending change as not confirmed; audit stays past its deadline; resume re-arms the confirmed ruleset', async (t) => {
  const { lab, dirs, file, agent } = await confirmedStart(t, 'rio-pse', { mode: 'enforce', rollout: { confirm: 'manual', confirmSeconds: 60 } });
  let mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce', rollout: { confirm: 'manual', confirmSeconds: 15 } });
  await agent.waitFor((l) => l.msg === 'ruleset unchanged' || applied(l), 30_000, mark, 'config change pass');
  mark = agent.lines.length;
  await atomicWrite(file, policyYaml('p', [2222]));
  const probation = await agent.waitFor(onProbation, 30_000, mark, 'change on probation');
  await agent.waitFor(applied, 30_000, mark, 'change applied');

  const paused = await runCli(['pause', '--for', '10m', '--reason', 'interplay', '--config', dirs.config], { netns: lab.nodeNs, timeoutMs: 90_000 });
  t.is(paused.code, 0, paused.stderr);
  const back = await agent.waitFor(rolledBack, 30_000, mark, 'pending change ended by the pause');
  t.is(back['id'], probation['id']);
  // Audit: nothing dropped, including past the old deadline (no rollback into enforce).
  t.like(await pastDeadline(agent, probation), { outcome: 'rolled-back', ended: 'rolled back before its deadline' });
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 9999 }, 'allow'), 'allow', 'paused: nothing dropped');
  t.is(agent.find(rolledBack, mark).length, 1);
  const st = await statusJson(dirs);
  t.deepEqual(st.refused?.map((r) => [r.by, r.policies.map((p) => p.policy)]), [['commit-confirm', ['p']]]);

  mark = agent.lines.length;
  const resumed = await runCli(['resume', '--config', dirs.config], { netns: lab.nodeNs, timeoutMs: 90_000 });
  t.is(resumed.code, 0, resumed.stderr);
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 9999 }, 'deny'), 'deny', 'enforcing again');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 22 }, 'allow'), 'allow', 'the confirmed ruleset');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 2222 }), 'deny', 'the unconfirmed change stays refused');
  t.is(agent.find(onProbation, mark).length, 0, 're-arming the confirmed ruleset needs no confirmation');
  t.is(await agent.stop(), 0);
});
