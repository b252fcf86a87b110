// The confirm watchdog: a detached process that rolls a pending confirmation
// back at its deadline, on its own. It is started BEFORE the new ruleset is
// loaded, in a session of its own (setsid: the SSH session's hangup and the
// terminal's process group do not reach it), with no stdio left open to the
// starter once it has said it is armed, so neither the shell that ran
// `nodewall apply` dying, nor `apply` being SIGKILLed, nor the agent restarting
// stops it. It keeps its own copy of the record: a pending file that becomes
// unreadable is rolled back from that copy (fail towards the known-good table).
//
// It ends when the record is confirmed, replaced by a newer one (which carries
// the same rollback target and has its own watchdog), rolled back by someone
// else (the agent), or by itself. Everything it does is appended to
// <stateDir>/confirm-watchdog.log (JSON lines, bounded).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, readlink, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cliEntry, startDetached } from './detached-cli.js';
import {
  changedPendingReader, isDue, liveClaims, msLeft, outcomeOf, readPending, recoverClaims, rollbackFromMemory, rollbackPending,
  type KernelTarget, type PendingConfirm,
} from './commit-confirm.js';

export const watchdogLogName = 'confirm-watchdog.log';
const logMaxBytes = 1024 * 1024;
/** A failing restore (nft busy, broken) is retried this often before the agent is left to it. */
const maxAttempts = 30;
const pollMs = 500;

export interface WatchdogArgs {
  readonly stateDir: string;
  readonly id: string;
  readonly nftPath: string;
  readonly table: string;
  readonly timeoutMs: number;
}

/** Thrown when the watchdog could not be started: the caller must not load the new ruleset. */
export { DetachedStartError as WatchdogStartError } from './detached-cli.js';

/**
 * Start the watchdog for record `id` and wait (bounded) until it has read the record and armed itself.
 * Returns its pid. The child is detached and unref'd: this process may exit or die at any time after.
 */
export function startWatchdog(a: WatchdogArgs, waitMs = 15_000): Promise<number> {
  return startDetached({ what: 'the confirm watchdog', args: watchdogArgv(a), waitMs, logHint: join(a.stateDir, watchdogLogName) });
}

function watchdogArgv(a: WatchdogArgs): string[] {
  return ['confirm-watchdog', '--state-dir', a.stateDir, '--id', a.id, '--nft-path', a.nftPath, '--table', a.table, '--timeout-ms', String(a.timeoutMs)];
}

/**
 * Where systemd is PID 1, a second watchdog as a transient service (`systemd-run`): outside the caller's
 * session scope and the agent's cgroup, so neither logind's KillUserProcesses nor a restart of
 * nodewall.service stops it. Only from the host's own network namespace (a transient unit runs there, and must
 * act on the same kernel tables as the caller). Best effort: false when not used or not possible.
 */
export async function startSystemdWatchdog(a: WatchdogArgs): Promise<boolean> {
  if (!existsSync('/run/systemd/system')) return false;
  const [mine, init] = await Promise.all([readlink('/proc/self/ns/net').catch(() => 'self'), readlink('/proc/1/ns/net').catch(() => 'init')]);
  if (mine !== init) return false;
  return new Promise((resolve) => {
    execFile('systemd-run', ['--quiet', '--collect', `--unit=nodewall-confirm-${a.id}`, '--description=nodewall commit-confirm watchdog',
      process.execPath, cliEntry(), ...watchdogArgv(a)], { timeout: 10_000 }, (err) => resolve(err === null));
  });
}

async function log(stateDir: string, msg: string, extra: Record<string, unknown> = {}): Promise<void> {
  const file = join(stateDir, watchdogLogName);
  try {
    const st = await stat(file).catch(() => undefined);
    if (st !== undefined && st.size > logMaxBytes) await rename(file, `${file}.old`);
    await appendFile(file, `${JSON.stringify({ time: new Date().toISOString(), pid: process.pid, msg, ...extra })}\n`, { mode: 0o600 });
  } catch {
    // The log is informative; the rollback must not depend on it.
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The watchdog's life. Resolves with how it ended (the process then exits); an unexpected error is logged, then thrown. */
export async function runWatchdog(a: WatchdogArgs, armed: (pid: number) => void): Promise<string> {
  try {
    return await watch(a, armed);
  } catch (err) {
    await log(a.stateDir, 'watchdog failed', { id: a.id, error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

async function watch(a: WatchdogArgs, armed: (pid: number) => void): Promise<string> {
  const first = await readPending(a.stateDir);
  if (first.kind !== 'ok' || first.value.id !== a.id) {
    await log(a.stateDir, 'no such pending confirmation: not armed', { id: a.id, read: first.kind });
    return 'not-armed';
  }
  let mine: PendingConfirm = first.value;
  armed(process.pid);
  await log(a.stateDir, 'armed', { id: a.id, deadline: mine.deadline, table: a.table });
  const target: KernelTarget = { nftPath: a.nftPath, table: a.table, exec: { timeoutMs: a.timeoutMs } };
  const by = `watchdog pid ${process.pid}`;
  const read = changedPendingReader();
  let attempts = 0;
  for (;;) {
    await recoverClaims(a.stateDir);
    const now = await read(a.stateDir);
    if (now.kind === 'ok' && now.value.id !== a.id) {
      // Replaced by a newer apply: it keeps this record's rollback target and has its own watchdog.
      await log(a.stateDir, 'superseded', { id: a.id, by: now.value.id });
      return 'superseded';
    }
    if (now.kind === 'ok') mine = now.value;
    if (now.kind === 'missing') {
      const o = await outcomeOf(a.stateDir, a.id);
      if (o !== undefined) {
        await log(a.stateDir, `ended: ${o.outcome}`, { id: a.id, by: o.by });
        return o.outcome;
      }
    }
    if (isDue(mine)) {
      let r;
      if (now.kind === 'missing') {
        // Gone without an outcome: someone alive may be finishing it; else fail towards rollback.
        if ((await liveClaims(a.stateDir)).length > 0) {
          await sleep(pollMs);
          continue;
        }
        r = await rollbackFromMemory(a.stateDir, target, mine, by);
      } else {
        r = await rollbackPending(a.stateDir, target, { by, expected: mine });
      }
      if (r.kind === 'rolled-back') {
        await log(a.stateDir, 'rolled back: not confirmed by the deadline', { id: a.id, restore: r.restore, fromMemory: r.fromMemory });
        return 'rolled-back';
      }
      if (r.kind === 'superseded') continue;
      if (r.kind === 'failed' || r.kind === 'corrupt') {
        attempts++;
        await log(a.stateDir, 'rollback failed', { id: a.id, attempt: attempts, error: r.kind === 'failed' ? r.error.message : r.reason });
        if (attempts >= maxAttempts) return 'gave-up';
        await sleep(Math.min(10_000, 500 * attempts));
        continue;
      }
      // 'gone': another process claimed it between our read and our claim; see what it did.
    }
    await sleep(Math.max(50, Math.min(pollMs, msLeft(mine))));
  }
}
