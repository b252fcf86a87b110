// Drop records in enforce mode, with the real agent and real packets: every kind of drop (default deny, an
// explicit deny entry, a datapath drop) shows up in `nodewall drops` with the policy and rule `nodewall trace`
// names for the same flow, the agent logs it as a verdict line, and a flood of 100k distinct denied peers
// fills the record set to its bound and no further while allowed traffic keeps passing.

import test from 'ava';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { cliPath } from '../agent/paths.js';
import type { DropRow } from '../../src/agent/drop-records.js';
import { Lab, nodeV6 } from './lab.js';
import { AgentProcess, agentDirs, isApplied, policyYaml } from './agent-harness.js';
import { floodDistinctPeers } from './raw-flood.js';

const run = promisify(execFile);

async function cli(netns: string, args: string[]): Promise<string> {
  const r = await run('ip', ['netns', 'exec', netns, process.execPath, cliPath(), ...args], { timeout: 120_000, maxBuffer: 256 << 20 });
  return r.stdout;
}

interface DropsDoc {
  records: number;
  size: number | null;
  recordedPackets: number;
  unrecordedPackets: number;
  drops: DropRow[];
}

interface TraceDoc {
  verdict: string;
  decidedBy: string;
  matched: { policy: string; rule: string }[];
}

const denyExtra = ['  ingressDeny:', '    - fromCIDR: ["198.51.100.66/32"]'].join('\n');

test('default deny, an explicit deny and a datapath drop show up in `nodewall drops` with the rule trace names', async (t) => {
  const lab = await Lab.create(t, 'drops');
  const dirs = await agentDirs(t, { mode: 'enforce', dropRecords: { size: 1024, timeoutSeconds: 600 } });
  await writeFile(join(dirs.policies, 'edge.yaml'), policyYaml('edge', [22], denyExtra));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');

  const probes = [
    { kind: 'default-deny', probe: { direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 8080 } },
    { kind: 'deny-entry', probe: { direction: 'ingress', peer: '198.51.100.66', proto: 'tcp', port: 22 } },
    { kind: 'datapath', probe: { direction: 'ingress', peer: '2001:db8::5', proto: 'icmpv6', icmpType: 139 } },
  ] as const;
  for (const p of probes) t.is(await lab.probeSure(p.probe, 'deny'), 'deny', `${p.kind} probe is dropped`);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22 }, 'allow'), 'allow', 'allowed traffic passes');

  // The agent logs the explicit deny as a verdict line naming the policy and rule.
  const line = await agent.waitFor((l) => l['kind'] === 'drop' && l['peer'] === '198.51.100.66', 60_000, 0, 'drop verdict line');
  t.is(line['verdictLine'], true);
  t.is(line['policy'], 'edge');
  t.is(line['rule'], 'spec.ingressDeny[0]');

  const doc = JSON.parse(await cli(lab.nodeNs, ['drops', '--config', dirs.config, '-o', 'json'])) as DropsDoc;
  t.is(doc.size, 1024);
  for (const p of probes) {
    const pr = p.probe;
    const row = doc.drops.find((r) => r.peer === pr.peer && (pr.proto === 'icmpv6' ? r.icmpType === pr.icmpType : r.port === pr.port));
    if (row === undefined) {
      t.fail(`no drop record for ${JSON.stringify(pr)}: ${JSON.stringify(doc.drops)}`);
      continue;
    }
    t.is(row.decidedBy, p.kind, `${p.kind}: ${JSON.stringify(row)}`);
    t.true(row.packets >= 1);
    t.truthy(row.firstSeen);
    t.truthy(row.lastSeen);
    t.true(Date.parse(row.firstSeen ?? '') <= Date.parse(row.lastSeen ?? ''), 'first seen before last seen');
    const l4 = pr.proto === 'icmpv6' ? ['--icmp-type', String(pr.icmpType)] : ['--port', String(pr.port)];
    const trace = JSON.parse(await cli(lab.nodeNs, ['trace', '--config', dirs.config, '-o', 'json', '--direction', pr.direction, '--peer', pr.peer, '--proto', pr.proto, ...l4])) as TraceDoc;
    t.is(trace.verdict, 'deny');
    t.is(trace.decidedBy, row.decidedBy, `trace and drops agree on what decided ${pr.peer}`);
    t.is(row.policy, trace.decidedBy === 'deny-entry' ? (trace.matched[0]?.policy ?? 'none') : null);
    t.is(row.rule, trace.decidedBy === 'deny-entry' ? (trace.matched[0]?.rule ?? 'none') : trace.decidedBy);
  }
  // Newest first.
  const seen = doc.drops.map((r) => Date.parse(r.lastSeen ?? ''));
  t.deepEqual(seen, [...seen].sort((a, b) => b - a));

  // Filters and YAML carry the same rows.
  const filtered = JSON.parse(await cli(lab.nodeNs, ['drops', '--config', dirs.config, '-o', 'json', '--peer', '198.51.100.0/24', '--since', '1h'])) as DropsDoc;
  t.deepEqual(filtered.drops.map((r) => r.peer), ['198.51.100.66']);
  const yaml = parseYaml(await cli(lab.nodeNs, ['drops', '--config', dirs.config, '-o', 'yaml'])) as DropsDoc;
  t.deepEqual(yaml.drops.map((r) => `${r.peer}|${r.rule}`).sort(), doc.drops.map((r) => `${r.peer}|${r.rule}`).sort());
  // The records' churn is not drift: the table was never restored.
  t.deepEqual(agent.find((l) => /table changed outside nodewall|table missing/.test(l.msg)), []);
  const table = await cli(lab.nodeNs, ['drops', '--config', dirs.config]);
  t.regex(table, /198\.51\.100\.66\s+tcp\/22\s+\d+\s+edge spec\.ingressDeny\[0\]/);
  t.regex(table, /2001:db8::5\s+icmpv6 type 139\s+\d+\s+datapath: /);
});

test('a flood of 100k distinct denied peers fills the record set to its bound and no further; allowed traffic keeps passing', async (t) => {
  const lab = await Lab.create(t, 'dflood');
  const size = 4096;
  const dirs = await agentDirs(t, { mode: 'enforce', dropRecords: { size, timeoutSeconds: 600 } });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  const held = await lab.openIngress('203.0.113.8', 22);

  const sent = await floodDistinctPeers(lab.peerNs, nodeV6, '2001:db8:f::', 100_000, 8080);
  t.is(sent, 100_000);

  const doc = JSON.parse(await cli(lab.nodeNs, ['drops', '--config', dirs.config, '-o', 'json'])) as DropsDoc;
  const flood = doc.drops.filter((r) => r.peer.startsWith('2001:db8:f::'));
  t.is(flood.length, size, 'the ingress IPv6 record set is full, and holds no more than its size');
  t.true(doc.records <= 4 * size);
  t.true(doc.unrecordedPackets > 0, 'drops beyond the bound are counted as unrecorded');
  t.true(flood.every((r) => r.decidedBy === 'default-deny' && r.port === 8080));

  // Recording stopped, filtering did not: allowed flows pass (held and new), denied ones are still dropped.
  t.true(await lab.echo(held, 10_000), 'an established allowed connection still passes');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '2001:db8::1:77', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '2001:db8::1:78', proto: 'tcp', port: 8080 }, 'deny'), 'deny');

  // The agent says the map is full, and its drop lines are rate-limited (at most 100 per read, the rest summed up).
  await agent.waitFor((l) => /a drop-record set is full/.test(l.msg), 60_000, 0, 'map-full warning');
  await agent.waitFor((l) => typeof l['dropsNotLogged'] === 'number', 60_000, 0, 'rate-limit summary');
  t.deepEqual(agent.find((l) => /table changed outside nodewall|table missing/.test(l.msg)), [], 'a full set is not drift');
  const dropLines = agent.find((l) => l['kind'] === 'drop').length;
  t.true(dropLines > 0 && dropLines < size, `${dropLines} drop lines logged for ${size} records`);
});
