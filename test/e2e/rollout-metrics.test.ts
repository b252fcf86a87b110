// Metrics of the rollout features with the real agent, real packets and a real HTTP scrape: a change pending
// confirmation (with its deadline) and its rollback at the deadline, a rollback by a broken rollout probe and
// the refused change it leaves, staged policies and their records (never a policy's rule series).
// Assertions are about the order of events; every wait has a generous bound.

import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab } from './lab.js';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml, writeConfig, type LogLine } from './agent-harness.js';
import { sampleValue } from '../helpers/prom-text.js';
import { waitMetrics } from './scrape-metrics.js';

const listen = { listen: '127.0.0.1:9964' };
const onProbation = (l: LogLine) => l['confirm'] === 'pending';
const rolledBack = (l: LogLine) => l['confirm'] === 'rolled-back';

test('commit-confirm: pending with its deadline while on probation; an unconfirmed change counts as a confirm_deadline rollback', async (t) => {
  const lab = await Lab.create(t, 'rm-conf');
  const dirs = await agentDirs(t, { mode: 'enforce', metrics: listen, rollout: { confirm: 'manual', confirmSeconds: 3600 } });
  const file = join(dirs.policies, 'p.yaml');
  await writeFile(file, policyYaml('p', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  const first = await agent.waitFor(onProbation, 30_000, 0, 'first change on probation');
  await agent.waitFor((l) => l.msg === 'metrics: serving /metrics', 30_000, 0, 'metrics server');
  const pending = await waitMetrics(lab, (f) => sampleValue(f, 'nodewall_confirm_pending') === 1, 'pending');
  t.is(sampleValue(pending, 'nodewall_confirm_deadline_timestamp_seconds', { origin: 'agent' }), Date.parse(String(first['deadline'])) / 1000);
  t.is(sampleValue(pending, 'nodewall_rollbacks_total', { cause: 'confirm_deadline' }), 0);

  // A short deadline for the next change, never confirmed: rolled back, counted.
  let mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce', metrics: listen, rollout: { confirm: 'manual', confirmSeconds: 3 } });
  await agent.waitFor((l) => isApplied(l) || rolledBack(l), 30_000, mark, 'config change pass');
  mark = agent.lines.length;
  await atomicWrite(file, policyYaml('p', [2222]));
  await agent.waitFor(rolledBack, 60_000, mark, 'rollback at the deadline');
  const after = await waitMetrics(lab, (f) => (sampleValue(f, 'nodewall_rollbacks_total', { cause: 'confirm_deadline' }) ?? 0) >= 1, 'rollback counted');
  t.is(sampleValue(after, 'nodewall_rollbacks_total', { cause: 'probe' }), 0);
  const settled = await waitMetrics(lab, (f) => sampleValue(f, 'nodewall_confirm_pending') === 0, 'nothing pending after the rollback');
  t.deepEqual(settled.get('nodewall_confirm_deadline_timestamp_seconds')?.samples, []);
  t.is(await agent.stop(), 0);
});

test('a probe-breaking change: counted as a probe rollback, and the refused change is visible until the policy changes', async (t) => {
  const lab = await Lab.create(t, 'rm-prb');
  const api = '198.51.100.20';
  await lab.addPeerAddresses([api]);
  await lab.listen('peer', 'tcp', 6443);
  const dirs = await agentDirs(t, { mode: 'enforce', lockoutGuard: 'off', resyncSeconds: 0, metrics: listen, rollout: { probes: [`${api}:6443`], probeSeconds: 3 } });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  const lockApi = (cidr: string) => [
    'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata:', '  name: lock-api', 'spec:', '  nodeSelector: {}',
    '  enableDefaultDeny: {egress: false}', '  egressDeny:', `    - toCIDR: [${cidr}]`, '',
  ].join('\n');
  let mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'lock.yaml'), lockApi(`${api}/32`));
  await agent.waitFor((l) => l.msg === 'rollback: previous ruleset restored', 60_000, mark, 'rollback');
  const f = await waitMetrics(lab, (m) => sampleValue(m, 'nodewall_rollbacks_total', { cause: 'probe' }) === 1 && sampleValue(m, 'nodewall_refused_changes') === 1, 'probe rollback and refusal');
  t.is(sampleValue(f, 'nodewall_policies', { state: 'refused' }), 1);
  t.is(sampleValue(f, 'nodewall_rollbacks_total', { cause: 'confirm_deadline' }), 0);

  // The policy changes (no longer cuts the probe): tried again, the refusal is forgotten.
  mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'lock.yaml'), lockApi('203.0.113.128/25'));
  await agent.waitFor((l) => l.msg === 'rollout probes pass after the change', 60_000, mark, 'the changed policy passes');
  await waitMetrics(lab, (m) => sampleValue(m, 'nodewall_refused_changes') === 0 && sampleValue(m, 'nodewall_policies', { state: 'refused' }) === 0, 'refusal gone');
  t.is(await agent.stop(), 0);
});

test('staged policies: counted with their record entries, never as a policy rule series', async (t) => {
  const lab = await Lab.create(t, 'rm-stg');
  const dirs = await agentDirs(t, { mode: 'enforce', metrics: listen });
  await writeFile(join(dirs.policies, 'base.yaml'), policyYaml('base', [22, 8080]));
  await writeFile(join(dirs.policies, 'tighten.yaml'), [
    'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata:', '  name: tighten-8080',
    '  annotations:', '    nodewall.io/stage: audit', 'spec:', '  nodeSelector: {}', '  ingressDeny:',
    '    - fromCIDR: [203.0.113.0/25]', '      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]', '',
  ].join('\n'));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'ruleset applied');
  // Before the first scrape (the entry count is cached): flows the staged deny would drop, passing.
  for (const peer of ['203.0.113.5', '203.0.113.6']) t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }, 'allow'), 'allow');
  await agent.waitFor((l) => l.msg === 'metrics: serving /metrics', 30_000, 0, 'metrics server');
  const f = await waitMetrics(lab, (m) => sampleValue(m, 'nodewall_staged_policies') === 1
    && (sampleValue(m, 'nodewall_rule_packets_total', { direction: 'ingress', policy: 'base', rule: 'spec.ingress[0]', action: 'accept' }) ?? 0) >= 2, 'staged count and counters');
  t.true((sampleValue(f, 'nodewall_staged_record_entries') ?? 0) >= 2, 'both candidate flows recorded');
  const series = f.get('nodewall_rule_packets_total')?.samples ?? [];
  t.false(series.some((s) => s.labels['policy'] === 'tighten-8080'), 'the staged policy has no rule series');
  t.false(series.some((s) => /staged/.test(s.labels['rule'] ?? '')), 'the staged record rules are no series either');
  t.is(await agent.stop(), 0);
});
