// Break-glass pause with the real agent and real packets: pause makes a denied
// port reachable (and records the flow), enforcement comes back by itself at
// the deadline, also when the agent was killed and started again during the
// pause, and `resume` ends it early. Assertions are about the order of events;
// every wait has a generous bound.

import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from '../agent/paths.js';
import { Lab, type Probe } from './lab.js';
import { AgentProcess, agentDirs, isApplied, policyYaml, type AgentDirs, type LogLine } from './agent-harness.js';

const run = promisify(execFile);

const denied: Probe = { direction: 'ingress', peer: '203.0.113.30', proto: 'tcp', port: 8080 };
const ssh: Probe = { direction: 'ingress', peer: '203.0.113.30', proto: 'tcp', port: 22 };

/** The CLI inside the lab's node namespace: the watchdog `pause` starts must only ever see the lab's kernel. */
function cli(lab: Lab, dirs: AgentDirs, args: readonly string[]) {
  return run('ip', ['netns', 'exec', lab.nodeNs, process.execPath, cliPath(), ...args, '--config', dirs.config], { timeout: 90_000, env: { ...process.env, SUDO_USER: 'alice' } });
}

const isPaused = (l: LogLine) => typeof l.msg === 'string' && l.msg.startsWith('PAUSED:');
const isEnded = (how: string) => (l: LogLine) => l.msg === `pause ended (${how}): enforcement is back`;

async function setup(t: ExecutionContext, tag: string) {
  const lab = await Lab.create(t, tag);
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'ruleset applied');
  t.is(await lab.probe(denied), 'deny', 'the policy denies 8080');
  return { lab, dirs, agent };
}

const exists = (p: string) => access(p).then(() => true, () => false);

test('pause: the denied port is reachable and recorded, then enforcement comes back by itself', async (t) => {
  const { lab, dirs, agent } = await setup(t, 'agt-pse');
  // Long enough for the checks made during the pause on a busy 2-core machine (the pause counts from `pause` itself).
  const out = await cli(lab, dirs, ['pause', '--for', '45s', '--reason', 'incident 42']);
  t.regex(out.stdout, /^PAUSED until \S+: the agent loaded its ruleset in audit mode/);
  const paused = await agent.waitFor(isPaused, 30_000, 0, 'PAUSED log line');
  t.like(paused['pause'], { reason: 'incident 42', requestedBy: { user: 'alice', sudoUser: 'alice' } });
  t.regex(paused.msg, /asked by alice \(via sudo, uid \d+.*\): incident 42/);
  t.is(await lab.probeSure(denied, 'allow'), 'allow', 'paused: nothing dropped');
  const status = await cli(lab, dirs, ['status']);
  t.regex(status.stdout, /PAUSED: {3}enforce suspended, audit rendered .* until /);
  t.regex(status.stdout, /asked by alice \(via sudo, uid \d+[^)]*\) at \S+: incident 42/);
  const rec = await agent.waitFor((l) => l['kind'] === 'audit-record' && l['peer'] === denied.peer && l['port'] === 8080, 30_000, 0, 'audit record of the paused flow');
  t.like(rec, { verdict: 'would-deny', rule: 'default-deny' });

  const ended = await agent.waitFor(isEnded('expired'), 90_000, 0, 'pause expiry');
  await agent.waitFor((l) => isApplied(l) && l['mode'] === 'enforce', 30_000, agent.lines.indexOf(ended), 'enforce ruleset after expiry');
  t.is(await lab.probe(denied), 'deny', 'enforcement is back');
  t.is(await lab.probeSure(ssh, 'allow'), 'allow');
  t.false(await exists(join(dirs.state, 'pause.json')), 'the expired pause file is gone');
  t.notRegex((await cli(lab, dirs, ['status'])).stdout, /PAUSED/);
  t.is(await agent.stop(), 0);
});

test('pause: an agent killed and started again during the pause resumes it, and enforcement comes back at the deadline', async (t) => {
  const { lab, dirs, agent } = await setup(t, 'agt-psr');
  const out = await cli(lab, dirs, ['pause', '--for', '20s', '--reason', 'restart test']);
  const until = Date.parse(/PAUSED until (\S+):/.exec(out.stdout)?.[1] ?? '');
  t.true(Number.isFinite(until));
  t.is(await lab.probeSure(denied, 'allow'), 'allow');
  agent.signal('SIGKILL');
  await agent.stop();
  // The kernel keeps the audit ruleset while no agent runs (nothing re-arms it then: see README).
  const again = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  const first = await again.waitFor((l) => isApplied(l) || l.msg === 'pause ended (expired): enforcement is back', 60_000, 0, 'first apply after restart');
  if (Date.parse(first.time) < until) {
    // Started within the pause: it must have taken the pause up again before applying.
    const p = again.find(isPaused);
    t.is(p.length, 1, 'the restarted agent resumes the pause');
    t.is(again.lines.indexOf(p[0]!) < again.lines.indexOf(first), true);
    t.is(first['mode'], 'audit');
    await again.waitFor(isEnded('expired'), 60_000, 0, 'expiry in the restarted agent');
  }
  await again.waitFor((l) => isApplied(l) && l['mode'] === 'enforce', 60_000, 0, 'enforce ruleset');
  t.is(await lab.probe(denied), 'deny', 'enforcement is back after the restart');
  t.false(await exists(join(dirs.state, 'pause.json')));
  t.is(await again.stop(), 0);
});

test('resume ends a pause early; pause refuses bad durations and a missing agent', async (t) => {
  const { lab, dirs, agent } = await setup(t, 'agt-psm');
  await cli(lab, dirs, ['pause', '--for', '10m']);
  t.is(await lab.probeSure(denied, 'allow'), 'allow');
  const out = await cli(lab, dirs, ['resume']);
  t.is(out.stdout, 'resumed: enforcement is back\n');
  await agent.waitFor(isEnded('resumed'), 30_000, 0, 'resumed log line');
  t.is(await lab.probe(denied), 'deny');
  t.is((await cli(lab, dirs, ['resume'])).stdout, 'not paused\n');

  for (const bad of ['0', '0s', '-5m', 'soon', '25h', '1.5m', '']) {
    const err = await cli(lab, dirs, ['pause', `--for=${bad}`]).then(() => undefined, (e: { code: number; stderr: string }) => e);
    t.is(err?.code, 2, `--for ${bad}`);
    t.regex(err?.stderr ?? '', /--for "[^"]*": /);
  }
  t.is(await agent.stop(), 0);
  const err = await cli(lab, dirs, ['pause', '--for', '1m']).then(() => undefined, (e: { code: number; stderr: string }) => e);
  t.is(err?.code, 3);
  t.regex(err?.stderr ?? '', /no running nodewall agent .*a pause needs the agent/);
  t.false(await exists(join(dirs.state, 'pause.json')));
});

test('an agent stopped cleanly during a pause restores enforcement before it exits', async (t) => {
  const { lab, dirs, agent } = await setup(t, 'agt-pss');
  await cli(lab, dirs, ['pause', '--for', '10m', '--reason', 'stop test']);
  t.is(await lab.probeSure(denied, 'allow'), 'allow');
  t.is(await agent.stop(), 0);
  t.true(agent.find((l) => l.msg.startsWith('agent stopping during a pause: enforcement restored')).length === 1);
  t.is(await lab.probe(denied), 'deny', 'no agent, no pause');
  t.regex((await cli(lab, dirs, ['status']).catch((e: { stdout: string }) => e)).stdout, /pause: {4}recorded until .*the agent is not running/);
});

test('an agent killed during a pause and never started again: the watchdog re-arms enforcement at the deadline', async (t) => {
  const { lab, dirs, agent } = await setup(t, 'agt-psw');
  // The agent must still be paused when it is killed: a pause that ends before is re-armed by the agent itself.
  await cli(lab, dirs, ['pause', '--for', '30s', '--reason', 'watchdog test']);
  t.is(await lab.probeSure(denied, 'allow'), 'allow');
  agent.signal('SIGKILL');
  await agent.stop();
  const deadline = Date.now() + 90_000;
  let listing = '';
  while (Date.now() < deadline) {
    listing = (await lab.nft(['list', 'table', 'inet', 'nodewall'])).stdout;
    if (listing.includes('nodewall pause re-armed by the watchdog')) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.regex(listing, /chain nw_audit_in \{[^}]*counter packets \d+ bytes \d+ drop comment "nodewall pause re-armed by the watchdog"/);
  t.is(await lab.probe(denied), 'deny', 'drops again without any agent');
  t.is(await lab.probeSure(ssh, 'allow'), 'allow', 'allowed traffic still passes');
});
