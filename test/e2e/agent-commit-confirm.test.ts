// The agent with rollout.confirm: manual, in the lab with real packets: an unconfirmed change is rolled back
// and not applied again until the input changes, a confirmed change stays, and an agent restarted (with its
// watchdog killed too) while a change is pending still rolls it back.

import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPending } from '../../src/agent/commit-confirm.js';
import { pidAlive } from '../../src/agent/status-file.js';
import { runCli } from '../helpers/run-cli.js';
import { AgentProcess, agentDirs, atomicWrite, policyYaml, writeConfig, type AgentDirs, type LogLine } from './agent-harness.js';
import { Lab } from './lab.js';

const onProbation = (l: LogLine): boolean => l['confirm'] === 'pending';
const confirmed = (l: LogLine): boolean => l['confirm'] === 'confirmed';
const rolledBack = (l: LogLine): boolean => l['confirm'] === 'rolled-back';
const refusedAgain = (l: LogLine): boolean => l['confirm'] === 'refused';

async function confirm(lab: Lab, dirs: AgentDirs) {
  return runCli(['confirm', '--config', dirs.config], { netns: lab.nodeNs, timeoutMs: 60_000 });
}

/**
 * Sets the confirm window, waits for the pass that reads it (marked before the write, so a fast pass is not
 * missed), then saves policy p with `ports` and waits until that change is applied on probation.
 */
async function changeOnProbation(agent: AgentProcess, dirs: AgentDirs, file: string, seconds: number, ports: readonly number[]) {
  let mark = agent.lines.length;
  await writeConfigSeconds(dirs, seconds);
  await agent.waitFor((l) => l.msg === 'ruleset unchanged' || l.msg === 'ruleset applied', 30_000, mark, 'config change pass');
  mark = agent.lines.length;
  await atomicWrite(file, policyYaml('p', ports));
  const probation = await agent.waitFor(onProbation, 30_000, mark, 'change on probation');
  await agent.waitFor((l) => l.msg === 'ruleset applied', 30_000, mark, 'change applied');
  return { probation, mark };
}

/** Both enforcers of a life die: the agent, and the watchdog the pending record names (waited for, bounded). */
async function killAgentAndWatchdog(agent: AgentProcess, watchdogPid: number | undefined): Promise<void> {
  // Never process.kill(-1): that signals every process we may signal.
  if (watchdogPid === undefined || !Number.isInteger(watchdogPid) || watchdogPid <= 0) throw new Error(`the pending record names no watchdog: ${String(watchdogPid)}`);
  agent.signal('SIGKILL');
  process.kill(watchdogPid, 'SIGKILL');
  const end = Date.now() + 30_000;
  while (pidAlive(watchdogPid)) {
    if (Date.now() > end) throw new Error(`watchdog pid ${watchdogPid} still alive 30 s after SIGKILL`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An agent (manual confirm, 30 s) started on policy p allowing port 22, its first change confirmed. */
async function startConfirmed(t: ExecutionContext, lab: Lab) {
  const dirs = await agentDirs(t, { mode: 'enforce', rollout: { confirm: 'manual', confirmSeconds: 30 } });
  const file = join(dirs.policies, 'p.yaml');
  await writeFile(file, policyYaml('p', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(onProbation, 30_000, 0, 'first change on probation');
  t.is((await confirm(lab, dirs)).code, 0);
  await agent.waitFor(confirmed, 30_000, 0, 'confirmed');
  return { dirs, file, agent };
}

async function pendingRecord(dirs: AgentDirs) {
  const r = await readPending(dirs.state);
  if (r.kind !== 'ok') throw new Error(`no pending record: ${r.kind}`);
  return r.value;
}

test('manual confirm: an unconfirmed change is rolled back and not retried; a confirmed change stays', async (t) => {
  t.timeout(300_000); // two 30 s confirm windows wait out in full
  const lab = await Lab.create(t, 'acc-man');
  // Long enough for `nodewall confirm` to arrive from a busy machine (and unlike the 30 s set below, so that
  // setting those is a config change the agent passes on).
  const dirs = await agentDirs(t, { mode: 'enforce', rollout: { confirm: 'manual', confirmSeconds: 60 } });
  const file = join(dirs.policies, 'p.yaml');
  await writeFile(file, policyYaml('p', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);

  // The very first ruleset is a change too (from no table): confirm it.
  await agent.waitFor(onProbation, 30_000, 0, 'first change on probation');
  await agent.waitFor((l) => l.msg === 'ruleset applied', 30_000, 0, 'first apply');
  const c1 = await confirm(lab, dirs);
  t.is(c1.code, 0, c1.stderr);
  t.regex(c1.stdout, /confirmed agent change/);
  await agent.waitFor(confirmed, 30_000, 0, 'confirmation seen by the agent');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'), 'allow');

  // A change that is never confirmed: rolled back at its deadline.
  // Long enough that \`status\` (below) still finds it pending on a busy machine.
  const change = await changeOnProbation(agent, dirs, file, 30, [2222]);
  const probation = change.probation;
  let mark = change.mark;
  const status = await runCli(['status', '--config', dirs.config], { netns: lab.nodeNs });
  t.regex(status.stdout, new RegExp(`pending confirmation: agent change ${String(probation['id'])}`));
  const back = await agent.waitFor(rolledBack, 60_000, mark, 'rollback');
  t.is(back['id'], probation['id']);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'), 'allow', 'previous ruleset back');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 2222 }), 'deny');

  // A forced pass (SIGHUP re-reads everything) does not apply the same input again.
  mark = agent.lines.length;
  agent.signal('SIGHUP');
  await agent.waitFor(refusedAgain, 30_000, mark, 'refusal of the same input');
  t.is(agent.find((l) => l.msg === 'ruleset applied', mark).length, 0);
  const st = JSON.parse((await runCli(['status', '--config', dirs.config, '--output', 'json'], { netns: lab.nodeNs })).stdout) as {
    status: { lastApply: { outcome: string } }; lastConfirmation: { outcome: string; origin: string };
  };
  t.is(st.status.lastApply.outcome, 'refused');
  t.deepEqual([st.lastConfirmation.outcome, st.lastConfirmation.origin], ['rolled-back', 'agent']);

  // A changed input is tried again, and confirmed it stays past its deadline.
  await writeConfigSeconds(dirs, 30);
  mark = agent.lines.length;
  await atomicWrite(file, policyYaml('p', [22, 2222]));
  const again = await agent.waitFor(onProbation, 30_000, mark, 'new change on probation');
  await agent.waitFor((l) => l.msg === 'ruleset applied', 30_000, mark, 'new change applied');
  const c2 = await confirm(lab, dirs);
  t.is(c2.code, 0, c2.stderr);
  await agent.waitFor(confirmed, 30_000, mark, 'second confirmation');
  // The agent logs the deadline of a change that ended before it when it passes (bound: deadline + a minute).
  const deadlineMs = Math.max(0, Date.parse(String(again['deadline'])) - Date.now()) + 60_000;
  const passed = await agent.waitFor((l) => l['confirm'] === 'deadline-passed' && l['id'] === again['id'], deadlineMs, mark, 'deadline passed');
  t.is(passed['outcome'], 'confirmed');
  t.is(agent.find(rolledBack, mark).length, 0);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 2222 }, 'allow'), 'allow');
  t.is(await agent.stop(), 0);
});

test('an agent restarted while its change is pending (watchdog killed too) still rolls it back', async (t) => {
  const lab = await Lab.create(t, 'acc-rst');
  const { dirs, file, agent: first } = await startConfirmed(t, lab);

  // Long enough that both die before the deadline on a busy machine (else the watchdog rolls back, not the agent).
  await changeOnProbation(first, dirs, file, 20, [2222]);
  const rec = await pendingRecord(dirs);
  t.true(rec.watchdogPid !== undefined);
  await killAgentAndWatchdog(first, rec.watchdogPid);

  const second = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  const back = await second.waitFor(rolledBack, 60_000, 0, 'rollback by the restarted agent');
  t.is(back['id'], rec.id);
  t.regex(String(back['by']), /^agent pid \d+$/);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 2222 }), 'deny');
  // The restarted agent does not re-apply the rolled-back input either.
  const mark = second.lines.length;
  second.signal('SIGHUP');
  await second.waitFor(refusedAgain, 30_000, mark, 'refusal after the restart');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 2222 }), 'deny');
  t.is(await second.stop(), 0);
});

async function writeConfigSeconds(dirs: AgentDirs, seconds: number): Promise<void> {
  await writeConfig(dirs, { mode: 'enforce', rollout: { confirm: 'manual', confirmSeconds: seconds } });
}

test('after a reboot an unconfirmed change is rolled back at once, never adopted, even long before its deadline', async (t) => {
  const lab = await Lab.create(t, 'acc-boot');
  const { dirs, file, agent: first } = await startConfirmed(t, lab);
  await changeOnProbation(first, dirs, file, 3600, [2222]);
  const rec = await pendingRecord(dirs);
  await killAgentAndWatchdog(first, rec.watchdogPid);
  // "Reboot": the kernel forgets every table; the record on disk is from the boot before (deadline an hour away).
  await lab.nft(['flush', 'ruleset']);
  await writeFile(join(dirs.state, 'pending-confirm.json'), JSON.stringify({ ...rec, bootId: 'a-previous-boot' }));

  const second = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  const back = await second.waitFor(rolledBack, 60_000, 0, 'rollback of the record of the previous boot');
  t.is(back['id'], rec.id);
  await second.waitFor(refusedAgain, 30_000, 0, 'the unconfirmed input not applied');
  t.is(second.find((l) => l.msg === 'ruleset applied').length, 0, 'the unconfirmed ruleset is never loaded');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'), 'allow', 'the confirmed ruleset is back');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 2222 }), 'deny');
  t.is(await second.stop(), 0);
});
