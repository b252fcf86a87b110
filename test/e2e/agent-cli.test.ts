// `nodewall audit` (one dry-run report) and `nodewall status` as a user runs them.

import test from 'ava';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from '../agent/paths.js';
import { Lab } from './lab.js';
import { AgentProcess, agentDirs, isApplied, policyYaml } from './agent-harness.js';

const run = promisify(execFile);

async function cli(netns: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('ip', ['netns', 'exec', netns, process.execPath, cliPath(), ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('nodewall audit reports live connections once, as a table or JSON, and writes nothing', async (t) => {
  const lab = await Lab.create(t, 'agt-cli');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  await lab.openIngress('203.0.113.5', 22);
  await lab.openIngress('203.0.113.6', 8080);

  const json = await cli(lab.nodeNs, ['audit', '--config', dirs.config, '--output', 'json']);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { verdicts: Record<string, unknown>[]; summary: { connections: number; wouldDeny: number } };
  t.like(report.verdicts.find((v) => v['peer'] === '203.0.113.5'), { kind: 'connection', port: 22, verdict: 'would-allow', policy: 'ssh' });
  t.like(report.verdicts.find((v) => v['peer'] === '203.0.113.6'), { kind: 'connection', port: 8080, verdict: 'would-deny', rule: 'default-deny' });
  t.is(report.summary.connections, 2);

  const table = await cli(lab.nodeNs, ['audit', '--config', dirs.config]);
  t.is(table.code, 0);
  t.regex(table.stdout, /^KIND\s+DIRECTION\s+PEER\s+PROTO\s+PORT\s+LOCAL\s+VERDICT\s+POLICY\s+RULE$/m);
  t.regex(table.stdout, /connection\s+ingress\s+203\.0\.113\.6\s+tcp\s+8080\s+\S+\s+would-deny\s+-\s+default-deny/);
  // mode enforce in the config, but audit never writes to the kernel
  t.notRegex((await lab.nft(['list', 'tables'])).stdout, /nodewall/);
});

test('nodewall status: never ran, running, stopped', async (t) => {
  const lab = await Lab.create(t, 'agt-sta');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const never = await cli(lab.nodeNs, ['status', '--config', dirs.config]);
  t.is(never.code, 3);
  t.regex(never.stdout, /never ran/);

  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 20_000, 0, 'first apply');
  const running = await cli(lab.nodeNs, ['status', '--config', dirs.config]);
  t.is(running.code, 0, running.stdout);
  t.regex(running.stdout, new RegExp(`agent: +running \\(pid ${agent.pid},`));
  t.regex(running.stdout, /mode: +enforce/);
  t.regex(running.stdout, /last apply: \S+ applied \(kind full, \d+ ms, trigger start\)/);
  t.regex(running.stdout, /ingress 1 \(\d+ entries, enforced\), egress 0/);
  const asJson = JSON.parse((await cli(lab.nodeNs, ['status', '--state-dir', dirs.state, '--output', 'json'])).stdout) as { running: boolean };
  t.true(asJson.running);

  t.is(await agent.stop(), 0);
  const stopped = await cli(lab.nodeNs, ['status', '--config', dirs.config]);
  t.is(stopped.code, 3);
  t.regex(stopped.stdout, /not running \(last pid \d+, stopped cleanly\)/);
});
