// `nodewall status` text for an agent with the Kubernetes API source.

import test from 'ava';
import type { AgentStatus } from '../../src/agent/status-file.js';
import { formatStatus } from '../../src/cli/commands/status.js';

const base: AgentStatus = {
  version: 1, pid: process.pid, startedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:05.000Z',
  mode: 'enforce', table: 'nodewall', node: 'node-a',
  policies: { selected: 1, ingress: 1, egress: 0, keptLastGood: 0, rejected: 0 },
  entries: { ingress: 1, egress: 0 }, enforced: { ingress: true, egress: false },
};

const kube = { connected: true, since: '2026-01-01T00:00:01.000Z', resourceVersions: {}, synced: true, stale: false, pods: false, absent: [] } as const;

test('no kubernetes line without the source', (t) => {
  t.notRegex(formatStatus(base, true), /kubernetes/);
});

test('connected and synced', (t) => {
  const text = formatStatus({ ...base, kubernetes: { ...kube, absent: [] } }, true);
  t.regex(text, /^kubernetes: connected since 2026-01-01T00:00:01.000Z, synced$/m);
  t.notRegex(text, /last API error/);
});

test('disconnected, stale, with the error; waiting for the first read', (t) => {
  const text = formatStatus({
    ...base,
    waitingForKubernetes: true,
    kubernetes: { ...kube, absent: [], connected: false, since: '2026-01-01T00:00:09.000Z', stale: true, cacheSyncedAt: '2025-12-31T23:00:00.000Z', lastError: 'Node: connect ECONNREFUSED 192.0.2.50:6443' },
  }, true);
  t.regex(text, /^kubernetes: disconnected since 2026-01-01T00:00:09.000Z, synced, stale \(enforcing the cache read from the API at 2025-12-31T23:00:00.000Z\)$/m);
  t.regex(text, /last API error: Node: connect ECONNREFUSED 192\.0\.2\.50:6443/);
  t.regex(text, /waiting for the first complete read of the API: nothing applied/);
});
