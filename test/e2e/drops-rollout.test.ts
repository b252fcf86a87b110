// Drop records next to the rollout features (issue 10 + 11), with the real agent and real packets:
// - a flow a failsafe accepts is never a drop record; the flows next to it (same port from outside the failsafe's
//   network, the next port from inside it) are, and `nodewall drops`, the agent's verdict lines and `trace` name
//   the same rule for each;
// - while a break-glass pause is in force `nodewall drops` and the agent say recording is paused (no stale rows
//   shown as current), the metrics say paused with the end time, and drops are recorded again after the re-arm;
// - the rule counters count the failsafe as "(failsafe)", never as a policy, and the drops as drops.
// Assertions are about the order of events; every wait has a generous bound.

import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from '../agent/paths.js';
import type { DropRow } from '../../src/agent/drop-records.js';
import { Lab, type Probe } from './lab.js';
import { AgentProcess, agentDirs, isApplied, policyYaml, type AgentDirs, type LogLine } from './agent-harness.js';
import { sampleValue } from '../helpers/prom-text.js';
import { scrapeMetrics, waitMetrics } from './scrape-metrics.js';

const run = promisify(execFile);

function cli(lab: Lab, dirs: AgentDirs, args: readonly string[]): Promise<string> {
  return run('ip', ['netns', 'exec', lab.nodeNs, process.execPath, cliPath(), ...args, '--config', dirs.config],
    { timeout: 120_000, maxBuffer: 64 << 20, env: { ...process.env, SUDO_USER: 'alice' } }).then((r) => r.stdout);
}

interface DropsDoc {
  recording: 'on' | 'off' | 'paused';
  pause?: { until: string; reason: string };
  drops: DropRow[];
  note?: string;
}

interface TraceDoc {
  verdict: string;
  decidedBy: string;
  matched: { policy: string; rule: string }[];
}

async function drops(lab: Lab, dirs: AgentDirs): Promise<DropsDoc> {
  return JSON.parse(await cli(lab, dirs, ['drops', '-o', 'json'])) as DropsDoc;
}

async function trace(lab: Lab, dirs: AgentDirs, p: Probe): Promise<TraceDoc> {
  return JSON.parse(await cli(lab, dirs, ['trace', '-o', 'json', '--direction', p.direction, '--peer', p.peer, '--proto', String(p.proto), '--port', String(p.port)])) as TraceDoc;
}

const rowOf = (doc: DropsDoc, p: Probe) => doc.drops.find((r) => r.peer === p.peer && r.port === p.port && r.proto === p.proto);
const dropLine = (p: Probe) => (l: LogLine) => l['kind'] === 'drop' && l['peer'] === p.peer && l['port'] === p.port;

async function start(t: ExecutionContext, tag: string, config: Record<string, unknown>) {
  const lab = await Lab.create(t, tag);
  const dirs = await agentDirs(t, { mode: 'enforce', lockoutGuard: 'off', dropRecords: { size: 1024, timeoutSeconds: 600 }, metrics: { listen: '127.0.0.1:9964' }, ...config });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  return { lab, dirs, agent };
}

test('a failsafe-accepted flow is never a drop record; the flows next to it are, and drops, verdict lines and trace agree', async (t) => {
  const { lab, dirs, agent } = await start(t, 'dfs', { failsafe: { ingress: ['tcp/2222 from 203.0.113.0/24'] } });
  const accepted: Probe = { direction: 'ingress', peer: '203.0.113.40', proto: 'tcp', port: 2222 };
  const neighbours: Probe[] = [
    { direction: 'ingress', peer: '198.51.100.40', proto: 'tcp', port: 2222 }, // same port, outside the failsafe's network
    { direction: 'ingress', peer: '203.0.113.40', proto: 'tcp', port: 2223 }, // inside the network, the next port
  ];
  t.is(await lab.probeSure(accepted, 'allow'), 'allow', 'the failsafe accepts');
  for (const p of neighbours) t.is(await lab.probeSure(p, 'deny'), 'deny', `${p.peer} ${p.port} is dropped`);
  for (const p of neighbours) await agent.waitFor(dropLine(p), 60_000, 0, `drop verdict line for ${p.peer}:${p.port}`);
  // The accepted flow again, after the denied ones: still no record, however often it is sent.
  t.is(await lab.probeSure(accepted, 'allow'), 'allow');

  const doc = await drops(lab, dirs);
  t.is(doc.recording, 'on');
  t.is(rowOf(doc, accepted), undefined, `no drop record for the failsafe flow: ${JSON.stringify(doc.drops)}`);
  t.is(agent.find(dropLine(accepted)).length, 0, 'no drop verdict line for it');
  t.is((await trace(lab, dirs, accepted)).decidedBy, 'failsafe');
  for (const p of neighbours) {
    const row = rowOf(doc, p);
    const tr = await trace(lab, dirs, p);
    const line = agent.find(dropLine(p))[0];
    t.is(tr.verdict, 'deny');
    t.is(row?.decidedBy as string | undefined, tr.decidedBy, `drops and trace agree on ${p.peer}:${p.port}`);
    t.is(row?.decidedBy, 'default-deny');
    t.is(line?.['decidedBy'], tr.decidedBy, 'the verdict line too');
    t.is(line?.['rule'], row?.rule);
  }

  // The rule counters: the failsafe's packets are "(failsafe)", not a policy's; the drops are drops.
  const f = await waitMetrics(lab, (m) => (sampleValue(m, 'nodewall_rule_packets_total', { direction: 'ingress', policy: '(nodewall)', rule: 'default-deny', action: 'drop' }) ?? 0) >= 2, 'default-deny drops counted');
  t.true((sampleValue(f, 'nodewall_rule_packets_total', { direction: 'ingress', policy: '(failsafe)', rule: 'tcp/2222 from 203.0.113.0/24', action: 'accept' }) ?? 0) >= 1);
  const fam = f.get('nodewall_rule_packets_total');
  t.false((fam?.samples ?? []).some((s) => s.labels['action'] === 'audit'), 'enforce mode has no would-be drops');
  t.is(await agent.stop(), 0);
});

test('paused: drops and the agent say recording is paused, metrics say paused until when; drops are recorded again after the re-arm', async (t) => {
  const { lab, dirs, agent } = await start(t, 'dpause', {});
  const before: Probe = { direction: 'ingress', peer: '203.0.113.50', proto: 'tcp', port: 8080 };
  const during: Probe = { direction: 'ingress', peer: '203.0.113.51', proto: 'tcp', port: 8080 };
  const after: Probe = { direction: 'ingress', peer: '203.0.113.52', proto: 'tcp', port: 8080 };
  t.is(await lab.probeSure(before, 'deny'), 'deny');
  await agent.waitFor(dropLine(before), 60_000, 0, 'drop line before the pause');
  t.truthy(rowOf(await drops(lab, dirs), before));
  const m0 = await scrapeMetrics(lab);
  t.is(sampleValue(m0, 'nodewall_paused'), 0);

  let mark = agent.lines.length;
  await cli(lab, dirs, ['pause', '--for', '20s', '--reason', 'incident 7']);
  await agent.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('PAUSED:'), 30_000, mark, 'PAUSED');
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['mode'] === 'audit', 30_000, mark, 'audit ruleset loaded');
  await agent.waitFor((l) => l['dropRecords'] === 'paused', 30_000, mark, 'the drop reporter says paused');
  t.is(await lab.probeSure(during, 'allow'), 'allow', 'paused: nothing dropped');

  const paused = await drops(lab, dirs);
  t.is(paused.recording, 'paused');
  t.is(paused.pause?.reason, 'incident 7');
  t.deepEqual(paused.drops, [], 'no row shown as a current drop while paused');
  const text = await cli(lab, dirs, ['drops']);
  t.regex(text, /enforcement is PAUSED until \S+ \(asked by alice .*: incident 7\)/);
  t.regex(text, /no drops are recorded meanwhile/);
  const m1 = await waitMetrics(lab, (m) => sampleValue(m, 'nodewall_paused') === 1, 'paused gauge');
  const end = sampleValue(m1, 'nodewall_pause_end_timestamp_seconds', { suspended_mode: 'enforce' }) ?? 0;
  t.is(end, Date.parse(paused.pause?.until ?? '') / 1000, 'the metric carries the end the CLI shows');
  t.true((sampleValue(m1, 'nodewall_pause_start_timestamp_seconds', { suspended_mode: 'enforce' }) ?? Infinity) <= end);
  // Paused drops would be "audit" (would-be drops) in the counters, never "drop".
  await waitMetrics(lab, (m) => (sampleValue(m, 'nodewall_rule_packets_total', { direction: 'ingress', policy: '(nodewall)', rule: 'default-deny', action: 'audit' }) ?? 0) >= 1, 'the paused flow counted as audit');

  mark = agent.lines.length;
  await agent.waitFor((l) => l.msg === 'pause ended (expired): enforcement is back', 60_000, mark, 'pause expiry');
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['mode'] === 'enforce', 30_000, mark, 'enforce ruleset loaded again');
  await agent.waitFor((l) => l['dropRecords'] === 'on', 30_000, mark, 'the drop reporter says recording again');
  t.is(await lab.probeSure(after, 'deny'), 'deny');
  await agent.waitFor(dropLine(after), 60_000, mark, 'drop line after the re-arm');
  const resumed = await drops(lab, dirs);
  t.is(resumed.recording, 'on');
  t.is(resumed.pause, undefined);
  t.truthy(rowOf(resumed, after), 'recorded again');
  t.is(rowOf(resumed, during), undefined, 'the flow of the pause was never a drop');
  await waitMetrics(lab, (m) => sampleValue(m, 'nodewall_paused') === 0 && m.get('nodewall_pause_end_timestamp_seconds')?.samples.length === 0, 'not paused any more');
  t.is(await agent.stop(), 0);
});

test('an agent stopped during a pause restores enforcement with its drop records: drops are current again, the recorded pause is a note', async (t) => {
  const { lab, dirs, agent } = await start(t, 'dpstop', {});
  await cli(lab, dirs, ['pause', '--for', '10m', '--reason', 'stop test']);
  await agent.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('PAUSED:'), 30_000, 0, 'PAUSED');
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['mode'] === 'audit', 30_000, 0, 'audit ruleset loaded');
  t.is((await drops(lab, dirs)).recording, 'paused');
  t.is(await agent.stop(), 0);
  // The pause file stays (an agent started before its end resumes it), but the kernel enforces and records.
  const denied: Probe = { direction: 'ingress', peer: '203.0.113.60', proto: 'tcp', port: 8080 };
  t.is(await lab.probeSure(denied, 'deny'), 'deny', 'enforcement restored at stop');
  const doc = await drops(lab, dirs);
  t.is(doc.recording, 'on');
  t.truthy(rowOf(doc, denied), 'the drop after the stop is recorded and shown');
  t.regex(doc.note ?? '', /a pause is recorded, but the table enforces/);
  t.regex(await cli(lab, dirs, ['drops']), /^note: a pause is recorded until \S+, but the table enforces/m);
});
