// The pending-confirmation record (commit-confirm): parsing corrupt, huge, non-regular and hostile files,
// the claim protocol between `confirm` and the rollback actors, and the rollback target of chained applies.
// No kernel is needed here: the rollbacks themselves run in test/e2e/commit-confirm.test.ts.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  bootId, checkPending, CommitConfirmError, confirmPending, isDue, newPending, pendingFileName, pendingMaxBytes, readOutcomes,
  readPending, recoverClaims, rollbackPending, rollbackTarget, writePending, type PendingConfirm,
} from '../../src/agent/commit-confirm.js';

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-confirm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const listing = 'table inet nodewall {\n\tset nw_owner {\n\t\ttype inet_proto\n\t\tcomment "nodewall ownership mark: this table is managed by nodewall"\n\t}\n}\n';
const kernel = { nftPath: '/nonexistent/nft', table: 'nodewall' };

function record(seconds = 60, extra: Partial<Parameters<typeof newPending>[0]> = {}): PendingConfirm {
  return newPending({ origin: 'cli', by: 'root (pid 1)', seconds, table: 'nodewall', previous: { kind: 'table', ownership: 'mark', script: listing }, ...extra });
}

test('a record written is read back equal; its deadline is on the monotonic clock of this boot', async (t) => {
  const dir = await tmp(t);
  const r = record(60);
  await writePending(dir, r);
  t.deepEqual(await readPending(dir), { kind: 'ok', value: r });
  t.false(isDue(r));
  t.true(isDue({ ...r, deadlineMono: r.deadlineMono - 61_000 }));
  // Another boot: due at once, whatever the clocks say (its watchdog is gone, the kernel lost the ruleset).
  t.true(isDue({ ...r, bootId: `${bootId()}-other` }));
});

test('corrupt, hostile and wrong-shape records are rejected with the field named', async (t) => {
  const good = JSON.parse(JSON.stringify(record())) as Record<string, unknown>;
  const cases: [unknown, RegExp][] = [
    [null, /expected an object/],
    [{ ...good, version: 2 }, /version: expected 1/],
    [{ ...good, id: '../../etc/passwd' }, /id: expected 16 hex digits/],
    [{ ...good, origin: 'mallory' }, /origin: expected "cli" or "agent"/],
    [{ ...good, table: 'filter; flush ruleset' }, /table: expected an nft table name/],
    [{ ...good, deadline: 'tomorrow' }, /deadline: expected an ISO time/],
    [{ ...good, deadlineMono: -1 }, /deadlineMono: expected a non-negative integer/],
    [{ ...good, deadlineMono: 1.5 }, /deadlineMono: expected a non-negative integer/],
    [{ ...good, previous: { kind: 'table', ownership: 'mark' } }, /previous\.script: expected a value \(missing\)/],
    [{ ...good, previous: { kind: 'ruleset', script: 'flush ruleset' } }, /previous\.kind/],
    // A listing edited after the fact (even into something that still parses) no longer matches its hash.
    [{ ...good, previous: { kind: 'table', ownership: 'mark', script: 'flush ruleset\n' } }, /previousHash: expected the sha256 of previous\.script/],
    [{ ...good, by: 'x'.repeat(300) }, /by: expected a string of at most 256/],
    [{ ...good, supersedes: ['zz'] }, /supersedes\[0\]: expected 16 hex digits/],
    [{ ...good, watchdogPid: 'init' }, /watchdogPid: expected a non-negative integer/],
  ];
  for (const [v, re] of cases) t.throws(() => checkPending(v), { message: re }, JSON.stringify(v).slice(0, 80));
  // Prototype keys are plain unknown data, never Object's members.
  const proto = JSON.parse(`{"__proto__": {"origin": "agent"}, ${JSON.stringify(good).slice(1)}`) as unknown;
  t.is(checkPending(proto).origin, 'cli');
});

test('non-regular, huge, symlinked and half-written pending files read as corrupt, never hang', async (t) => {
  const dir = await tmp(t);
  const path = join(dir, pendingFileName);
  const expectCorrupt = async (re: RegExp) => {
    const r = await readPending(dir);
    t.is(r.kind, 'corrupt');
    if (r.kind === 'corrupt') t.regex(r.reason, re);
  };
  await writeFile(path, JSON.stringify(record()).slice(0, 100));
  await expectCorrupt(/not valid JSON/);
  await writeFile(path, '');
  await expectCorrupt(/empty file/);
  await rm(path);
  execFileSync('mkfifo', [path]);
  await expectCorrupt(/FIFO/);
  await rm(path);
  await mkdir(path);
  await expectCorrupt(/directory/);
  await rm(path, { recursive: true });
  await writeFile(join(dir, 'real.json'), JSON.stringify(record()));
  await symlink(join(dir, 'real.json'), path);
  await expectCorrupt(/symbolic link/);
  await rm(path);
  // Sparse: reported by size, never read.
  await writeFile(path, '');
  await truncate(path, pendingMaxBytes + 1);
  await expectCorrupt(new RegExp(`${pendingMaxBytes + 1} bytes, over the limit`));
  await rm(path);
  await symlink('/dev/zero', path);
  await expectCorrupt(/symbolic link/);
});

test('confirm: nothing pending, a corrupt record (never confirmed, left in place), a record in time', async (t) => {
  const dir = await tmp(t);
  t.deepEqual(await confirmPending(dir, kernel, 'op'), { kind: 'none', last: undefined });
  await writeFile(join(dir, pendingFileName), '{"version":1');
  const c = await confirmPending(dir, kernel, 'op');
  t.is(c.kind, 'corrupt');
  t.true(existsSync(join(dir, pendingFileName)), 'left for the watchdog and the agent, which hold copies');

  const r = record(60);
  await writePending(dir, r);
  const ok = await confirmPending(dir, kernel, 'op');
  t.is(ok.kind, 'confirmed');
  t.is((await readPending(dir)).kind, 'missing');
  const [o] = await readOutcomes(dir);
  t.like(o, { id: r.id, outcome: 'confirmed', by: 'op' });
  t.deepEqual((await confirmPending(dir, kernel, 'op')).kind, 'none');
  // Nothing left behind but the outcomes.
  t.deepEqual((await readdir(dir)).sort(), ['confirm-outcomes.json']);
});

test('confirm at or after the deadline does not confirm: the rollback wins the tie', async (t) => {
  const dir = await tmp(t);
  const r = record(60);
  await writePending(dir, { ...r, deadlineMono: 0 });
  const c = await confirmPending(dir, kernel, 'op');
  t.is(c.kind, 'too-late');
  // It tried to roll back itself (this test has no nft: that failed, and the record is pending again for a retry).
  t.is(c.kind === 'too-late' ? c.rollback?.kind : undefined, 'failed');
  t.is((await readPending(dir)).kind, 'ok');
  t.false((await readOutcomes(dir)).some((o) => o.outcome === 'confirmed'));
});

test('a claim left by a dead process is put back as pending; a live one is left alone', async (t) => {
  const dir = await tmp(t);
  const r = record(60);
  await writePending(dir, r);
  // pid 2^22+ is above Linux's pid_max: never alive.
  const dead = join(dir, `${pendingFileName}.rollback.4194305`);
  const { rename } = await import('node:fs/promises');
  await rename(join(dir, pendingFileName), dead);
  t.is((await readPending(dir)).kind, 'missing');
  t.is(await recoverClaims(dir), 1);
  t.deepEqual(await readPending(dir), { kind: 'ok', value: r });
  t.false(existsSync(dead));

  const live = join(dir, `${pendingFileName}.confirm.${process.ppid}`);
  await rename(join(dir, pendingFileName), live);
  t.is(await recoverClaims(dir), 0);
  t.true(existsSync(live));
  // While someone is resolving a record, a new probationary apply waits.
  await t.throwsAsync(rollbackTarget(dir, 'nodewall', () => Promise.resolve({ kind: 'absent' })), { instanceOf: CommitConfirmError, message: /right now/ });
});

test('rollback target: the kernel\'s table, or the pending record\'s own target (chained applies); corrupt refuses', async (t) => {
  const dir = await tmp(t);
  let snapshots = 0;
  const snap = () => {
    snapshots++;
    return Promise.resolve({ kind: 'absent' } as const);
  };
  t.deepEqual(await rollbackTarget(dir, 'nodewall', snap), { previous: { kind: 'absent' }, supersedes: [] });
  t.is(snapshots, 1);
  const r = record(60);
  await writePending(dir, r);
  const chained = await rollbackTarget(dir, 'nodewall', snap);
  t.deepEqual(chained.previous, r.previous, 'what was confirmed last, not the unconfirmed kernel table');
  t.deepEqual(chained.supersedes, [r.id]);
  t.is(snapshots, 1);
  await t.throwsAsync(rollbackTarget(dir, 'other', snap), { instanceOf: CommitConfirmError, message: /pending for table inet nodewall/ });
  await writeFile(join(dir, pendingFileName), 'garbage');
  await t.throwsAsync(rollbackTarget(dir, 'nodewall', snap), { instanceOf: CommitConfirmError, message: /cannot be read/ });
});

test('a corrupt record at the deadline: rolled back from the actor\'s copy, or moved aside when there is none', async (t) => {
  const dir = await tmp(t);
  const r = { ...record(60), previous: { kind: 'absent' } as const };
  await writeFile(join(dir, pendingFileName), '{"half":');
  // No copy: nothing to roll back from; the bytes are kept aside for the operator.
  const none = await rollbackPending(dir, kernel, { by: 'test' });
  t.is(none.kind, 'corrupt');
  t.is(await readFile(join(dir, `${pendingFileName}.corrupt`), 'utf8'), '{"half":');
  t.is((await readPending(dir)).kind, 'missing');
  // With a copy: the restore is attempted from it (here without nft: it fails, and says why).
  await writeFile(join(dir, pendingFileName), '{"half":');
  const copy = await rollbackPending(dir, kernel, { by: 'test', expected: r });
  t.is(copy.kind, 'failed');
  t.is(copy.kind === 'failed' ? copy.record.id : '', r.id);
});

test('a record not yet due is not rolled back (a newer apply replaced the awaited one)', async (t) => {
  const dir = await tmp(t);
  const r = record(60);
  await writePending(dir, r);
  const res = await rollbackPending(dir, kernel, { by: 'test' });
  t.is(res.kind, 'superseded');
  t.deepEqual(await readPending(dir), { kind: 'ok', value: r });
});
