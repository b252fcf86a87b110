// Dry-run writes nothing to the kernel and logs one verdict line per live
// connection / listening socket, the same verdict `nodewall trace` gives, once
// per flow. Audit loads the audit ruleset and reports its would-drop records.

import test from 'ava';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from '../agent/paths.js';
import { Lab } from './lab.js';
import { AgentProcess, agentDirs, isApplied, policyYaml, type LogLine } from './agent-harness.js';

const run = promisify(execFile);

async function trace(config: string, l: LogLine): Promise<{ verdict: string; decidedBy: string; matched: { policy: string; rule: string }[] }> {
  const args = [cliPath(), 'trace', '--config', config, '--output', 'json',
    '--direction', String(l['direction']), '--peer', String(l['peer']), '--proto', String(l['proto']), '--port', String(l['port'])];
  const r = await run(process.execPath, args, { timeout: 30_000 });
  return JSON.parse(r.stdout) as { verdict: string; decidedBy: string; matched: { policy: string; rule: string }[] };
}

const verdictLines = (a: AgentProcess, from = 0) => a.find((l) => l['verdictLine'] === true, from);

test('dry-run: verdict lines for live connections and listeners match trace; nothing written; no repeats', async (t) => {
  const lab = await Lab.create(t, 'agt-dry');
  const dirs = await agentDirs(t, { mode: 'dry-run', logLevel: 'debug' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  await lab.listen('node', 'udp', 5353);
  const c1 = await lab.openIngress('203.0.113.5', 22);
  const c2 = await lab.openIngress('203.0.113.6', 8080);
  t.true(await lab.echo(c1));

  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor((l) => l.msg === 'dry-run: verdicts for live connections', 20_000, 0, 'dry-run report');
  const lines = verdictLines(agent);
  const conn = (peer: string, port: number) => lines.filter((l) => l['kind'] === 'connection' && l['peer'] === peer && l['port'] === port);
  t.like(conn('203.0.113.5', 22)[0], { direction: 'ingress', proto: 'tcp', verdict: 'would-allow', policy: 'ssh', rule: 'spec.ingress[0]' });
  t.like(conn('203.0.113.6', 8080)[0], { direction: 'ingress', proto: 'tcp', verdict: 'would-deny', policy: null, rule: 'default-deny' });
  // UDP listener: from /proc/net (systeminformation misses UDP)
  t.true(lines.some((l) => l['kind'] === 'listener' && l['proto'] === 'udp' && l['port'] === 5353 && l['verdict'] === 'would-deny'));
  t.true(lines.some((l) => l['kind'] === 'listener' && l['proto'] === 'tcp' && l['port'] === 22 && l['verdict'] === 'would-allow'));
  const counts = agent.find((l) => l.msg === 'dry-run: ruleset that would be applied');
  t.is(counts.length, 1);
  t.like(counts[0], { level: 30, dryRun: true, table: 'nodewall', enforced: { ingress: true, egress: false } });
  const script = agent.find((l) => l.msg === 'dry-run: ruleset script');
  t.is(script[0]?.level, 20);
  t.regex(String(script[0]?.['script']), /table inet nodewall \{/);

  // every line agrees with `nodewall trace`
  for (const l of lines.filter((x) => x['proto'] === 'tcp' || x['proto'] === 'udp')) {
    const v = await trace(dirs.config, l);
    t.is(l['verdict'], v.verdict === 'allow' ? 'would-allow' : 'would-deny', JSON.stringify(l));
    const byEntry = v.decidedBy === 'allow-entry' || v.decidedBy === 'deny-entry';
    t.is(l['rule'], byEntry ? v.matched[0]?.rule : v.decidedBy, JSON.stringify(l));
  }

  // nothing in the kernel
  t.notRegex((await lab.nft(['list', 'tables'])).stdout, /nodewall/);
  t.true(await lab.echo(c2), 'dry-run does not cut anything');

  // a new connection is reported on the next tick; old ones are not repeated
  const mark = agent.lines.length;
  await lab.openIngress('203.0.113.7', 22);
  await agent.waitFor((l) => l['verdictLine'] === true && l['peer'] === '203.0.113.7', 10_000, mark, 'line for the new connection');
  await new Promise((r) => setTimeout(r, 1500));
  t.is(verdictLines(agent).filter((l) => l['peer'] === '203.0.113.5' && l['kind'] === 'connection').length, 1);
  t.is(verdictLines(agent, mark).filter((l) => l['peer'] !== '203.0.113.7').length, 0);
  t.is(await agent.stop(), 0);
});

test('audit: would-drop records from the kernel become verdict lines with counts', async (t) => {
  const lab = await Lab.create(t, 'agt-aud');
  const dirs = await agentDirs(t, { mode: 'audit' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 20_000, 0, 'audit ruleset applied');
  // audit mode accepts what enforce would drop, and records it
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 8080 }), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.10', proto: 'tcp', port: 8080 }), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 22 }), 'allow');
  const l = await agent.waitFor((x) => x['kind'] === 'audit-record' && x['peer'] === '203.0.113.9', 10_000, 0, 'audit record line');
  t.like(l, { direction: 'ingress', proto: 'tcp', port: 8080, verdict: 'would-deny', policy: null, rule: 'default-deny' });
  await agent.waitFor((x) => x['kind'] === 'audit-record' && x['peer'] === '203.0.113.10', 10_000, 0, 'second record');
  const lines = agent.find((x) => x['kind'] === 'audit-record');
  // records and counters change the table's contents, not its structure: no false drift
  t.deepEqual(agent.find((x) => /table (changed|missing)/.test(x.msg)), []);
  t.false(lines.some((x) => x['port'] === 22), 'allowed traffic is not recorded');
  t.true(lines.every((x) => typeof x['count'] === 'number' && (x['count'] as number) >= 1));
  t.is(await agent.stop(), 0);
});
