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
//   apply), and when it is rolled back the agent does not apply that input
//   again until it changes ("refused"). The refusal is the newest agent
//   outcome in confirm-outcomes.json being `rolled-back` with its inputHash,
//   so it survives restarts; in memory the model key is refused too.

import type { Logger } from 'pino';
import { quarantine } from '../inventory/state-files.js';
import type { NodewallConfig } from '../inventory/types.js';
import {
  isDue, liveClaims, msLeft, outcomeOf, pendingPath, readOutcomes, readPending, recoverClaims, rollbackFromMemory,
  rollbackPending, writePending, type KernelTarget, type PendingConfirm, type RollbackResult,
} from './commit-confirm.js';
import { startWatchdog } from './confirm-watchdog.js';
import { putOnProbation } from './probation.js';
import { pidAlive } from './status-file.js';
import type { AppliedRuleset } from './drift-repair.js';

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
  }
  | { readonly kind: 'error'; readonly message: string };

export interface Refusal {
  readonly id: string;
  readonly inputHash: string | undefined;
  readonly modelHash: string | undefined;
  readonly at: string;
}

export class RolloutConfirm {
  readonly #log: Logger;
  readonly #onDue: () => void;
  #own: OwnPending | undefined;
  #refused: Refusal | undefined;
  /** The input of the agent's last confirmed change: applying it again (restart, reboot) needs no new confirmation. */
  #confirmedInput: string | undefined;
  #refusalLoadedFrom: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The record on disk at the last check. */
  #seen: PendingConfirm | undefined;
  #lastError: string | undefined;

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

  /** Manual mode: this input (or model) was rolled back and has not changed since. */
  refused(inputHash: string, modelHash: string): Refusal | undefined {
    const r = this.#refused;
    if (r === undefined) return undefined;
    return r.inputHash === inputHash || (r.modelHash !== undefined && r.modelHash === modelHash) ? r : undefined;
  }

  /** Read the refusal kept in the outcomes (once per state dir): a restarted agent does not retry a rolled-back input. */
  async loadRefusal(stateDir: string): Promise<void> {
    if (this.#refusalLoadedFrom === stateDir) return;
    this.#refusalLoadedFrom = stateDir;
    const mine = (await readOutcomes(stateDir)).filter((o) => o.origin === 'agent');
    const last = mine[mine.length - 1];
    this.#refused = last?.outcome === 'rolled-back' ? { id: last.id, inputHash: last.inputHash, modelHash: undefined, at: last.at } : undefined;
    this.#confirmedInput = last?.outcome === 'confirmed' ? last.inputHash : undefined;
  }

  /** False when this input is the one last confirmed (the agent restarted, the node rebooted). */
  needsProbation(inputHash: string): boolean {
    return this.#confirmedInput !== inputHash;
  }

  /**
   * Manual mode, before loading a changed model (inside the nft write lock): keep the table as it is (or the
   * rollback target of a change still pending), write the record durably, arm the watchdog. Throws: load nothing.
   */
  async beforeApply(t: ConfirmTarget, c: {
    seconds: number; inputHash: string; modelHash: string; previousApplied: AppliedRuleset | undefined; previousModelHash: string | undefined;
  }): Promise<void> {
    const existing = await readPending(t.stateDir);
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
      this.#own = { record, previousApplied: same?.previousApplied, previousModelHash: same?.previousModelHash, modelHash: c.modelHash };
      this.#arm(record);
      return;
    }
    const { record, replaced } = await putOnProbation(t, { origin: 'agent', by: `agent pid ${process.pid}`, seconds: c.seconds, inputHash: c.inputHash });
    const keep = this.#own !== undefined && replaced?.id === this.#own.record.id ? this.#own : undefined;
    this.#own = {
      record,
      // A change on top of a pending one rolls back to what was in force before the first.
      previousApplied: keep === undefined ? c.previousApplied : keep.previousApplied,
      previousModelHash: keep === undefined ? c.previousModelHash : keep.previousModelHash,
      modelHash: c.modelHash,
    };
    this.#refused = undefined;
    this.#arm(record);
    this.#log.warn({ confirm: 'pending', id: record.id, deadline: record.deadline, seconds: c.seconds, watchdogPid: record.watchdogPid, supersedes: record.supersedes },
      `change on probation: run \`nodewall confirm\` before ${record.deadline}, or the previous ruleset is restored`);
  }

  /**
   * Enforce whatever confirmation is pending (inside the nft write lock): roll back a due one, notice one
   * confirmed or rolled back by someone else. At most one event per call.
   */
  async check(t: ConfirmTarget): Promise<ConfirmEvent | undefined> {
    await this.loadRefusal(t.stateDir);
    const target: KernelTarget = { nftPath: t.nftPath, table: t.table, exec: { timeoutMs: t.timeoutMs } };
    const by = `agent pid ${process.pid}`;
    await recoverClaims(t.stateDir);
    const r = await readPending(t.stateDir);
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
      if (!isDue(rec)) {
        this.#arm(rec);
        return undefined;
      }
      const mine = this.#own !== undefined && this.#own.record.id === rec.id ? this.#own.record : undefined;
      return this.#event(await rollbackPending(t.stateDir, target, { by, expected: mine }));
    }
    // No record on disk.
    if (own === undefined) return undefined;
    const o = await outcomeOf(t.stateDir, own.record.id);
    if (o?.outcome === 'confirmed') {
      this.#own = undefined;
      this.#confirmedInput = own.record.inputHash;
      this.#log.info({ confirm: 'confirmed', id: own.record.id, by: o.by }, 'change confirmed: it stays in force');
      return { kind: 'confirmed', record: own.record, by: o.by };
    }
    if (o?.outcome === 'rolled-back' || o?.outcome === 'cancelled') {
      return this.#rolledBack(own.record, o.by, o.detail ?? o.outcome);
    }
    if (!isDue(own.record) || (await liveClaims(t.stateDir)).length > 0) return undefined;
    // Gone with no outcome at its deadline: fail towards the known-good table.
    return this.#event(await rollbackFromMemory(t.stateDir, target, own.record, by));
  }

  /** For status: the refusal in force (manual mode). */
  get refusal(): Refusal | undefined {
    return this.#refused;
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
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
    if (own !== undefined) {
      this.#own = undefined;
      this.#refused = { id: record.id, inputHash: record.inputHash, modelHash: own.modelHash, at: new Date().toISOString() };
    } else if (record.origin === 'agent') {
      // An earlier run's change (restart, reboot): refuse its input too.
      this.#refused = { id: record.id, inputHash: record.inputHash, modelHash: undefined, at: new Date().toISOString() };
    }
    this.#log.error({ confirm: 'rolled-back', id: record.id, origin: record.origin, deadline: record.deadline, by, detail, inputHash: record.inputHash },
      record.origin === 'agent'
        ? 'change not confirmed by its deadline: previous ruleset restored; this input is not applied again until it changes'
        : 'nodewall apply --confirm-within was not confirmed by its deadline: previous ruleset restored');
    return {
      kind: 'rolled-back', record, own: own !== undefined || record.origin === 'agent', by, detail,
      previousApplied: own?.previousApplied, previousModelHash: own?.previousModelHash,
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
