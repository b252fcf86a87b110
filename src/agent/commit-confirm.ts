// Commit-confirm: the durable record of a ruleset that was loaded on probation
// (`nodewall apply --confirm-within`, or the agent with rollout.confirm:
// manual), and the two ways it ends: `nodewall confirm` before the deadline,
// or a rollback to the table as it was before.
//
// Files in the state dir (only nodewall writes there, but every read is
// bounded and shape-checked: a corrupt, huge, FIFO or hostile file is never
// trusted, and the actors that hold the record in memory roll back from their
// own copy):
//   pending-confirm.json              the record, fsync'd (file and directory) BEFORE the new ruleset is loaded
//   pending-confirm.json.<act>.<pid>  a claim: the record renamed by the process resolving it (act = confirm|rollback)
//   confirm-outcomes.json             the last outcomes (confirmed / rolled back / cancelled), for status and for
//                                     actors that lost the race
//
// Races are settled by rename(2), which only one process can win: whoever
// renames the record to its claim resolves it, the others see it gone and read
// the outcome. A claim left by a dead process is put back as pending (so a
// crash in the middle of a rollback is finished by the next actor). Restoring
// is idempotent (one transaction rebuilding the same table), so an actor that
// acts from memory because the file is unreadable does no harm.
//
// Deadlines are compared on the monotonic clock, which all processes of one
// boot share; a record from another boot is due at once (its watchdog is gone
// and the kernel lost the ruleset anyway).

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../inventory/read-manifest-files.js';
import {
  arrayOf, field, literal, nonNegInt, obj, optional, readStateFile, ShapeError, str, type Check, type StateRead,
} from '../inventory/state-files.js';
import { restoreTable, type RestoreOutcome, type SnapshotExec, type TableSnapshot } from '../nft/table-snapshot.js';
import { pidAlive, writeJsonAtomic } from './status-file.js';

export const pendingFileName = 'pending-confirm.json';
export const outcomesFileName = 'confirm-outcomes.json';
/** The listing of a 1M-element table is a few tens of MB. */
export const pendingMaxBytes = 256 * 1024 * 1024;
const outcomesMaxBytes = 1024 * 1024;
const keptOutcomes = 20;

export type ConfirmOrigin = 'cli' | 'agent';

export interface PendingConfirm {
  readonly version: 1;
  readonly id: string;
  readonly origin: ConfirmOrigin;
  /** Who asked: user and pid (cli), or "agent pid N". */
  readonly by: string;
  readonly createdAt: string;
  /** Wall-clock deadline, for people. */
  readonly deadline: string;
  /** Monotonic deadline (ms of CLOCK_MONOTONIC), for machines of the same boot. */
  readonly deadlineMono: number;
  readonly bootId: string;
  readonly seconds: number;
  readonly table: string;
  /** What a rollback restores: the table before the first unconfirmed apply of a chain. */
  readonly previous: TableSnapshot;
  /** sha256 of previous.script: a damaged listing is caught even when it still parses. */
  readonly previousHash: string;
  /** Agent changes: the input tried (reconcile inputHash), not re-applied after a rollback until it changes. */
  readonly inputHash?: string;
  /** The process that rolls back at the deadline on its own (confirm-watchdog). */
  readonly watchdogPid?: number;
  /** Earlier unconfirmed records this one replaced (their previous is this one's). */
  readonly supersedes?: readonly string[];
}

export type OutcomeKind = 'confirmed' | 'rolled-back' | 'cancelled';

export interface ConfirmOutcome {
  readonly id: string;
  readonly origin: ConfirmOrigin;
  readonly outcome: OutcomeKind;
  readonly at: string;
  /** Who resolved it (confirm, watchdog pid N, agent pid N). */
  readonly by: string;
  readonly detail?: string;
  readonly inputHash?: string;
}

/** Something went wrong with the pending record itself (write failed, unreadable when it matters). */
export class CommitConfirmError extends Error {
  override readonly name = 'CommitConfirmError';
}

// --- clocks --------------------------------------------------------------------------

export function monoNowMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

let cachedBootId: string | undefined;
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().slice(0, 64) || 'unknown';
    } catch {
      cachedBootId = 'unknown';
    }
  }
  return cachedBootId;
}

/** True when the record's deadline has passed (or it comes from another boot). */
export function isDue(r: PendingConfirm, now = monoNowMs(), boot = bootId()): boolean {
  if (r.bootId !== boot) return true;
  // Without a boot id the monotonic clocks of two processes cannot be trusted to be the same clock.
  return boot === 'unknown' ? Date.now() >= Date.parse(r.deadline) : now >= r.deadlineMono;
}

/** Milliseconds left (0 when due). */
export function msLeft(r: PendingConfirm, now = monoNowMs(), boot = bootId()): number {
  if (isDue(r, now, boot)) return 0;
  return r.bootId === boot && boot !== 'unknown' ? r.deadlineMono - now : Math.max(0, Date.parse(r.deadline) - Date.now());
}

// --- the record ---------------------------------------------------------------------------

export function pendingPath(stateDir: string): string {
  return join(stateDir, pendingFileName);
}

export function newPending(fields: {
  origin: ConfirmOrigin; by: string; seconds: number; table: string; previous: TableSnapshot; inputHash?: string | undefined; supersedes?: readonly string[];
}): PendingConfirm {
  const now = Date.now();
  const ms = Math.round(fields.seconds * 1000);
  return {
    version: 1,
    id: randomBytes(8).toString('hex'),
    origin: fields.origin,
    by: fields.by,
    createdAt: new Date(now).toISOString(),
    deadline: new Date(now + ms).toISOString(),
    deadlineMono: monoNowMs() + ms,
    bootId: bootId(),
    seconds: fields.seconds,
    table: fields.table,
    previous: fields.previous,
    previousHash: sha256(fields.previous.kind === 'table' ? fields.previous.script : ''),
    ...(fields.inputHash === undefined ? {} : { inputHash: fields.inputHash }),
    ...(fields.supersedes === undefined || fields.supersedes.length === 0 ? {} : { supersedes: fields.supersedes }),
  };
}

const idCheck: Check<string> = (v, path) => {
  const s = str(v, path);
  if (!/^[0-9a-f]{16}$/.test(s)) throw new ShapeError(path, '16 hex digits', v);
  return s;
};

const timeCheck: Check<string> = (v, path) => {
  const s = str(v, path);
  if (s.length > 40 || Number.isNaN(Date.parse(s))) throw new ShapeError(path, 'an ISO time', v);
  return s;
};

const shortText = (max: number): Check<string> => (v, path) => {
  const s = str(v, path);
  if (s.length > max) throw new ShapeError(path, `a string of at most ${max} characters`, v);
  return s;
};

const tableName: Check<string> = (v, path) => {
  const s = str(v, path);
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(s)) throw new ShapeError(path, 'an nft table name', v);
  return s;
};

const snapshotCheck: Check<TableSnapshot> = (v, path) => {
  const o = obj(v, path);
  const kind = field(o, 'kind', literal('absent', 'table'), path);
  if (kind === 'absent') return { kind };
  return { kind, ownership: field(o, 'ownership', literal('mark', 'legacy', 'foreign'), path), script: field(o, 'script', str, path) };
};

/** Shape check of a parsed pending record (throws ShapeError naming the field). */
export function checkPending(v: unknown): PendingConfirm {
  const o = obj(v, '');
  field(o, 'version', literal(1), '');
  const previous = field(o, 'previous', snapshotCheck, '');
  const previousHash = field(o, 'previousHash', str, '');
  if (previousHash !== sha256(previous.kind === 'table' ? previous.script : '')) {
    throw new ShapeError('previousHash', 'the sha256 of previous.script', previousHash);
  }
  const deadlineMono = field(o, 'deadlineMono', nonNegInt, '');
  const seconds = field(o, 'seconds', nonNegInt, '');
  const inputHash = optional(o, 'inputHash', shortText(128), '');
  const watchdogPid = optional(o, 'watchdogPid', nonNegInt, '');
  const supersedes = optional(o, 'supersedes', arrayOf(idCheck), '');
  if (supersedes !== undefined && supersedes.length > 1000) throw new ShapeError('supersedes', 'at most 1000 ids', supersedes);
  return {
    version: 1,
    id: field(o, 'id', idCheck, ''),
    origin: field(o, 'origin', literal('cli', 'agent'), ''),
    by: field(o, 'by', shortText(256), ''),
    createdAt: field(o, 'createdAt', timeCheck, ''),
    deadline: field(o, 'deadline', timeCheck, ''),
    deadlineMono,
    bootId: field(o, 'bootId', shortText(64), ''),
    seconds,
    table: field(o, 'table', tableName, ''),
    previous,
    previousHash,
    ...(inputHash === undefined ? {} : { inputHash }),
    ...(watchdogPid === undefined ? {} : { watchdogPid }),
    ...(supersedes === undefined ? {} : { supersedes }),
  };
}

/** Read the pending record. Never throws; never moves the file (the caller decides). */
export function readPending(stateDir: string): Promise<StateRead<PendingConfirm>> {
  return readStateFile(pendingPath(stateDir), pendingMaxBytes, checkPending);
}

/**
 * readPending, re-read only when the file changed. The record carries a full table listing (tens of MB for a
 * large table) whose sha256 the shape check recomputes: the watchdog polls it every 500 ms for the whole
 * confirm window, the agent at every pass and tick. Every writer replaces the file by rename (new inode) and a
 * claim renames it away, so an unchanged (path, dev, ino, size, mtime, ctime) means the record read last time;
 * anything else (or a failed stat) reads it again.
 */
export function changedPendingReader(): (stateDir: string) => Promise<StateRead<PendingConfirm>> {
  let last: { key: string; read: StateRead<PendingConfirm> } | undefined;
  return async (stateDir) => {
    const path = pendingPath(stateDir);
    const st = await stat(path, { bigint: true }).catch(() => undefined);
    const key = st === undefined || !st.isFile() ? undefined : `${path}:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    if (key !== undefined && last !== undefined && last.key === key) return last.read;
    const read = await readPending(stateDir);
    last = key === undefined ? undefined : { key, read };
    return read;
  };
}

async function readClaim(path: string): Promise<StateRead<PendingConfirm>> {
  return readStateFile(path, pendingMaxBytes, checkPending);
}

/** Write the record atomically and durably: file fsync'd, renamed, directory fsync'd. */
export async function writePending(stateDir: string, r: PendingConfirm): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(pendingPath(stateDir), r, { durable: true });
  await syncDir(stateDir);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// --- outcomes --------------------------------------------------------------------------------

const outcomeCheck: Check<ConfirmOutcome> = (v, path) => {
  const o = obj(v, path);
  const detail = optional(o, 'detail', shortText(2000), path);
  const inputHash = optional(o, 'inputHash', shortText(128), path);
  return {
    id: field(o, 'id', idCheck, path),
    origin: field(o, 'origin', literal('cli', 'agent'), path),
    outcome: field(o, 'outcome', literal('confirmed', 'rolled-back', 'cancelled'), path),
    at: field(o, 'at', timeCheck, path),
    by: field(o, 'by', shortText(256), path),
    ...(detail === undefined ? {} : { detail }),
    ...(inputHash === undefined ? {} : { inputHash }),
  };
};

export function checkOutcomes(v: unknown): ConfirmOutcome[] {
  const o = obj(v, '');
  field(o, 'version', literal(1), '');
  const list = field(o, 'outcomes', arrayOf(outcomeCheck), '');
  if (list.length > 1000) throw new ShapeError('outcomes', 'at most 1000 entries', list);
  return list;
}

/** The last outcomes, newest last; a corrupt file reads as none (it is informative only). */
export async function readOutcomes(stateDir: string): Promise<ConfirmOutcome[]> {
  const r = await readStateFile(join(stateDir, outcomesFileName), outcomesMaxBytes, checkOutcomes);
  return r.kind === 'ok' ? r.value : [];
}

export async function appendOutcome(stateDir: string, o: ConfirmOutcome): Promise<void> {
  const list = (await readOutcomes(stateDir)).filter((x) => x.id !== o.id);
  list.push(o);
  await writeJsonAtomic(join(stateDir, outcomesFileName), { version: 1, outcomes: list.slice(-keptOutcomes) }, { durable: true });
}

export async function outcomeOf(stateDir: string, id: string): Promise<ConfirmOutcome | undefined> {
  return (await readOutcomes(stateDir)).find((o) => o.id === id);
}

// --- claims ---------------------------------------------------------------------------------

type Act = 'confirm' | 'rollback';
const claimName = /^pending-confirm\.json\.(confirm|rollback)\.(\d{1,10})$/;

function claimPath(stateDir: string, act: Act, pid = process.pid): string {
  return join(stateDir, `${pendingFileName}.${act}.${pid}`);
}

/** Rename the record to our claim. undefined: there was none (someone else resolved it, or never). */
async function claim(stateDir: string, act: Act): Promise<string | undefined> {
  const to = claimPath(stateDir, act);
  try {
    await rename(pendingPath(stateDir), to);
    return to;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Put a claim back as the pending record, unless a newer record is there already (then drop the claim). */
async function unclaim(stateDir: string, path: string): Promise<void> {
  try {
    await link(path, pendingPath(stateDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  await unlink(path).catch(() => undefined);
  await syncDir(stateDir).catch(() => undefined);
}

/** Claims of processes that are alive (someone is resolving the record right now). */
export async function liveClaims(stateDir: string): Promise<{ act: Act; pid: number }[]> {
  const out: { act: Act; pid: number }[] = [];
  for (const name of await readdir(stateDir).catch(() => [] as string[])) {
    const m = claimName.exec(name);
    if (m !== null && pidAlive(Number(m[2]))) out.push({ act: m[1] as Act, pid: Number(m[2]) });
  }
  return out;
}

/** Put claims of dead processes back as pending, so their unfinished work is done by the next actor. */
export async function recoverClaims(stateDir: string): Promise<number> {
  let n = 0;
  for (const name of await readdir(stateDir).catch(() => [] as string[])) {
    const m = claimName.exec(name);
    if (m === null || Number(m[2]) === process.pid || pidAlive(Number(m[2]))) continue;
    await unclaim(stateDir, join(stateDir, name)).catch(() => undefined);
    n++;
  }
  return n;
}

// --- resolving -------------------------------------------------------------------------------

export interface KernelTarget {
  readonly nftPath: string;
  readonly table: string;
  readonly exec?: SnapshotExec;
}

export type RollbackResult =
  | { readonly kind: 'rolled-back'; readonly record: PendingConfirm; readonly restore: RestoreOutcome; readonly fromMemory: boolean }
  /** Nothing to roll back: no record (resolved by someone else; see outcomeOf). */
  | { readonly kind: 'gone' }
  /** The record there is a newer one, not yet due: left pending. */
  | { readonly kind: 'superseded'; readonly record: PendingConfirm }
  /** The restore failed; the record is pending again (retried). */
  | { readonly kind: 'failed'; readonly record: PendingConfirm; readonly error: Error }
  /** The record is unreadable and no copy was at hand: moved to .corrupt. */
  | { readonly kind: 'corrupt'; readonly reason: string; readonly movedTo?: string };

/**
 * Roll the pending record back: claim it, restore its previous table, note the outcome. `expected`: the caller's
 * own copy of the record (the watchdog, the agent for its own change): used when the file is unreadable.
 * Only a due record is rolled back, unless `force`.
 */
export async function rollbackPending(
  stateDir: string, target: KernelTarget, opts: { by: string; expected?: PendingConfirm | undefined; force?: boolean },
): Promise<RollbackResult> {
  const path = await claim(stateDir, 'rollback');
  if (path === undefined) return { kind: 'gone' };
  return rollbackClaimed(stateDir, path, target, opts);
}

async function rollbackClaimed(
  stateDir: string, path: string, target: KernelTarget, opts: { by: string; expected?: PendingConfirm | undefined; force?: boolean },
): Promise<RollbackResult> {
  const read = await readClaim(path);
  let record: PendingConfirm;
  let fromMemory = false;
  if (read.kind === 'ok') {
    record = read.value;
    if (opts.force !== true && !isDue(record)) {
      // A newer record replaced the one the caller was waiting for: not ours to end yet.
      await unclaim(stateDir, path);
      return { kind: 'superseded', record };
    }
  } else if (opts.expected !== undefined) {
    // Fail towards the known-good previous ruleset: the caller's copy.
    record = opts.expected;
    fromMemory = true;
    await moveAside(stateDir, path);
  } else {
    const reason = read.kind === 'corrupt' ? read.reason : 'vanished';
    const movedTo = await moveAside(stateDir, path);
    return { kind: 'corrupt', reason, ...(movedTo === undefined ? {} : { movedTo }) };
  }
  if (record.table !== target.table) {
    await unclaim(stateDir, path).catch(() => undefined);
    return { kind: 'failed', record, error: new CommitConfirmError(`the pending record is for table inet ${record.table}, not inet ${target.table} (config nft.table): not rolled back here`) };
  }
  let restore: RestoreOutcome;
  try {
    restore = await restoreTable(record.previous, target.nftPath, target.table, target.exec ?? {});
  } catch (err) {
    if (!fromMemory) await unclaim(stateDir, path).catch(() => undefined);
    return { kind: 'failed', record, error: err instanceof Error ? err : new Error(String(err)) };
  }
  await appendOutcome(stateDir, {
    id: record.id, origin: record.origin, outcome: 'rolled-back', at: new Date().toISOString(), by: opts.by,
    detail: `not confirmed by ${record.deadline}: ${restore === 'restored' ? 'previous table restored' : restore === 'deleted' ? 'table deleted (there was none before)' : 'there was no table before, and none now'}`,
    ...(record.inputHash === undefined ? {} : { inputHash: record.inputHash }),
  }).catch(() => undefined);
  await rm(path, { force: true }).catch(() => undefined);
  return { kind: 'rolled-back', record, restore, fromMemory };
}

/** Roll back from a copy, without any record on disk (it vanished with no outcome): fail towards rollback. */
export async function rollbackFromMemory(stateDir: string, target: KernelTarget, record: PendingConfirm, by: string): Promise<RollbackResult> {
  try {
    const restore = await restoreTable(record.previous, target.nftPath, target.table, target.exec ?? {});
    await appendOutcome(stateDir, {
      id: record.id, origin: record.origin, outcome: 'rolled-back', at: new Date().toISOString(), by,
      detail: `the pending record vanished without a confirmation: rolled back from ${by}'s copy`,
      ...(record.inputHash === undefined ? {} : { inputHash: record.inputHash }),
    }).catch(() => undefined);
    return { kind: 'rolled-back', record, restore, fromMemory: true };
  } catch (err) {
    return { kind: 'failed', record, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

/** Move an unreadable claim to pending-confirm.json.corrupt (the newest only), for the operator to look at. */
async function moveAside(stateDir: string, path: string): Promise<string | undefined> {
  const target = `${pendingPath(stateDir)}.corrupt`;
  try {
    await rm(target, { recursive: true, force: true });
    await rename(path, target);
    return target;
  } catch {
    await rm(path, { force: true }).catch(() => undefined);
    return undefined;
  }
}

export type ConfirmResult =
  | { readonly kind: 'confirmed'; readonly record: PendingConfirm }
  | { readonly kind: 'none'; readonly last?: ConfirmOutcome | undefined }
  | { readonly kind: 'too-late'; readonly record?: PendingConfirm; readonly rollback?: RollbackResult; readonly last?: ConfirmOutcome | undefined }
  | { readonly kind: 'corrupt'; readonly reason: string }
  | { readonly kind: 'busy' };

/** `nodewall confirm`: keep what is pending. A due record is rolled back instead (the deadline wins a tie). */
export async function confirmPending(stateDir: string, target: KernelTarget, by: string): Promise<ConfirmResult> {
  await recoverClaims(stateDir);
  const before = await readPending(stateDir);
  if (before.kind === 'missing') {
    if ((await liveClaims(stateDir)).some((c) => c.act === 'rollback')) return { kind: 'too-late' };
    const list = await readOutcomes(stateDir);
    return { kind: 'none', last: list[list.length - 1] };
  }
  // Never confirm what cannot be read: the watchdog and the agent roll back from their own copies.
  if (before.kind === 'corrupt') return { kind: 'corrupt', reason: before.reason };
  const path = await claim(stateDir, 'confirm');
  if (path === undefined) {
    const last = await outcomeOf(stateDir, before.value.id);
    return last?.outcome === 'confirmed' ? { kind: 'none', last } : { kind: 'too-late', record: before.value, last };
  }
  const read = await readClaim(path);
  if (read.kind !== 'ok') {
    await unclaim(stateDir, path);
    return { kind: 'corrupt', reason: read.kind === 'corrupt' ? read.reason : 'vanished' };
  }
  const record = read.value;
  if (isDue(record)) {
    const rb = claimPath(stateDir, 'rollback');
    await rename(path, rb);
    const rollback = await rollbackClaimed(stateDir, rb, target, { by: `${by} (confirm after the deadline)`, force: true });
    return { kind: 'too-late', record, rollback };
  }
  await appendOutcome(stateDir, { id: record.id, origin: record.origin, outcome: 'confirmed', at: new Date().toISOString(), by,
    ...(record.inputHash === undefined ? {} : { inputHash: record.inputHash }) });
  await unlink(path);
  await syncDir(stateDir).catch(() => undefined);
  return { kind: 'confirmed', record };
}

/** The apply that wrote `record` failed before loading anything new: withdraw it (its previous is what is in force). */
export async function cancelPending(stateDir: string, record: PendingConfirm, by: string, detail: string): Promise<boolean> {
  const path = await claim(stateDir, 'rollback');
  if (path === undefined) return false;
  const read = await readClaim(path);
  if (read.kind !== 'ok' || read.value.id !== record.id) {
    await unclaim(stateDir, path);
    return false;
  }
  await appendOutcome(stateDir, { id: record.id, origin: record.origin, outcome: 'cancelled', at: new Date().toISOString(), by, detail }).catch(() => undefined);
  await rm(path, { force: true });
  return true;
}

/**
 * What a new probationary apply keeps as its rollback target. With an unconfirmed record pending, its
 * `previous` (the last confirmed table), since what is in the kernel now was never confirmed; else the
 * kernel's table as it is. Throws CommitConfirmError when a pending record exists but cannot be read, or
 * someone is resolving one right now (try again in a moment).
 */
export async function rollbackTarget(
  stateDir: string, table: string, snapshot: () => Promise<TableSnapshot>,
): Promise<{ previous: TableSnapshot; supersedes: string[]; replaced?: PendingConfirm }> {
  await recoverClaims(stateDir);
  if ((await liveClaims(stateDir)).length > 0) {
    throw new CommitConfirmError('a pending confirmation is being confirmed or rolled back right now: nothing was applied; try again in a moment');
  }
  const r = await readPending(stateDir);
  if (r.kind === 'corrupt') {
    throw new CommitConfirmError(`the pending confirmation ${pendingPath(stateDir)} cannot be read (${r.reason}): nothing was applied. ` +
      'Its watchdog or the agent rolls it back at its deadline; move the file away once the right ruleset is in force');
  }
  if (r.kind === 'ok') {
    if (r.value.table !== table) {
      throw new CommitConfirmError(`a confirmation is pending for table inet ${r.value.table}: confirm it (nodewall confirm) or let it roll back first`);
    }
    return { previous: r.value.previous, supersedes: [...(r.value.supersedes ?? []), r.value.id].slice(-1000), replaced: r.value };
  }
  return { previous: await snapshot(), supersedes: [] };
}

/** Who is asking, for records and outcomes: "cli USER pid N". */
export function cliActor(): string {
  const user = process.env['SUDO_USER'] ?? process.env['USER'] ?? process.env['LOGNAME'] ?? `uid ${process.getuid?.() ?? '?'}`;
  return `${user.slice(0, 64)} (pid ${process.pid})`;
}
