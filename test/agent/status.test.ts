import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { structureHash } from '../../src/agent/drift.js';
import { pidAlive, readStatus, writeStatus, type AgentStatus } from '../../src/agent/status-file.js';
import { formatStatus } from '../../src/cli/commands/status.js';

const status: AgentStatus = {
  version: 1, pid: process.pid, startedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:05.000Z',
  mode: 'enforce', table: 'nodewall', node: 'node-a',
  lastApply: { at: '2026-01-01T00:00:01.000Z', outcome: 'applied', trigger: 'start', kind: 'full', durationMs: 40 },
  policies: { selected: 2, ingress: 2, egress: 1, keptLastGood: 1, rejected: 0 },
  entries: { ingress: 7, egress: 1 }, enforced: { ingress: true, egress: true },
  lastError: { at: '2026-01-01T00:00:02.000Z', message: 'a.yaml:3:1: error: bad' },
};

test('status file round trip and text', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-agent-st-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.is(await readStatus(dir), undefined);
  await writeStatus(join(dir, 'state'), status);
  const back = await readStatus(join(dir, 'state'));
  t.deepEqual(back, status);
  const text = formatStatus(back!, true);
  t.regex(text, /^agent: {4}running \(pid \d+/);
  t.regex(text, /last apply: 2026-01-01T00:00:01.000Z applied \(kind full, 40 ms, trigger start\)/);
  t.regex(text, /ingress 2 \(7 entries, enforced\), egress 1/);
  t.regex(text, /1 held at their last good version/);
  t.regex(text, /last error: .*a\.yaml:3:1/);
  t.regex(formatStatus({ ...status, stopped: true }, false), /not running \(last pid \d+, stopped cleanly\)/);
});

test('pidAlive: this process yes, an unused pid no', (t) => {
  t.true(pidAlive(process.pid));
  t.false(pidAlive(0));
  t.false(pidAlive(2 ** 22 + 12345));
});

test('structure hash ignores counters and whitespace, not rules', (t) => {
  const a = 'table inet nodewall {\n\tchain input {\n\t\ttcp dport 22 counter packets 5 bytes 300 accept\n\t}\n}';
  const b = 'table inet nodewall {\n  chain input {\n    tcp dport 22 counter packets 9 bytes 999 accept\n  }\n}';
  const c = a.replace('22', '23');
  t.is(structureHash(a), structureHash(b));
  t.not(structureHash(a), structureHash(c));
});
