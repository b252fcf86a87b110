// The break-glass pause file and its reader: every doubt fails towards enforcement.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { checkPause, checkReason, currentRequester, judgePause, maxPauseMs, parsePauseDuration, PauseControl, PauseInputError, pausePath, readPause, requesterText, writePause, type PauseRecord } from '../../src/agent/pause.js';
import { checkStatus } from '../../src/agent/status-file.js';
import { ShapeError } from '../../src/inventory/state-files.js';

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-pause-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const t0 = Date.parse('2026-12-06T10:00:00.000Z');
const rec = (over: Partial<PauseRecord> = {}): PauseRecord => ({
  version: 1, id: 'a1b2c3d4e5f60718', pausedAt: new Date(t0).toISOString(), until: new Date(t0 + 15 * 60_000).toISOString(),
  reason: 'incident 42', requestedBy: { user: 'alice', uid: 0, sudoUser: 'alice', tty: '/dev/pts/3' }, ...over,
});

test('durations: units, sums, bounds; 0, negatives, fractions, garbage and over 24h are refused', (t) => {
  t.is(parsePauseDuration('15m'), 900_000);
  t.is(parsePauseDuration('1h30m'), 5_400_000);
  t.is(parsePauseDuration('3s'), 3000);
  t.is(parsePauseDuration('24h'), maxPauseMs);
  for (const bad of ['0', '0s', '-5m', '1.5m', 'soon', '', '15', '15 m', 'm', '25h', '24h1s', '999ms', '1e3s', '99999999999999999999h']) {
    t.throws(() => parsePauseDuration(bad), { instanceOf: PauseInputError }, bad);
  }
  t.throws(() => parsePauseDuration('25h'), { message: /at most 24h/ });
  t.throws(() => parsePauseDuration('0m'), { message: /longer than zero/ });
  t.throws(() => checkReason('a\u001b[2Jb'), { message: /control characters/ });
  t.throws(() => checkReason('x'.repeat(501)), { message: /at most 500/ });
});

test('judgePause: active, expired, capped at pausedAt + 24h, a future pausedAt refused', (t) => {
  t.like(judgePause(rec(), t0 + 1000), { kind: 'active', untilMs: t0 + 15 * 60_000, capped: false });
  t.is(judgePause(rec(), t0 + 15 * 60_000).kind, 'expired');
  const far = judgePause(rec({ until: '2999-01-01T00:00:00.000Z' }), t0 + 1000);
  t.like(far, { kind: 'active', untilMs: t0 + maxPauseMs, capped: true });
  // however often the agent restarts, the cap counts from pausedAt
  t.is(judgePause(rec({ until: '2999-01-01T00:00:00.000Z' }), t0 + maxPauseMs).kind, 'expired');
  t.is(judgePause(rec({ pausedAt: new Date(t0 + 3_600_000).toISOString(), until: '2999-01-01T00:00:00.000Z' }), t0).kind, 'refused');
});

test('readPause: a written pause reads back; corrupt, huge, FIFO, symlink and wrong-shape files are refused and moved aside', async (t) => {
  const dir = await tmp(t);
  t.deepEqual(await readPause(dir, t0), { kind: 'none' });
  await writePause(dir, rec());
  t.like(await readPause(dir, t0 + 1000), { kind: 'active', record: rec() });
  const bad: [string, (f: string) => Promise<void>][] = [
    ['half-written', (f) => writeFile(f, JSON.stringify(rec()).slice(0, 40))],
    ['huge', (f) => writeFile(f, ' '.repeat(70 * 1024))],
    ['FIFO', async (f) => { execFileSync('mkfifo', [f]); }],
    ['symlink', (f) => symlink('/dev/zero', f)],
    ['null', (f) => writeFile(f, 'null')],
    ['bad until', (f) => writeFile(f, JSON.stringify({ ...rec(), until: 'forever' }))],
    ['bad id', (f) => writeFile(f, JSON.stringify({ ...rec(), id: '../x' }))],
    ['uid string', (f) => writeFile(f, JSON.stringify({ ...rec(), requestedBy: { user: 'a', uid: '0' } }))],
    ['version 2', (f) => writeFile(f, JSON.stringify({ ...rec(), version: 2 }))],
    ['escape in reason', (f) => writeFile(f, JSON.stringify({ ...rec(), reason: 'a\u001b[2Jb' }))],
  ];
  for (const [what, make] of bad) {
    const f = pausePath(dir);
    await rm(f, { force: true });
    await make(f);
    const r = await readPause(dir, t0 + 1000);
    t.is(r.kind, 'refused', what);
    t.false(existsSync(f), `${what}: moved aside`);
    t.true(existsSync(`${f}.corrupt`), what);
  }
});

test('status.json accepts the pause block and checks its shape', (t) => {
  const base = {
    version: 1, pid: 1, startedAt: 'x', updatedAt: 'x', mode: 'enforce', table: 'nodewall', node: 'n',
    policies: { selected: 0, ingress: 0, egress: 0, keptLastGood: 0, rejected: 0 }, entries: { ingress: 0, egress: 0 }, enforced: { ingress: false, egress: false },
  };
  const pause = { id: 'a1', pausedAt: 'x', until: 'y', reason: '', requestedBy: { user: 'u', uid: 0 }, suspendedMode: 'enforce' };
  t.notThrows(() => checkStatus({ ...base, pause }));
  t.throws(() => checkStatus({ ...base, pause: { ...pause, suspendedMode: 'paused' } }));
  t.is(requesterText({ user: 'alice', uid: 0, sudoUser: 'alice', tty: '/dev/pts/3' }), 'alice (via sudo, uid 0, tty /dev/pts/3)');
});

test('PauseControl: starts, replaces, ends on removal, expiry and corruption; enforce is rendered as audit only while paused', async (t) => {
  const dir = await tmp(t);
  const log = pino({ level: 'silent' });
  const pc = new PauseControl({ log, stateDir: () => dir, onChange: () => undefined, pollMs: 3_600_000 });
  t.teardown(() => pc.stop());
  t.false(await pc.refresh(t0));
  t.is(pc.modeFor('enforce'), 'enforce');
  await writePause(dir, rec());
  t.true(await pc.refresh(t0 + 1000));
  t.false(await pc.refresh(t0 + 2000), 'the same pause is no change');
  t.is(pc.modeFor('enforce'), 'audit');
  t.is(pc.modeFor('dry-run'), 'dry-run');
  t.like(pc.status('enforce'), { id: rec().id, reason: 'incident 42', suspendedMode: 'enforce' });
  const cfg = { mode: 'enforce' as const, x: 1 };
  t.deepEqual(pc.effective(cfg), { mode: 'audit', x: 1 });
  await writePause(dir, rec({ id: 'ffff0000ffff0000' }));
  t.true(await pc.refresh(t0 + 3000), 'a new pause replaces the old one');
  t.true(await pc.refresh(t0 + 16 * 60_000), 'expired');
  t.false(pc.paused);
  t.false(existsSync(pausePath(dir)), 'the expired file is removed');
  t.is(pc.effective(cfg), cfg);
  await writePause(dir, rec());
  t.true(await pc.refresh(t0 + 1000));
  await rm(pausePath(dir));
  t.true(await pc.refresh(t0 + 2000), 'removed (resume)');
  t.false(pc.paused);
  await writePause(dir, rec());
  t.true(await pc.refresh(t0 + 1000));
  await writeFile(pausePath(dir), '{"version":1,');
  t.true(await pc.refresh(t0 + 2000), 'a corrupt file ends the pause');
  t.is(pc.modeFor('enforce'), 'enforce');
});

test('requester names are printable and short: hostile SUDO_USER is escaped on write, refused on read', (t) => {
  const r = currentRequester({ SUDO_USER: 'eve\u001b[2J\u202e' + 'x'.repeat(400) });
  t.false(/[\u0000-\u001f\u202e]/.test(r.user));
  t.true(r.user.startsWith('eve\\u001b[2J\\u202e'));
  t.true(r.user.length <= 256);
  t.notThrows(() => checkPause(JSON.parse(JSON.stringify(rec({ requestedBy: r })))));
  t.throws(() => checkPause(JSON.parse(JSON.stringify(rec({ requestedBy: { user: 'eve\u001b[2J', uid: 0 } })))), { instanceOf: ShapeError });
  t.throws(() => checkPause(JSON.parse(JSON.stringify(rec({ requestedBy: { user: 'a'.repeat(300), uid: 0 } })))), { instanceOf: ShapeError });
  // The shared printable check (src/api/printable.ts): bidi overrides too, not only C0/C1.
  t.throws(() => checkReason('safe\u202eexe.sh'), { instanceOf: PauseInputError, message: /control characters/ });
});
