// Break-glass pause: `nodewall pause --for 15m` suspends enforcement (the
// agent loads its ruleset in audit mode: nothing dropped, every would-drop
// recorded) until a deadline; the agent re-arms enforcement by itself.
//
// The request is a durable state file, <stateDir>/pause.json, written by the
// CLI (fsync'd, atomic rename) and read by the agent through the bounded
// state-file reader. Every doubt fails towards ENFORCEMENT: a corrupt, huge,
// non-regular or future-dated file is quarantined and ignored; an end beyond
// pausedAt + maxPauseMs is capped, so no file can pause a node for longer than
// the cap counted from when it was asked, however often the agent restarts.

import { open, rm } from 'node:fs/promises';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { durationMs } from '../duration.js';
import { escapeUnprintable, unprintableProblem } from '../api/printable.js';
import type { Logger } from 'pino';
import { dropRecordsOf, type NodewallConfig, type RunMode } from '../inventory/types.js';
import { applyModel } from '../nft/apply.js';
import type { HostModel } from '../policy/model.js';
import type { NftWriteLock } from './nft-lock.js';
import { field, loadStateFile, obj, optional, ShapeError, str, literal, type Check, StateFileError } from '../inventory/state-files.js';
import { writeJsonAtomic } from './status-file.js';

export const pauseFileName = 'pause.json';
/** Longest pause: a break-glass is for an incident, not a way of running. */
export const maxPauseMs = 24 * 3600 * 1000;
/** The pause file is a few hundred bytes. */
export const pauseMaxBytes = 64 * 1024;
/** Clock skew tolerated for a pausedAt in the future (another clock wrote it?); more is corrupt. */
const futureSkewMs = 60_000;
export const maxReasonLength = 500;

export class PauseInputError extends Error {
  override readonly name = 'PauseInputError';
}

export interface Requester {
  /** SUDO_USER when run through sudo, else USER/LOGNAME, else "uid N". */
  readonly user: string;
  readonly uid: number;
  readonly sudoUser?: string;
  /** The terminal of the request (/dev/pts/3), when stdin is one. */
  readonly tty?: string;
}

export interface PauseRecord {
  readonly version: 1;
  /** Random id: `status` and the CLI tell one pause from the next. */
  readonly id: string;
  readonly pausedAt: string;
  readonly until: string;
  readonly reason: string;
  readonly requestedBy: Requester;
}

/** What the agent reports in status.json while paused. */
export interface PauseStatus {
  readonly id: string;
  readonly pausedAt: string;
  /** The effective end (capped). */
  readonly until: string;
  readonly reason: string;
  readonly requestedBy: Requester;
  /** The mode the config asks for, suspended meanwhile. */
  readonly suspendedMode: RunMode;
}

/**
 * "15m", "90s", "1h30m", "2h" -> milliseconds (the command line's one grammar, src/duration.ts). Rejects 0,
 * negatives, fractions of a millisecond, unknown units, garbage, and anything over maxPauseMs.
 */
export function parsePauseDuration(text: string): number {
  const total = durationMs(text);
  if (total === undefined) throw new PauseInputError(`--for ${JSON.stringify(text)}: not a duration; use e.g. 15m, 90s, 1h30m (units h, m, s, ms, in this order)`);
  if (total <= 0) throw new PauseInputError(`--for ${JSON.stringify(text)}: must be longer than zero`);
  if (total < 1000) throw new PauseInputError(`--for ${JSON.stringify(text)}: at least 1s`);
  if (total > maxPauseMs) throw new PauseInputError(`--for ${JSON.stringify(text)}: at most 24h (a longer break-glass is a change of mode: set mode: audit in the config)`);
  return total;
}

/** Who is asking: sudo's user first, then the login, then the uid; and the terminal when there is one. */
export function currentRequester(env: NodeJS.ProcessEnv = process.env): Requester {
  const uid = process.getuid?.() ?? -1;
  const sudoUser = env['SUDO_USER'];
  const login = env['USER'] ?? env['LOGNAME'];
  let tty: string | undefined;
  try {
    if (process.stdin.isTTY) tty = readlinkSync('/proc/self/fd/0');
  } catch {
    tty = undefined;
  }
  // From the environment: kept printable and short, so the record passes checkPause and prints safely.
  const safe = (s: string) => escapeUnprintable(s).slice(0, maxNameLength);
  return {
    user: safe(sudoUser ?? login ?? `uid ${uid}`),
    uid,
    ...(sudoUser === undefined ? {} : { sudoUser: safe(sudoUser) }),
    ...(tty === undefined ? {} : { tty: safe(tty) }),
  };
}

export function checkReason(reason: string): string {
  if (reason.length > maxReasonLength) throw new PauseInputError(`--reason: at most ${maxReasonLength} characters (got ${reason.length})`);
  const problem = unprintableProblem(reason);
  if (problem !== undefined) throw new PauseInputError(`--reason: ${problem} (control characters are not allowed)`);
  return reason;
}

export function pausePath(stateDir: string): string {
  return join(stateDir, pauseFileName);
}

/** Write the pause request durably: fsync the file, rename it into place, fsync the directory. */
export async function writePause(stateDir: string, rec: PauseRecord): Promise<void> {
  await writeJsonAtomic(pausePath(stateDir), rec, { durable: true });
  const dir = await open(stateDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function removePause(stateDir: string): Promise<void> {
  await rm(pausePath(stateDir), { force: true });
}

const maxNameLength = 256;

/** A name shown by `nodewall status` and logged: short, printable. */
const nameText: Check<string> = (v, path) => {
  const s = str(v, path);
  if (s.length > maxNameLength || unprintableProblem(s) !== undefined) throw new ShapeError(path, `printable text of at most ${maxNameLength} characters`, v);
  return s;
};

const requesterCheck: Check<Requester> = (v, path) => {
  const o = obj(v, path);
  field(o, 'user', nameText, path);
  const uid = o['uid'];
  if (typeof uid !== 'number' || !Number.isSafeInteger(uid) || uid < -1) throw new ShapeError(`${path}.uid`, 'an integer', uid);
  optional(o, 'sudoUser', nameText, path);
  optional(o, 'tty', nameText, path);
  return o as unknown as Requester;
};

const isoTime: Check<number> = (v, path) => {
  const s = str(v, path);
  const t = Date.parse(s);
  if (!/^\d{4}-\d\d-\d\dT/.test(s) || !Number.isFinite(t)) throw new ShapeError(path, 'an ISO 8601 time', v);
  return t;
};

export function checkPause(v: unknown): PauseRecord {
  const o = obj(v, '');
  field(o, 'version', literal(1), '');
  const id = field(o, 'id', str, '');
  if (!/^[a-f0-9]{8,64}$/.test(id)) throw new ShapeError('id', 'a hex id', id);
  field(o, 'pausedAt', isoTime, '');
  field(o, 'until', isoTime, '');
  const reason = field(o, 'reason', str, '');
  if (reason.length > maxReasonLength) throw new ShapeError('reason', `at most ${maxReasonLength} characters`, reason);
  if (unprintableProblem(reason) !== undefined) throw new ShapeError('reason', 'text without control characters', reason);
  field(o, 'requestedBy', requesterCheck, '');
  return o as unknown as PauseRecord;
}

export type PauseState =
  | { readonly kind: 'none' }
  | { readonly kind: 'active'; readonly record: PauseRecord; readonly untilMs: number; readonly capped: boolean }
  | { readonly kind: 'expired'; readonly record: PauseRecord }
  | { readonly kind: 'refused'; readonly error: StateFileError };

/** The pause in force at `now`. Never throws; every doubt is 'none', 'expired' or 'refused' (= enforce). */
export async function readPause(stateDir: string, now: number): Promise<PauseState> {
  const file = pausePath(stateDir);
  const r = await loadStateFile(file, pauseMaxBytes, checkPause);
  if (r.error !== undefined) return { kind: 'refused', error: r.error };
  const rec = r.value;
  if (rec === undefined) return { kind: 'none' };
  return judgePause(rec, now, file);
}

/** An intact record judged against the clock (pure: tests drive `now`). */
export function judgePause(rec: PauseRecord, now: number, file = pauseFileName): PauseState {
  const pausedAt = Date.parse(rec.pausedAt);
  const until = Date.parse(rec.until);
  if (pausedAt > now + futureSkewMs) {
    return { kind: 'refused', error: new StateFileError(file, `pausedAt ${rec.pausedAt} is in the future: ignored, enforcement stays`) };
  }
  const cap = pausedAt + maxPauseMs;
  const untilMs = Math.min(until, cap);
  if (untilMs <= now) return { kind: 'expired', record: rec };
  return { kind: 'active', record: rec, untilMs, capped: until > cap };
}

/** "alice (via sudo, uid 0, tty /dev/pts/3)". */
export function requesterText(r: Requester): string {
  const extra = [r.sudoUser === undefined ? '' : 'via sudo', `uid ${r.uid}`, r.tty === undefined ? '' : `tty ${r.tty}`].filter((x) => x !== '');
  return `${r.user} (${extra.join(', ')})`;
}

export const pauseStatusCheck: Check<PauseStatus> = (v, path) => {
  const o = obj(v, path);
  field(o, 'id', str, path);
  field(o, 'pausedAt', str, path);
  field(o, 'until', str, path);
  field(o, 'reason', str, path);
  field(o, 'requestedBy', requesterCheck, path);
  field(o, 'suspendedMode', literal<RunMode>('enforce', 'audit', 'dry-run'), path);
  return o as unknown as PauseStatus;
};

/**
 * The agent's side. Polls the pause file (and wakes at the deadline); calls
 * `onChange` when the pause starts, ends or is replaced, so the agent runs a
 * pass that renders the ruleset in the mode `modeFor` says.
 */
export class PauseControl {
  readonly #log: Logger;
  readonly #onChange: () => void;
  readonly #stateDir: () => string | undefined;
  #active: { record: PauseRecord; untilMs: number } | undefined;
  #poll: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #refusedNoted: string | undefined;
  #busy = false;

  constructor(opts: { log: Logger; stateDir: () => string | undefined; onChange: () => void; pollMs?: number }) {
    this.#log = opts.log;
    this.#onChange = opts.onChange;
    this.#stateDir = opts.stateDir;
    this.#poll = setInterval(() => void this.#check(), opts.pollMs ?? 1000);
    this.#poll.unref();
  }

  /** Read the file now; true when the pause state changed (the caller renders again). Calls run one at a time. */
  refresh(now?: number): Promise<boolean> {
    const run = this.#chain.then(() => this.#refresh(now ?? Date.now()));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #chain: Promise<unknown> = Promise.resolve();

  async #refresh(now: number): Promise<boolean> {
    const dir = this.#stateDir();
    if (dir === undefined) return false;
    const st = await readPause(dir, now);
    const before = this.#active;
    if (st.kind === 'active') {
      if (before?.record.id === st.record.id && before.untilMs === st.untilMs) return false;
      this.#active = { record: st.record, untilMs: st.untilMs };
      this.#armDeadline(st.untilMs - now);
      const r = st.record;
      this.#log.warn({
        pause: { id: r.id, until: new Date(st.untilMs).toISOString(), reason: r.reason, requestedBy: r.requestedBy, ...(st.capped ? { cappedFrom: r.until } : {}) },
      }, `PAUSED: enforcement suspended until ${new Date(st.untilMs).toISOString()} (audit mode: nothing dropped, every would-drop recorded), asked by ${requesterText(r.requestedBy)}: ${r.reason === '' ? '(no reason given)' : r.reason}`);
      return true;
    }
    if (st.kind === 'refused' && this.#refusedNoted !== st.error.message) {
      this.#refusedNoted = st.error.message;
      this.#log.error({ file: st.error.file, reason: st.error.reason }, `pause file ignored, enforcement stays: ${st.error.message}`);
    }
    if (st.kind === 'expired') {
      // Gone for good: the next reader must not find it (and a restarted agent never re-reads it).
      await removePause(dir).catch((err: unknown) => this.#log.warn({ err }, 'cannot remove the expired pause file'));
    }
    if (before === undefined) return false;
    this.#active = undefined;
    this.#clearDeadline();
    const how = st.kind === 'expired' || (st.kind === 'none' && before.untilMs <= now) ? 'expired' : st.kind === 'none' ? 'resumed' : 'refused';
    this.#log.warn({ pause: { id: before.record.id, ended: how } }, `pause ended (${how}): enforcement is back`);
    return true;
  }

  /** The mode to render: enforce becomes audit while paused; audit and dry-run stay what they are. */
  modeFor(mode: RunMode): RunMode {
    return this.#active !== undefined && mode === 'enforce' ? 'audit' : mode;
  }

  /** `config` with the mode to render (the same object when not paused). */
  effective<C extends { readonly mode: RunMode }>(config: C): C {
    const mode = this.modeFor(config.mode);
    return mode === config.mode ? config : { ...config, mode };
  }

  get paused(): boolean {
    return this.#active !== undefined;
  }

  status(mode: RunMode): PauseStatus | undefined {
    const a = this.#active;
    if (a === undefined) return undefined;
    return { id: a.record.id, pausedAt: a.record.pausedAt, until: new Date(a.untilMs).toISOString(), reason: a.record.reason, requestedBy: a.record.requestedBy, suspendedMode: mode };
  }

  stop(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
    this.#clearDeadline();
  }

  async #check(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      if (await this.refresh()) this.#onChange();
    } catch (err) {
      this.#log.error({ err }, 'pause check failed');
    } finally {
      this.#busy = false;
    }
  }

  #armDeadline(ms: number): void {
    this.#clearDeadline();
    // setTimeout's limit is 2^31-1 ms; the cap keeps every pause below it.
    this.#deadline = setTimeout(() => void this.#check(), Math.max(0, Math.min(ms + 50, maxPauseMs)));
  }

  #clearDeadline(): void {
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    this.#deadline = undefined;
  }
}


/**
 * The agent stops (SIGTERM) while paused: load the configured enforce ruleset
 * again, so a stopped agent never leaves the node paused. The pause file stays:
 * an agent started again before the deadline resumes the pause, after it not.
 */
export async function rearmOnStop(
  pause: PauseControl,
  config: NodewallConfig,
  model: HostModel | undefined,
  appliedMode: RunMode | undefined,
  lock: NftWriteLock,
  log: Logger,
): Promise<void> {
  if (!pause.paused || model === undefined || config.mode !== 'enforce' || appliedMode !== 'audit') return;
  try {
    // The enforce ruleset as the agent renders it: with its drop records (and logDrops), or `nodewall drops` has no table to read.
    await lock.run(() => applyModel(model, { nftPath: config.nft.path, table: config.nft.table, mode: 'enforce', dropRecords: dropRecordsOf(config), timeoutMs: config.nft.timeoutSeconds * 1000 }));
    log.warn({ table: config.nft.table }, 'agent stopping during a pause: enforcement restored (the pause resumes if the agent starts again before it ends)');
  } catch (err) {
    log.error({ err, table: config.nft.table }, 'agent stopping during a pause: could not restore enforcement; the audit ruleset stays until the agent runs again');
  }
}

/** `{ pause }` for the status file, or nothing. */
export function pauseField(p: PauseStatus | undefined): { pause?: PauseStatus } {
  return p === undefined ? {} : { pause: p };
}
