// `nodewall status` on a corrupt status file names the file and what is wrong
// (exit 4, status unknown); a stopped agent still shows its last Kubernetes state.

import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { AgentStatus } from '../../src/agent/status-file.js';
import { checkStatus } from '../../src/agent/status-file.js';
import { formatStatus } from '../../src/cli/commands/status.js';
import { runCli } from '../helpers/run-cli.js';

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-status-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const base: AgentStatus = {
  version: 1, pid: 2 ** 22 + 12345, startedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:05.000Z',
  mode: 'enforce', table: 'nodewall', node: 'node-a',
  policies: { selected: 1, ingress: 1, egress: 0, keptLastGood: 0, rejected: 0 },
  entries: { ingress: 1, egress: 0 }, enforced: { ingress: true, egress: false },
};

const corrupt: [string, (file: string) => Promise<void>, RegExp][] = [
  ['null', (f) => writeFile(f, 'null'), /expected an object, got null/],
  ['truncated', (f) => writeFile(f, JSON.stringify(base).slice(0, 40)), /not valid JSON/],
  ['wrong types', (f) => writeFile(f, JSON.stringify({ ...base, policies: { ...base.policies, selected: 'many' } })), /policies\.selected: expected a non-negative integer, got "many"/],
  ['unknown mode', (f) => writeFile(f, JSON.stringify({ ...base, mode: 'yolo' })), /mode: expected "enforce" or "audit" or "dry-run"/],
  ['a directory', (f) => mkdir(f), /not a regular file \(a directory\)/],
  ['a FIFO', async (f) => void execFileSync('mkfifo', [f]), /not a regular file \(a FIFO\)/],
  ['huge', (f) => writeFile(f, Buffer.alloc(2 * 1024 * 1024, 0x20)), /over the limit/],
];

for (const [what, make, reason] of corrupt) {
  test(`status on a corrupt status file (${what}) names the file and the problem, exit 4`, async (t) => {
    const dir = await tmp(t);
    const file = join(dir, 'status.json');
    await make(file);
    const r = await runCli(['status', '--state-dir', dir]);
    t.is(r.code, 4);
    t.true(r.stderr.includes(`status file ${file} is corrupt`), r.stderr);
    t.regex(r.stderr, reason);
    const j = await runCli(['status', '--state-dir', dir, '--output', 'json']);
    t.is(j.code, 4);
    t.like(JSON.parse(j.stdout), { running: null, error: { file } });
  });
}

test('a valid status file passes the shape check unchanged', (t) => {
  const full = { ...base, lastApply: { at: 'x', outcome: 'applied', trigger: 'start', kind: 'full', durationMs: 3 }, lastError: { at: 'y', message: 'z' },
    kubernetes: { connected: false, since: 's', synced: true, stale: false, lastError: 'Node: HTTP 401', resourceVersions: { Node: '3' }, pods: false, absent: [] }, stopped: true };
  t.deepEqual(checkStatus(JSON.parse(JSON.stringify(full))), full);
});

test('stopped agent: the kubernetes line is still shown, marked as the last state', (t) => {
  const kube = { connected: false, since: '2026-01-01T00:00:03.000Z', resourceVersions: {}, synced: true, stale: false, pods: false, absent: [], lastError: 'Node: HTTP 401 Unauthorized' } as const;
  const text = formatStatus({ ...base, stopped: true, kubernetes: { ...kube, absent: [] } }, false);
  t.regex(text, /^kubernetes: stopped with the agent; last state: disconnected since 2026-01-01T00:00:03.000Z, synced$/m);
  t.regex(text, /last API error: Node: HTTP 401 Unauthorized/);
});

test('status text never passes a control character from the status file to the terminal', async (t) => {
  const dir = await tmp(t);
  const hostile = { ...base, stopped: true, lastError: { at: 'y', message: 'policy \u001b[2Jevil\u0000 x' } };
  await writeFile(join(dir, 'status.json'), JSON.stringify(hostile));
  const r = await runCli(['status', '--state-dir', dir]);
  t.is(r.code, 3);
  t.false(/[\u0000-\u0008\u000b-\u001f]/.test(r.stdout), JSON.stringify(r.stdout));
  t.true(r.stdout.includes('\\u001b[2Jevil\\u0000 x'), r.stdout);
});

test('the drift monitor and the metrics endpoint: shown from the status file, shape-checked', async (t) => {
  const running = {
    ...base,
    driftMonitor: { children: 4, expected: 4, restarts: 2 },
    metrics: { state: 'listening', listen: '127.0.0.1:9964', address: '127.0.0.1:9964' },
  } as const;
  t.deepEqual(checkStatus(JSON.parse(JSON.stringify(running))), running);
  const text = formatStatus(running, true);
  t.regex(text, /^drift: {4}4\/4 nft monitor children running, 2 restart\(s\)$/m);
  t.regex(text, /^metrics: {2}serving \/metrics on 127\.0\.0\.1:9964$/m);

  const degraded = formatStatus({
    ...base,
    driftMonitor: { children: 3, expected: 4, restarts: 7 },
    metrics: { state: 'error', listen: '[2001:db8::1]:9964', error: 'EADDRNOTAVAIL: listen EADDRNOTAVAIL', since: '2026-01-01T00:00:01.000Z' },
  }, true);
  t.regex(degraded, /^drift: {4}3\/4 nft monitor children running, 7 restart\(s\) \(degraded: the periodic check still repairs, later\)$/m);
  t.regex(degraded, /^metrics: {2}NOT serving: cannot listen on \[2001:db8::1\]:9964 since 2026-01-01T00:00:01\.000Z \(EADDRNOTAVAIL: listen EADDRNOTAVAIL\); retrying/m);
  const off = formatStatus({ ...base, driftMonitor: { children: 0, expected: 0, restarts: 0 }, metrics: { state: 'off' } }, false);
  t.regex(off, /^drift: {4}when the agent stopped: instant repair off \(periodic check only\)$/m);
  t.regex(off, /^metrics: {2}when the agent stopped: off \(metrics\.listen: off\)$/m);
  // An older agent's status file (no such fields) shows no such lines.
  t.false(/^(drift|metrics):/m.test(formatStatus(base, true)));

  // Bad shapes are a corrupt status file (exit 4), naming the field.
  for (const [bad, reason] of [
    [{ ...base, driftMonitor: { children: -1, expected: 4, restarts: 0 } }, /driftMonitor\.children: expected a non-negative integer/],
    [{ ...base, metrics: { state: 'listening', listen: 'x' } }, /metrics\.address: expected a value \(missing\)/],
    [{ ...base, metrics: { state: 'on fire' } }, /metrics\.state: expected "off" or "binding" or "listening" or "error"/],
  ] as const) {
    const dir = await tmp(t);
    await writeFile(join(dir, 'status.json'), JSON.stringify(bad));
    const r = await runCli(['status', '--state-dir', dir]);
    t.is(r.code, 4);
    t.regex(r.stderr, reason);
  }
});
