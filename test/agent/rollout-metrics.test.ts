// Metrics of the rollout features (src/agent/rollout-metrics.ts): pause, rollbacks by cause, a pending
// confirmation with its deadline (read from the pending file, also a hostile one), refused changes and
// staged policies, through PromMetrics as the agent uses it.

import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PromMetrics } from '../../src/agent/metrics.js';
import { RuleCounterReader } from '../../src/agent/rule-counters.js';
import { newPending, pendingPath, writePending } from '../../src/agent/commit-confirm.js';
import type { AgentStatus } from '../../src/agent/status-file.js';
import { parseExposition, sampleValue } from '../helpers/prom-text.js';

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-rollout-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const status = (over: Partial<AgentStatus> = {}): AgentStatus => ({
  version: 1, pid: 1, startedAt: '', updatedAt: '', mode: 'enforce', table: 'nodewall', node: 'n',
  policies: { selected: 2, ingress: 2, egress: 0, keptLastGood: 0, rejected: 0 },
  entries: { ingress: 1, egress: 0 }, enforced: { ingress: true, egress: false }, ...over,
});

const noKernel = () => new RuleCounterReader({ list: async () => { throw new Error('must not be called'); } });

const listing = 'table inet nodewall {\n}\n';

test('not paused, nothing pending, nothing refused or staged: zeros, and no timestamp series', async (t) => {
  const dir = await tmp(t);
  const m = new PromMetrics({ reader: noKernel() });
  m.setRolloutSource({ stateDir: () => dir, stagedEntries: () => 0 });
  m.status(status());
  const f = parseExposition(await m.text());
  t.is(sampleValue(f, 'nodewall_paused'), 0);
  t.deepEqual(f.get('nodewall_pause_end_timestamp_seconds')?.samples, []);
  t.deepEqual(f.get('nodewall_pause_start_timestamp_seconds')?.samples, []);
  t.is(sampleValue(f, 'nodewall_confirm_pending'), 0);
  t.deepEqual(f.get('nodewall_confirm_deadline_timestamp_seconds')?.samples, []);
  t.is(sampleValue(f, 'nodewall_rollbacks_total', { cause: 'probe' }), 0, 'both causes exist from the start (rate() needs the 0)');
  t.is(sampleValue(f, 'nodewall_rollbacks_total', { cause: 'confirm_deadline' }), 0);
  t.is(sampleValue(f, 'nodewall_refused_changes'), 0);
  t.is(sampleValue(f, 'nodewall_policies', { state: 'refused' }), 0);
  t.is(sampleValue(f, 'nodewall_staged_policies'), 0);
  t.is(sampleValue(f, 'nodewall_staged_record_entries'), 0);
});

test('paused, a change pending, rollbacks, refused changes and staged policies are all visible', async (t) => {
  const dir = await tmp(t);
  const rec = newPending({ origin: 'cli', by: 'root (pid 1)', seconds: 120, table: 'nodewall', previous: { kind: 'table', ownership: 'mark', script: listing } });
  await writePending(dir, rec);
  const m = new PromMetrics({ reader: noKernel() });
  m.setRolloutSource({ stateDir: () => dir, stagedEntries: async () => 42 });
  m.status(status({
    pause: {
      id: 'p1', pausedAt: '2026-01-31T10:00:00.000Z', until: '2026-01-31T12:00:00.000Z', reason: 'incident', suspendedMode: 'enforce',
      requestedBy: { user: 'alice', uid: 1000 },
    },
    refused: [
      { policies: [{ policy: 'a', version: '1' }, { policy: 'b', version: '3' }], by: 'probe api', reason: 'broke', at: '' },
      { policies: [{ policy: 'a', version: '2' }], by: 'probe api', reason: 'broke', at: '' },
    ],
    staged: ['next-ssh', 'next-web', 'next-dns'],
  }));
  m.rolledBack('probe');
  m.rolledBack('probe');
  m.rolledBack('confirm_deadline');
  const f = parseExposition(await m.text());
  t.is(sampleValue(f, 'nodewall_paused'), 1);
  t.is(sampleValue(f, 'nodewall_pause_start_timestamp_seconds', { suspended_mode: 'enforce' }), Date.parse('2026-01-31T10:00:00.000Z') / 1000);
  t.is(sampleValue(f, 'nodewall_pause_end_timestamp_seconds', { suspended_mode: 'enforce' }), Date.parse('2026-01-31T12:00:00.000Z') / 1000);
  t.is(sampleValue(f, 'nodewall_confirm_pending'), 1);
  t.is(sampleValue(f, 'nodewall_confirm_deadline_timestamp_seconds', { origin: 'cli' }), Date.parse(rec.deadline) / 1000);
  t.is(sampleValue(f, 'nodewall_rollbacks_total', { cause: 'probe' }), 2);
  t.is(sampleValue(f, 'nodewall_rollbacks_total', { cause: 'confirm_deadline' }), 1);
  t.is(sampleValue(f, 'nodewall_refused_changes'), 2);
  t.is(sampleValue(f, 'nodewall_policies', { state: 'refused' }), 2, 'distinct policies');
  t.is(sampleValue(f, 'nodewall_staged_policies'), 3);
  t.is(sampleValue(f, 'nodewall_staged_record_entries'), 42);

  // The pause ends: the gauge drops to 0 and the timestamps go away (no stale end time).
  m.status(status());
  const g = parseExposition(await m.text());
  t.is(sampleValue(g, 'nodewall_paused'), 0);
  t.deepEqual(g.get('nodewall_pause_end_timestamp_seconds')?.samples, []);
});

test('a corrupt, wrongly shaped or non-regular pending file reads as -1 (look at the node), never a crash or a deadline', async (t) => {
  for (const kind of ['garbage', 'shape', 'directory'] as const) {
    const dir = await tmp(t);
    const p = pendingPath(dir);
    if (kind === 'garbage') await writeFile(p, '{"version":1,"id":');
    if (kind === 'shape') await writeFile(p, `{"version":1,"pad":"${'x'.repeat(1 << 20)}"}`);
    if (kind === 'directory') await mkdir(p);
    const m = new PromMetrics({ reader: noKernel() });
    m.setRolloutSource({ stateDir: () => dir, stagedEntries: () => 0 });
    const f = parseExposition(await m.text());
    t.is(sampleValue(f, 'nodewall_confirm_pending'), -1, kind);
    t.deepEqual(f.get('nodewall_confirm_deadline_timestamp_seconds')?.samples, [], kind);
  }
});

test('the pending file is parsed again only when it changed; a confirmed (removed) change reads 0', async (t) => {
  const dir = await tmp(t);
  const m = new PromMetrics({ reader: noKernel() });
  m.setRolloutSource({ stateDir: () => dir, stagedEntries: () => 0 });
  const first = newPending({ origin: 'agent', by: 'agent pid 1', seconds: 60, table: 'nodewall', previous: { kind: 'table', ownership: 'mark', script: listing } });
  await writePending(dir, first);
  t.is(sampleValue(parseExposition(await m.text()), 'nodewall_confirm_deadline_timestamp_seconds', { origin: 'agent' }), Date.parse(first.deadline) / 1000);
  const second = newPending({ origin: 'agent', by: 'agent pid 1', seconds: 600, table: 'nodewall', previous: { kind: 'table', ownership: 'mark', script: listing } });
  await writePending(dir, second);
  t.is(sampleValue(parseExposition(await m.text()), 'nodewall_confirm_deadline_timestamp_seconds', { origin: 'agent' }), Date.parse(second.deadline) / 1000, 'a replaced record is read again');
  await rm(pendingPath(dir));
  const f = parseExposition(await m.text());
  t.is(sampleValue(f, 'nodewall_confirm_pending'), 0);
  t.deepEqual(f.get('nodewall_confirm_deadline_timestamp_seconds')?.samples, []);
});
