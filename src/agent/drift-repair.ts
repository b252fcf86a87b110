// Drift repair: keep the kernel table equal to the ruleset last applied, with
// no need for the current input. It runs from the agent's timer even while a
// reconcile pass is busy reading a slow or big input, so a `nft flush ruleset`
// or a firewall reload is undone within a drift-check interval whatever the
// pass does. Every kernel write goes through the NftWriteLock shared with the
// pass: a check never sees a transaction half done.

import type { Logger } from 'pino';
import type { DropRecordSettings, RunMode } from '../inventory/types.js';
import { applyModel, type ApplyOptions, type ApplyResult, type PredictableLoad } from '../nft/apply.js';
import type { HostModel } from '../policy/model.js';
import { structureState, tableState, type TableState } from './drift.js';
import type { NftWriteLock } from './nft-lock.js';
import { predictedFor, predictionSwitch, startPrediction, type HashPrediction, type HashSource, type PredictionSwitch } from './table-hash-after-apply.js';

/** What is in the kernel because the agent put it there. */
export interface AppliedRuleset {
  readonly nftPath: string;
  readonly table: string;
  readonly mode: RunMode;
  /** nft.timeoutSeconds in ms; undefined: nft-exec's default. */
  readonly timeoutMs?: number;
  readonly model: HostModel;
  /** Structure hash of the table right after the apply (drift.ts); undefined: unknown (table absent). */
  readonly tableHash: string | undefined;
  /** Structure hash of the ruleset rendered from `model` (ApplyResult.structureHash). */
  readonly structureHash?: string;
  /** Config dropRecords the ruleset was rendered with (undefined = off). */
  readonly dropRecords?: DropRecordSettings | undefined;
  /**
   * Hash of the cheap structural listing (drift.ts structureState), learnt right after a full check found the
   * table as applied; undefined: not known yet (the next structural check is a full one).
   */
  readonly cheapHash?: string;
  /** How the full apply whose listing tableHash is made the table (ApplyResult.build): listings of the two builds differ in order. */
  readonly build?: 'one-transaction' | 'staged' | undefined;
}

/** How deep a check looks: the full terse listing, or the cheap structural one (when its hash is known). */
export type CheckDepth = 'full' | 'structure';

export type DriftOutcome =
  | { readonly kind: 'nothing-applied' }
  | { readonly kind: 'in-sync' }
  | { readonly kind: 'restored'; readonly result: ApplyResult; readonly drift: 'missing' | 'changed'; readonly durationMs: number }
  | { readonly kind: 'failed'; readonly drift: 'missing' | 'changed'; readonly error: string };

/** The kernel calls, replaceable in tests. */
export interface DriftKernel {
  tableState(nftPath: string, table: string): Promise<TableState>;
  applyModel(model: HostModel, opts: ApplyOptions): Promise<ApplyResult>;
  /** The cheap structural state; without it every check is a full one. */
  structureState?(nftPath: string, table: string): Promise<TableState>;
  /** Predicts the drift hash of a full load while it loads (table-hash-after-apply.ts); without it a repair reads back. */
  predict?(o: { nftPath: string; table: string; timeoutMs?: number | undefined }, rendered: PredictableLoad): HashPrediction;
}

const realKernel: DriftKernel = { tableState: (p, t) => tableState(p, t), applyModel, structureState: (p, t) => structureState(p, t), predict: startPrediction };

export class DriftRepair {
  readonly #lock: NftWriteLock;
  readonly #kernel: DriftKernel;
  readonly #switch: PredictionSwitch;
  #applied: AppliedRuleset | undefined;
  /**
   * The recorded table hash is a prediction (predicted-table-hash.ts) that no listing of the live table has
   * confirmed yet. A check that finds the table different then cannot tell drift from a wrong prediction: it
   * repairs without predicting and lets the read-back decide (see check).
   */
  #unverified = false;

  constructor(lock: NftWriteLock, kernel: DriftKernel = realKernel, sw: PredictionSwitch = predictionSwitch) {
    this.#lock = lock;
    this.#kernel = kernel;
    this.#switch = sw;
  }

  /**
   * Called by the pass, inside the lock, right after its apply. `source`: how its tableHash was obtained
   * (table-hash-after-apply.ts); a new predicted one, or one kept from an unconfirmed prediction, is unconfirmed.
   */
  record(applied: AppliedRuleset, source?: HashSource): void {
    const before = this.#applied;
    // The same hash as before (kept, or predicted equal to it) is as confirmed as it was; a new predicted one is not.
    const sameHash = before !== undefined && before.tableHash === applied.tableHash;
    this.#unverified = source === 'predicted' || source === 'kept' ? (sameHash ? this.#unverified : source === 'predicted') : false;
    // The table hash kept (an element-only delta, a noop): the structural listing is unchanged too.
    const same = before !== undefined && before.tableHash !== undefined && before.tableHash === applied.tableHash && before.nftPath === applied.nftPath && before.table === applied.table;
    // An element delta keeps the hash, and so the build that listing came from.
    const withBuild = same && applied.build === undefined && before.build !== undefined ? { ...applied, build: before.build } : applied;
    this.#applied = same && before.cheapHash !== undefined && withBuild.cheapHash === undefined ? { ...withBuild, cheapHash: before.cheapHash } : withBuild;
  }

  /** Nothing to keep in force any more (dry-run, table removed on stop). */
  forget(): void {
    this.#applied = undefined;
    this.#unverified = false;
  }

  get applied(): AppliedRuleset | undefined {
    return this.#applied;
  }

  /**
   * Compare the kernel table with the last apply; restore that ruleset (full replace) when it changed or is gone.
   * `structure`: compare the cheap structural listing only when its hash is known; a difference there, or an
   * unknown hash, falls through to the full check, so it only ever saves work, never misses what it sees.
   */
  check(log: Logger, depth: CheckDepth = 'full'): Promise<DriftOutcome> {
    return this.#lock.run(async () => {
      const a = this.#applied;
      if (a === undefined) return { kind: 'nothing-applied' };
      const cheap = this.#kernel.structureState;
      // The structural listing the full check may learn from is taken BEFORE the full listing, never after
      // it: the full listing then vouches for it. An outside change landing between the two shows in the
      // full listing (drift, repaired now); one landing after both is a change of a state whose structural
      // hash was learnt right, so the next cheap check sees it. (Taken after, such a change would have been
      // learnt as the table in sync until the next full check.)
      let learnFrom: TableState | undefined;
      if (cheap !== undefined && (depth === 'structure' || a.cheapHash === undefined)) {
        const ss = await cheap.call(this.#kernel, a.nftPath, a.table);
        if (a.cheapHash === undefined) learnFrom = ss;
        else if (ss.present && ss.hash === a.cheapHash) return { kind: 'in-sync' };
      }
      const ts = await this.#kernel.tableState(a.nftPath, a.table);
      if (ts.present && ts.hash === a.tableHash) {
        // Verified as applied: learn the structural hash for the cheap checks (kept until the layout changes).
        if (this.#applied === a) this.#unverified = false;
        if (learnFrom?.present === true && this.#applied === a) this.#applied = { ...a, cheapHash: learnFrom.hash };
        return { kind: 'in-sync' };
      }
      // The recorded hash is an unconfirmed prediction: the difference may be the prediction's. The repair below
      // is then read back (never predicted), and the read-back of our own fresh load says which it was.
      const unconfirmed = this.#unverified && this.#applied === a && a.tableHash !== undefined ? a.tableHash : undefined;
      const drift = ts.present ? 'changed' : 'missing';
      log.warn({ table: a.table, drift, detail: ts.present ? undefined : ts.error },
        ts.present ? 'table changed outside nodewall: restoring' : 'table missing (flushed or deleted): restoring');
      const t0 = performance.now();
      let result: ApplyResult;
      let prediction: HashPrediction | undefined;
      const predict = unconfirmed === undefined && this.#switch.enabled ? this.#kernel.predict : undefined;
      try {
        // The whole table replaced, made before break (`replace`: an edit the structure marker does not show, a
        // deleted rule, must not be planned as a noop).
        result = await this.#kernel.applyModel(a.model, {
          nftPath: a.nftPath, table: a.table, mode: a.mode, replace: true, ...(a.dropRecords === undefined ? {} : { dropRecords: a.dropRecords }),
          ...(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
          ...(predict === undefined ? {} : { onFullLoad: (r: PredictableLoad) => void (prediction = predict.call(this.#kernel, a, r)) }),
        });
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        log.error({ err, table: a.table, drift }, 'drift repair failed: retried on the next check');
        return { kind: 'failed', drift, error };
      }
      const durationMs = Math.round(performance.now() - t0);
      // Logged before the hash is taken: the table is in force now, and a read-back lists every set element
      // in nft 1.0.6 (seconds at 100k addresses on a loaded node), which is bookkeeping, not repair.
      log.info({
        table: a.table, mode: a.mode, kind: result.kind, reason: result.reason, rules: result.rules, sets: result.sets,
        elements: result.elements, durationMs, restored: true,
      }, 'ruleset applied');
      // As after the pass's apply: the hash of what was loaded when it could be predicted, else read back.
      const predicted = await predictedFor({ nftPath: a.nftPath, table: a.table, mode: a.mode, fromMemory: false, result }, prediction);
      const after: TableState = predicted?.hash !== undefined ? { present: true, hash: predicted.hash } : await this.#kernel.tableState(a.nftPath, a.table);
      // The same load as the predicted one (one full transaction of the same model) lists something else than
      // predicted: the prediction is wrong, not the table (a real drift was just replaced). Predicting stops
      // for the rest of the process, so it can never make the checks repair in a loop; the read-back is kept.
      // "The same load": built the same way (ApplyResult.build), since that sets the listing's order. A repair of a
      // table that is there is made before break (staged), so it is compared with a staged cold start's prediction.
      const sameBuild = result.kind === 'full' && result.build !== undefined && result.build === a.build;
      if (unconfirmed !== undefined && after.present && after.hash !== unconfirmed && sameBuild && this.#switch.disable(unconfirmed, after.hash)) {
        log.warn({ table: a.table, predicted: unconfirmed, readBack: after.hash },
          'predicted drift hash differs from the live table after a fresh load: prediction turned off for this process (every full load is read back from now on)');
      }
      this.#unverified = predicted?.hash !== undefined;
      const { cheapHash: _learntAgain, ...rest } = a;
      this.#applied = { ...rest, tableHash: after.present ? after.hash : undefined, build: result.build };
      return { kind: 'restored', result, drift, durationMs };
    });
  }
}
