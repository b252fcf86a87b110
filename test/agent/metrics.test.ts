import test from 'ava';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { PromMetrics } from '../../src/agent/metrics.js';
import { MetricsServer } from '../../src/agent/metrics-server.js';
import { RuleCounterReader } from '../../src/agent/rule-counters.js';
import { parseTableDoc } from '../../src/nft/read-kernel.js';
import type { AgentStatus } from '../../src/agent/status-file.js';
import { parseExposition, sampleValue } from '../helpers/prom-text.js';
import { repoRoot } from '../helpers/repo.js';

const doc = {
  nftables: [
    { rule: { family: 'inet', table: 'nodewall', chain: 'input', handle: 2, comment: 'nodewall default-deny', expr: [{ counter: { packets: 3, bytes: 180 } }, { drop: null }] } },
    // A hostile policy name (quotes, backslash, newline) must come out escaped, not break the format.
    { rule: { family: 'inet', table: 'nodewall', chain: 'nw_in_allow_x_1', handle: 3, comment: 'we"ird\\po\nl spec.ingress[0]', expr: [{ counter: { packets: 7, bytes: 420 } }, { accept: null }] } },
  ],
};

const status = (over: Partial<AgentStatus> = {}): AgentStatus => ({
  version: 1, pid: 1, startedAt: '', updatedAt: '', mode: 'enforce', table: 'nodewall', node: 'n',
  policies: { selected: 4, ingress: 3, egress: 1, keptLastGood: 1, rejected: 2 },
  entries: { ingress: 1, egress: 1 }, enforced: { ingress: true, egress: true }, ...over,
});

function metricsWithCounters(): PromMetrics {
  const reader = new RuleCounterReader({ list: async () => [...parseTableDoc(doc, 'nodewall').rules] });
  const m = new PromMetrics({ reader, dropRecords: async () => 17 });
  m.target({ nftPath: '/usr/sbin/nft', table: 'nodewall' });
  return m;
}

function promtool(args: readonly string[], stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', [...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, out: `${stdout}${stderr}${err !== null && code === -1 ? `${err.message} (promtool is installed by .ci/run: apt-get install prometheus)` : ''}` });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

test('every metric is nodewall_*, has HELP and TYPE, and the loop hooks move them', async (t) => {
  const m = metricsWithCounters();
  m.applied('full', 250, { rules: 12, sets: 5, elements: 1000 });
  m.applied('noop', 2, { rules: 12, sets: 5, elements: 1000 });
  m.applyFailed();
  m.lockoutRefused();
  m.driftRepair('monitor', 'restored');
  m.driftRepair('poll', 'failed');
  m.inputErrors(3);
  m.kubernetesSnapshot('api');
  m.status(status({ kubernetes: { connected: false, since: '', resourceVersions: {}, synced: true, stale: true, pods: false, absent: [] } }));
  const f = parseExposition(await m.text());
  for (const [name, fam] of f) {
    t.true(name.startsWith('nodewall_'), name);
    t.truthy(fam.help, `${name} HELP`);
    t.truthy(fam.type, `${name} TYPE`);
  }
  t.is(sampleValue(f, 'nodewall_apply_duration_seconds_count', { kind: 'full' }), 1);
  t.is(sampleValue(f, 'nodewall_apply_duration_seconds_bucket', { kind: 'full', le: '0.25' }), 1);
  t.is(sampleValue(f, 'nodewall_apply_duration_seconds_bucket', { kind: 'full', le: '0.1' }), 0);
  t.is(sampleValue(f, 'nodewall_applies_total', { outcome: 'noop' }), 1);
  t.is(sampleValue(f, 'nodewall_applies_total', { outcome: 'refused' }), 1);
  t.is(sampleValue(f, 'nodewall_lockout_guard_refusals_total'), 1);
  t.is(sampleValue(f, 'nodewall_last_apply_failed'), 1, 'the failed drift repair came last');
  t.is(sampleValue(f, 'nodewall_rules'), 12);
  t.is(sampleValue(f, 'nodewall_set_elements'), 1000);
  t.is(sampleValue(f, 'nodewall_drift_repairs_total', { detected_by: 'monitor', outcome: 'restored' }), 1);
  t.is(sampleValue(f, 'nodewall_drift_repairs_total', { detected_by: 'poll', outcome: 'failed' }), 1);
  t.is(sampleValue(f, 'nodewall_input_errors_total'), 3);
  t.is(sampleValue(f, 'nodewall_policies', { state: 'kept_last_good' }), 1);
  t.is(sampleValue(f, 'nodewall_policies', { state: 'rejected' }), 2);
  t.is(sampleValue(f, 'nodewall_kubernetes_connected', { source: 'kubernetes' }), 0);
  t.is(sampleValue(f, 'nodewall_kubernetes_stale', { source: 'kubernetes' }), 1);
  t.true((sampleValue(f, 'nodewall_kubernetes_last_sync_timestamp_seconds') ?? 0) > 1.7e9);
  t.is(sampleValue(f, 'nodewall_drop_record_entries'), 17);
  t.is(sampleValue(f, 'nodewall_rule_packets_total', { direction: 'ingress', policy: '(nodewall)', rule: 'default-deny', action: 'drop' }), 3);
  t.is(sampleValue(f, 'nodewall_rule_bytes_total', { direction: 'ingress', policy: 'we"ird\\po\nl', rule: 'spec.ingress[0]', action: 'accept' }), 420);
});

test('without a Kubernetes source or a table: no kubernetes series, no rule series', async (t) => {
  const m = new PromMetrics({ reader: new RuleCounterReader({ list: async () => { throw new Error('must not be called'); } }) });
  m.status(status());
  const f = parseExposition(await m.text());
  t.deepEqual(f.get('nodewall_kubernetes_connected')?.samples, []);
  t.deepEqual(f.get('nodewall_kubernetes_stale')?.samples, []);
  t.deepEqual(f.get('nodewall_kubernetes_last_sync_timestamp_seconds')?.samples, []);
  t.deepEqual(f.get('nodewall_rule_packets_total')?.samples, []);
  t.is(sampleValue(f, 'nodewall_kernel_read_errors_total'), 0);
});

test('a failing counter read leaves the rule series out and counts one error', async (t) => {
  const m = new PromMetrics({ reader: new RuleCounterReader({ list: async () => { throw new Error('nft timed out'); } }) });
  m.target({ nftPath: '/usr/sbin/nft', table: 'nodewall' });
  const f = parseExposition(await m.text());
  t.deepEqual(f.get('nodewall_rule_packets_total')?.samples, []);
  t.is(sampleValue(f, 'nodewall_kernel_read_errors_total'), 1);
});

test('promtool check metrics accepts the exposition', async (t) => {
  const m = metricsWithCounters();
  m.applied('delta', 30, { rules: 1, sets: 1, elements: 1 });
  const r = await promtool(['check', 'metrics'], await m.text());
  t.is(r.code, 0, r.out);
});

test('deploy/prometheus-rules.yaml passes promtool, and its alerts fire on the series they watch', async (t) => {
  const rules = join(repoRoot(), 'deploy', 'prometheus-rules.yaml');
  const r = await promtool(['check', 'rules', rules]);
  t.is(r.code, 0, r.out);
  const u = await promtool(['test', 'rules', join(repoRoot(), 'deploy', 'prometheus-rules.test.yaml')]);
  t.is(u.code, 0, u.out);
});

test('the dashboard and the alerts use only metrics the agent exports', async (t) => {
  const m = metricsWithCounters();
  m.applied('full', 1, { rules: 1, sets: 1, elements: 1 });
  m.kubernetesSnapshot('api');
  m.status(status({ kubernetes: { connected: true, since: '', resourceVersions: {}, synced: true, stale: false, pods: false, absent: [] } }));
  const names = new Set<string>();
  for (const [name, fam] of parseExposition(await m.text())) {
    names.add(name);
    for (const s of fam.samples) names.add(s.name);
  }
  const dashboard = JSON.parse(await readFile(join(repoRoot(), 'deploy', 'grafana-dashboard.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  const alerts = await readFile(join(repoRoot(), 'deploy', 'prometheus-rules.yaml'), 'utf8');
  const used = new Set<string>();
  for (const p of dashboard.panels) for (const tg of p.targets) for (const n of tg.expr.match(/nodewall_[a-z_]+/g) ?? []) used.add(n);
  for (const n of alerts.match(/nodewall_[a-z_]+/g) ?? []) used.add(n);
  t.true(used.size > 10);
  for (const n of used) t.true(names.has(n), `${n} is exported`);
});

test('the /metrics server: text format over HTTP, 404 elsewhere, 405 for POST, a taken port is an error and retried', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  const m = metricsWithCounters();
  const server = new MetricsServer(m, log);
  t.teardown(() => server.stop());
  await server.sync({ host: '127.0.0.1', port: 0 });
  const port = server.address?.port;
  t.truthy(port);
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.is(r.status, 200);
  t.regex(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  t.is(sampleValue(parseExposition(await r.text()), 'nodewall_drop_record_entries'), 17);
  t.is((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  t.is((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST', body: 'x' })).status, 405);

  const second = new MetricsServer(m, log);
  t.teardown(() => second.stop());
  await second.sync({ host: '127.0.0.1', port: port ?? 0 });
  t.is(second.address, undefined);
  const err = lines.find((l) => /metrics: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/.test(String(l['msg'])));
  t.is(err?.['level'], 50);
  // Freed: the retry binds (bounded wait).
  await server.stop();
  const deadline = Date.now() + 60_000;
  while (second.address === undefined && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
  t.is(second.address?.port, port);
  await second.sync('off');
  t.is(second.address, undefined);
});
