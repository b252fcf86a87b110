// The agent's side of commit-confirm (config rollout.confirm / rollout.confirmSeconds).
//
// - Every pass and every timer tick, the agent enforces any pending
//   confirmation, whoever made it (a CLI `apply --confirm-within` or its own
//   change): due -> roll back to the kept table; gone -> read the outcome. It
//   is the second enforcer beside the detached watchdog, and the one that
//   survives a reboot (the record is on disk; a record of another boot is due
//   at once, so an unconfirmed ruleset is never adopted as the one in force).
// - With rollout.confirm: manual, each change of the desired model is loaded
//   on probation (beforeApply: record fsync'd, watchdog armed, THEN the
//   apply). When it is rolled back, the event carries the refusal plan made
//   at probation time (confirm-refusal.ts): the agent refuses it through
//   RefusedChanges (refused.json, shown in `status`), like a probe rollback.
// - A change put on probation whose apply then fails, or that a rollout probe
//   rolls back at once, is withdrawn (withdraw): its record must not roll back
//   at the deadline, nor refuse an input that was never (or no longer) loaded.
// - check(t, { endNow }) ends a pending confirmation before its deadline (a pause began: the agent renders
//   audit, and a rollback at the deadline must not put an enforce table back during the pause).
// - A change of ours that ended before its deadline (confirmed, withdrawn, rolled back early) is looked at
//   again when that deadline passes: the first check after it logs "deadline passed: nothing to roll back"
//   with the change's outcome as recorded on disk then, so an operator (and a test) sees the deadline go by
//   as an event instead of as silence.

import type { Logger } from 'pino';
import { quarantine } from '../inventory/state-files.js';
import type { NodewallConfig } from '../inventory/types.js';
import {
  cancelPending, changedPendingReader, isDue, liveClaims, msLeft, outcomeOf, pendingPath, readOutcomes, recoverClaims, rollbackFromMemory,
  rollbackPending, writePending, type KernelTarget, type PendingConfirm, type RollbackResult,
} from './commit-confirm.js';
import { startWatchdog } from './confirm-watchdog.js';
import { kernelFingerprint, putOnProbation, type Probation } from './probation.js';
import { pidAlive } from './status-file.js';
import type { AppliedRuleset } from './drift-repair.js';
import type { ConfirmRefusalPlan } from './confirm-refusal.js';
import type { LastGood } from './last-good.js';
import type { HostModel } from '../policy/model.js';

export interface RolloutConfirmSettings {
  readonly confirm: 'off' | 'manual';
  readonly confirmSeconds: number;
}

export const defaultRolloutConfirm: RolloutConfirmSettings = { confirm: 'off', confirmSeconds: 120 };

export function rolloutConfirmSettings(config: NodewallConfig): RolloutConfirmSettings {
  return {
    confirm: config.rollout?.confirm ?? defaultRolloutConfirm.confirm,
    confirmSeconds: config.rollout?.confirmSeconds ?? defaultRolloutConfirm.confirmSeconds,
  };
}

export interface ConfirmTarget {
  readonly stateDir: string;
  readonly nftPath: string;
  readonly table: string;
  readonly timeoutMs: number;
}

/** The agent's own change on probation, and what was in force before it. */
interface OwnPending {
  readonly record: PendingConfirm;
  /** The ruleset the agent had applied before the first unconfirmed change (undefined: unknown, e.g. after a restart). */
  readonly previousApplied: AppliedRuleset | undefined;
  readonly previousModelHash: string | undefined;
  readonly modelHash: string;
  /** The last good policy versions before the first unconfirmed change of the chain. */
  readonly lastGoodBefore: LastGood;
  /** What a rollback refuses (confirm-refusal.ts). */
  readonly plan: ConfirmRefusalPlan | undefined;
}

/** A probation put on by one pass: what withdraw() needs if its apply fails or a probe rolls it back. */
export interface ProbationTicket {
  readonly probation: Probation;
  /** Our pending change this one replaced (restored on withdrawal). */
  readonly ownBefore: OwnPending | undefined;
  /** The kernel just before the apply (probation.ts kernelFingerprint: the table and its temporary tables). */
  readonly kernel: string;
}

export type ConfirmEvent =
  | { readonly kind: 'confirmed'; readonly record: PendingConfirm; readonly by: string }
  | {
    readonly kind: 'rolled-back';
    readonly record: PendingConfirm;
    /** The agent's own change (its in-memory state must follow). */
    readonly own: boolean;
    readonly by: string;
    readonly detail: string;
    readonly previousApplied?: AppliedRuleset | undefined;
    readonly previousModelHash?: string | undefined;
    /** Our own change of this run: what to refuse (undefined: an earlier run's change, or a CLI apply). */
    readonly plan?: ConfirmRefusalPlan | undefined;
  }
  | { readonly kind: 'error'; readonly message: string };

export class RolloutConfirm {
  readonly #log: Logger;
  readonly #onDue: () => void;
  #own: OwnPending | undefined;
  /** The input of the agent's last confirmed change: applying it again (restart, reboot) needs no new confirmation. */
  #confirmedInput: string | undefined;
  /** The ruleset (mode|model key) last confirmed in this run: loading it again needs no new confirmation. */
  #confirmedRuleset: string | undefined;
  #loadedFrom: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The record on disk at the last check. */
  #seen: PendingConfirm | undefined;
  #lastError: string | undefined;
  /** The pending record, re-read only when the file changed (check runs at every pass and tick). */
  readonly #readPending = changedPendingReader();
  /** Our changes that ended before their deadline, by id, with the timer that wakes a check at it. */
  readonly #ended = new Map<string, { readonly record: PendingConfirm; readonly how: string; readonly timer: NodeJS.Timeout }>();

  constructor(log: Logger, onDue: () => void) {
    this.#log = log;
    this.#onDue = onDue;
  }

  /**
   * A pending change (ours, or any record the last check saw) has reached its deadline: it is being rolled back,
   * and drift repair must not put the unconfirmed ruleset back meanwhile.
   */
  get pendingDue(): boolean {
    return (this.#own !== undefined && isDue(this.#own.record)) || (this.#seen !== undefined && isDue(this.#seen));
  }

  get ownPending(): PendingConfirm | undefined {
    return this.#own?.record;
  }

  /** Read the last confirmed input from the outcomes (once per state dir): a restarted agent does not ask again. */
  async loadConfirmed(stateDir: string): Promise<void> {
    if (this.#loadedFrom === stateDir) return;
    this.#loadedFrom = stateDir;
    const mine = (await readOutcomes(stateDir)).filter((o) => o.origin === 'agent');
    const last = mine[mine.length - 1];
    this.#confirmedInput = last?.outcome === 'confirmed' ? last.inputHash : undefined;
  }

  /**
   * False when this input is the one last confirmed (the agent restarted, the node rebooted), or this ruleset
   * is the one last confirmed (a refused change left out: the confirmed ruleset again).
   */
  needsProbation(inputHash: string, rulesetKey?: string): boolean {
    return this.#confirmedInput !== inputHash && (rulesetKey === undefined || this.#confirmedRuleset !== rulesetKey);
  }

  /**
   * Manual mode, before loading a changed model (inside the nft write lock): keep the table as it is (or the
   * rollback target of a change still pending), write the record durably, arm the watchdog. Throws: load nothing.
   */
  async beforeApply(t: ConfirmTarget, c: {
    seconds: number; inputHash: string; modelHash: string; previousApplied: AppliedRuleset | undefined; previousModelHash: string | undefined;
    /** The last good policy versions now (before this change is persisted as last good). */
    lastGood: LastGood;
    /** The refusal plan of this change, from the model in force before the chain (confirm-refusal.ts). */
    plan: (before: HostModel | undefined, lastGoodBefore: LastGood) => ConfirmRefusalPlan;
  }): Promise<ProbationTicket | undefined> {
    const existing = await this.#readPending(t.stateDir);
    if (existing.kind === 'ok' && existing.value.origin === 'agent' && existing.value.inputHash === c.inputHash && !isDue(existing.value)) {
      // A restarted agent re-applying the change its earlier run put on probation: same record, same deadline.
      let record = existing.value;
      if (record.watchdogPid === undefined || !pidAlive(record.watchdogPid)) {
        const pid = await startWatchdog({ stateDir: t.stateDir, id: record.id, nftPath: t.nftPath, table: t.table, timeoutMs: t.timeoutMs });
        record = { ...record, watchdogPid: pid };
        await writePending(t.stateDir, record);
      }
      // Our own record (an apply that failed and is retried) keeps what was in force before it.
      const same = this.#own?.record.id === record.id ? this.#own : undefined;
      // Without our own copy (an earlier run's change) the model in force before it is unknown: the input as a whole.
      const lastGoodBefore = same?.lastGoodBefore ?? new Map(c.lastGood);
      this.#own = {
        record, previousApplied: same?.previousApplied, previousModelHash: same?.previousModelHash, modelHash: c.modelHash,
        lastGoodBefore, plan: c.plan(same?.previousApplied?.model, lastGoodBefore),
      };
      this.#arm(record);
      // Not withdrawn if this apply fails: the record predates it, and its deadline rolls back whatever is loaded.
      return undefined;
    }
    const probation = await putOnProbation(t, { origin: 'agent', by: `agent pid ${process.pid}`, seconds: c.seconds, inputHash: c.inputHash });
    const { record, replaced } = probation;
    const ownBefore = this.#own;
    const keep = this.#own !== undefined && replaced?.id === this.#own.record.id ? this.#own : undefined;
    // A change on top of a pending one rolls back to what was in force before the first.
    const previousApplied = keep === undefined ? c.previousApplied : keep.previousApplied;
    const lastGoodBefore = keep === undefined ? new Map(c.lastGood) : keep.lastGoodBefore;
    this.#own = {
      record,
      previousApplied,
      previousModelHash: keep === undefined ? c.previousModelHash : keep.previousModelHash,
      modelHash: c.modelHash,
      lastGoodBefore,
      plan: c.plan(previousApplied?.model, lastGoodBefore),
    };
    this.#arm(record);
    // What withdraw() compares: an apply that failed without touching the table leaves exactly this.
    const kernel = await kernelFingerprint(t.nftPath, t.table, t.timeoutMs);
    this.#log.warn({ confirm: 'pending', id: record.id, deadline: record.deadline, seconds: c.seconds, watchdogPid: record.watchdogPid, supersedes: record.supersedes },
      `change on probation: run \`nodewall confirm\` before ${record.deadline}, or the previous ruleset is restored`);
    return { probation, ownBefore: keep === undefined ? undefined : ownBefore, kernel };
  }

  /**
   * The change of `ticket` is not (or no longer) in the kernel: its apply failed, or a rollout probe restored
   * the ruleset before it. Withdraw its record (outcome `cancelled`, nothing refused by commit-confirm), or put
   * back our pending change it replaced. `kernelUnchanged`: only when the table is still exactly as before the
   * apply (an apply that timed out may have loaded it, or part of it: then the record stays and its deadline
   * rolls back). Inside the nft write lock. True when withdrawn.
   */
  async withdraw(t: ConfirmTarget, ticket: ProbationTicket, detail: string, opts: { kernelUnchanged?: boolean } = {}): Promise<boolean> {
    const by = `agent pid ${process.pid}`;
    const record = ticket.probation.record;
    if (opts.kernelUnchanged === true) {
      if ((await kernelFingerprint(t.nftPath, t.table, t.timeoutMs)) !== ticket.kernel) {
        this.#log.warn({ confirm: 'pending', id: record.id }, 'the failed apply may have changed the table: the change stays on probation, and is rolled back at its deadline');
        return false;
      }
    }
    const replaced = ticket.probation.replaced;
    if (replaced === undefined) {
      if (!(await cancelPending(t.stateDir, record, by, detail))) return false;
    } else {
      await writePending(t.stateDir, replaced);
    }
    if (this.#own?.record.id === record.id) this.#own = ticket.ownBefore;
    if (this.#own !== undefined) this.#arm(this.#own.record);
    else this.#disarm();
    this.#noteEnded(record, 'withdrawn');
    this.#log.warn({ confirm: 'withdrawn', id: record.id, restored: replaced?.id, detail },
      replaced === undefined ? 'change on probation withdrawn: nothing to confirm' : `change on probation withdrawn: the unconfirmed change ${replaced.id} is pending again`);
    return true;
  }

  /**
   * Enforce whatever confirmation is pending (inside the nft write lock): roll back a due one, notice one
   * confirmed or rolled back by someone else. At most one event per call.
   */
  async check(t: ConfirmTarget, opts: { endNow?: string } = {}): Promise<ConfirmEvent | undefined> {
    await this.loadConfirmed(t.stateDir);
    await this.#reportPassedDeadlines(t.stateDir);
    const target: KernelTarget = { nftPath: t.nftPath, table: t.table, exec: { timeoutMs: t.timeoutMs } };
    const by = `agent pid ${process.pid}`;
    await recoverClaims(t.stateDir);
    const r = await this.#readPending(t.stateDir);
    this.#seen = r.kind === 'ok' ? r.value : undefined;
    const own = this.#own;
    if (r.kind === 'corrupt') {
      if (own !== undefined) {
        // Our own copy is known good: wait for the deadline, then roll back from it.
        return isDue(own.record) ? this.#event(await rollbackPending(t.stateDir, target, { by, expected: own.record, force: true })) : undefined;
      }
      let moved = '';
      try {
        moved = await quarantine(pendingPath(t.stateDir));
      } catch (err) {
        moved = `not moved: ${(err as Error).message}`;
      }
      return this.#error(`pending confirmation ${pendingPath(t.stateDir)} is unreadable (${r.reason}; ${moved}): its watchdog rolls it back from its own copy at the deadline`);
    }
    if (r.kind === 'ok') {
      const rec = r.value;
      if (own !== undefined && rec.id !== own.record.id && !(rec.supersedes ?? []).includes(own.record.id)) {
        // Replaced by a record that does not chain from ours (should not happen): it carries its own rollback target.
        this.#own = undefined;
      } else if (own !== undefined && rec.id !== own.record.id) {
        // A CLI apply on top of our pending change: it rolls back to our rollback target; follow it.
        this.#own = { ...own, record: rec };
      }
      if (!isDue(rec) && opts.endNow === undefined) {
        this.#arm(rec);
        return undefined;
      }
      const mine = this.#own !== undefined && this.#own.record.id === rec.id ? this.#own.record : undefined;
      // endNow (a pause began): the pending change ends as not confirmed, before its deadline.
      if (opts.endNow !== undefined && !isDue(rec)) this.#log.warn({ confirm: 'ending', id: rec.id, origin: rec.origin, reason: opts.endNow }, `pending confirmation ended before its deadline: ${opts.endNow}`);
      return this.#event(await rollbackPending(t.stateDir, target, { by, expected: mine, force: opts.endNow !== undefined }));
    }
    // No record on disk.
    if (own === undefined) return undefined;
    const o = await outcomeOf(t.stateDir, own.record.id);
    if (o?.outcome === 'confirmed') {
      this.#own = undefined;
      this.#confirmedInput = own.record.inputHash;
      this.#confirmedRuleset = own.modelHash;
      this.#log.info({ confirm: 'confirmed', id: own.record.id, by: o.by }, 'change confirmed: it stays in force');
      this.#noteEnded(own.record, 'confirmed');
      return { kind: 'confirmed', record: own.record, by: o.by };
    }
    if (o?.outcome === 'rolled-back' || o?.outcome === 'cancelled') {
      return this.#rolledBack(own.record, o.by, o.detail ?? o.outcome);
    }
    if (!isDue(own.record) || (await liveClaims(t.stateDir)).length > 0) return undefined;
    // Gone with no outcome at its deadline: fail towards the known-good table.
    return this.#event(await rollbackFromMemory(t.stateDir, target, own.record, by));
  }

  stop(): void {
    this.#disarm();
    for (const e of this.#ended.values()) clearTimeout(e.timer);
    this.#ended.clear();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Our change `record` ended before its deadline (`how`): look at it again when the deadline has passed. */
  #noteEnded(record: PendingConfirm, how: string): void {
    if (isDue(record) || this.#ended.has(record.id)) return;
    const timer = setTimeout(() => this.#onDue(), Math.min(msLeft(record) + 50, 2 ** 31 - 1));
    timer.unref();
    this.#ended.set(record.id, { record, how, timer });
  }

  /** The deadlines of ended changes that have passed: logged once each, with the outcome recorded on disk now. */
  async #reportPassedDeadlines(stateDir: string): Promise<void> {
    for (const [id, e] of this.#ended) {
      if (!isDue(e.record)) continue;
      this.#ended.delete(id);
      clearTimeout(e.timer);
      const o = await outcomeOf(stateDir, id);
      this.#log.info({ confirm: 'deadline-passed', id, deadline: e.record.deadline, ended: e.how, outcome: o?.outcome ?? null },
        `commit-confirm deadline of change ${id} passed: nothing to roll back (it was ${e.how} before it)`);
    }
  }

  #event(r: RollbackResult): ConfirmEvent | undefined {
    switch (r.kind) {
      case 'rolled-back':
        return this.#rolledBack(r.record, `agent pid ${process.pid}`, `not confirmed by ${r.record.deadline}: ${r.restore}${r.fromMemory ? ' (from the agent\'s copy)' : ''}`);
      case 'gone':
      case 'superseded':
        return undefined;
      case 'failed':
        return this.#error(`rollback of pending confirmation ${r.record.id} failed (retried): ${r.error.message}`);
      case 'corrupt':
        return this.#error(`pending confirmation unreadable (${r.reason})${r.movedTo === undefined ? '' : `, moved to ${r.movedTo}`}: nothing to roll back from`);
    }
  }

  #rolledBack(record: PendingConfirm, by: string, detail: string): ConfirmEvent {
    this.#seen = undefined;
    const own = this.#own !== undefined && (this.#own.record.id === record.id || (record.supersedes ?? []).includes(this.#own.record.id)) ? this.#own : undefined;
    // The caller refuses it (confirm-refusal.ts): by our plan, or an earlier run's change (restart, reboot) by its input.
    if (own !== undefined) this.#own = undefined;
    // Before its deadline (a pause ended it, or someone rolled it back): nothing may happen at the deadline.
    if (record.origin === 'agent') this.#noteEnded(record, 'rolled back before its deadline');
    this.#log.error({ confirm: 'rolled-back', id: record.id, origin: record.origin, deadline: record.deadline, by, detail, inputHash: record.inputHash },
      record.origin === 'agent'
        ? 'change not confirmed by its deadline: previous ruleset restored; the change is refused (see nodewall status) until it changes'
        : 'nodewall apply --confirm-within was not confirmed by its deadline: previous ruleset restored');
    return {
      kind: 'rolled-back', record, own: own !== undefined || record.origin === 'agent', by, detail,
      previousApplied: own?.previousApplied, previousModelHash: own?.previousModelHash, plan: own?.plan,
    };
  }

  #error(message: string): ConfirmEvent | undefined {
    if (message === this.#lastError) return undefined;
    this.#lastError = message;
    this.#log.error({ confirm: 'error' }, message);
    return { kind: 'error', message };
  }

  /** Wake the agent at the deadline (besides its timer ticks). */
  #arm(r: PendingConfirm): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const ms = Math.min(msLeft(r) + 50, 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#onDue();
    }, ms);
    this.#timer.unref();
  }
}
