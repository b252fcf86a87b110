// Putting a change on probation (commit-confirm), for `nodewall apply
// --confirm-within` and the agent alike, BEFORE the new ruleset is loaded:
// 1. the rollback target: the kernel's table as it is (or "no table"), or,
//    with an unconfirmed change still pending, that change's own target;
// 2. the record, fsync'd (file and directory);
// 3. the detached watchdog, armed on that record (its pid is added to it).
// If any step fails nothing new may be loaded: the caller gets the error and
// a record that nothing will follow is withdrawn.

import { randomBytes } from 'node:crypto';
import { findTemporaryTables } from '../nft/make-before-break.js';
import { snapshotTable } from '../nft/table-snapshot.js';
import { tableState } from './drift.js';
import { cancelPending, newPending, rollbackTarget, writePending, type ConfirmOrigin, type PendingConfirm } from './commit-confirm.js';
import { startSystemdWatchdog, startWatchdog } from './confirm-watchdog.js';

export interface ProbationTarget {
  readonly stateDir: string;
  readonly nftPath: string;
  readonly table: string;
  readonly timeoutMs: number;
}

export interface Probation {
  readonly record: PendingConfirm;
  /** The unconfirmed record this one replaced (same rollback target), if any. */
  readonly replaced: PendingConfirm | undefined;
}

export async function putOnProbation(
  t: ProbationTarget, f: { origin: ConfirmOrigin; by: string; seconds: number; inputHash?: string },
): Promise<Probation> {
  const target = await rollbackTarget(t.stateDir, t.table, () => snapshotTable(t.nftPath, t.table, { timeoutMs: t.timeoutMs }));
  let record = newPending({
    origin: f.origin, by: f.by, seconds: f.seconds, table: t.table, previous: target.previous, inputHash: f.inputHash, supersedes: target.supersedes,
  });
  await writePending(t.stateDir, record);
  let pid: number;
  try {
    pid = await startWatchdog({ stateDir: t.stateDir, id: record.id, nftPath: t.nftPath, table: t.table, timeoutMs: t.timeoutMs });
  } catch (err) {
    // Nothing new was loaded. A replaced record's change is still in the kernel: put that record back.
    if (target.replaced === undefined) await cancelPending(t.stateDir, record, f.by, `not loaded: ${(err as Error).message}`).catch(() => undefined);
    else await writePending(t.stateDir, target.replaced).catch(() => undefined);
    throw err;
  }
  record = { ...record, watchdogPid: pid };
  await writePending(t.stateDir, record);
  // A third enforcer where systemd runs (best effort; the detached watchdog and the agent suffice without it).
  await startSystemdWatchdog({ stateDir: t.stateDir, id: record.id, nftPath: t.nftPath, table: t.table, timeoutMs: t.timeoutMs });
  return { record, replaced: target.replaced };
}

/**
 * What a load can change, as one comparable string: the table's terse listing and nodewall's temporary tables of
 * it (a full replace is several transactions, make-before-break.ts: one that fails may leave the new ruleset
 * filtering from a temporary table, the table itself changed or not). A read that fails gives a value equal to
 * no other, so that "unchanged" is never concluded from it.
 */
export async function kernelFingerprint(nftPath: string, table: string, timeoutMs: number): Promise<string> {
  const unknown = () => `unknown ${randomBytes(8).toString('hex')}`;
  const st = await tableState(nftPath, table, timeoutMs);
  const hash = st.present ? st.hash : /No such file or directory/.test(st.error) ? 'absent' : unknown();
  const temporary = await findTemporaryTables(nftPath, table, { timeoutMs }).then((f) => f.ours.join(','), unknown);
  return `${hash} | ${temporary}`;
}

/**
 * The load failed and, as `kernelFingerprint` before and after it shows, changed nothing: withdraw the record, or
 * restore the one it replaced. (A load that changed something keeps its record: its deadline rolls it back.)
 */
export async function abandonProbation(t: ProbationTarget, p: Probation, by: string, reason: string): Promise<void> {
  if (p.replaced === undefined) await cancelPending(t.stateDir, p.record, by, `not loaded: ${reason}`);
  else await writePending(t.stateDir, p.replaced);
}
