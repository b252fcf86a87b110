// The drift check's table hash after an apply, without reading the table back
// when the apply cannot have changed it.
//
// The hash is of `nft -t list table` (drift.ts): set elements are left out. An
// element-only delta (flush of the empty structure marker, then element adds
// and deletes) and a noop leave that listing as it was, so the hash recorded
// after the previous apply still describes the table. Reusing it is also the
// stricter choice: had someone changed a chain since, a read-back would adopt
// their change as the expected table, where the kept hash still flags it as
// drift on the next check. Anything else (a full replace, a chain delta, no
// earlier hash, the kernel read instead of memory, another table, path or
// mode) reads the table back, as before. Called inside the NftWriteLock.
//
// A cold start (ApplyResult.predictable): the hash predicted from its structure script in a scratch namespace while it
// loaded (predicted-table-hash.ts), when one could be made for exactly that structure; else read back.

import type { RunMode } from '../inventory/types.js';
import type { ApplyResult, PredictableLoad } from '../nft/apply.js';
import type { AppliedRuleset } from './drift-repair.js';
import { tableHashNow } from './drift.js';
import { predictTableHash, type PredictionOutcome } from './predicted-table-hash.js';

export interface AfterApply {
  readonly nftPath: string;
  readonly table: string;
  readonly mode: RunMode;
  /** The apply trusted the previous state in memory (did not read the kernel). */
  readonly fromMemory: boolean;
  readonly result: ApplyResult;
}

/** The earlier recorded hash when it still holds, else undefined (read the table back). */
export function keptTableHash(before: AppliedRuleset | undefined, a: AfterApply): string | undefined {
  if (before?.tableHash === undefined || !a.fromMemory) return undefined;
  if (before.nftPath !== a.nftPath || before.table !== a.table || before.mode !== a.mode) return undefined;
  const unchangedLayout = a.result.kind === 'noop' || (a.result.kind === 'delta' && a.result.chains.length === 0 && a.result.structureHash === structureOf(before));
  return unchangedLayout ? before.tableHash : undefined;
}

function structureOf(r: AppliedRuleset): string | undefined {
  return r.structureHash;
}

/** A prediction started for the structure `structureHash` (ApplyOptions.onFullLoad). */
export interface HashPrediction {
  readonly structureHash: string;
  readonly outcome: Promise<PredictionOutcome>;
}

/** How the recorded hash was obtained (debug log, tests). */
export type HashSource = 'kept' | 'predicted' | 'read-back';

/** The predicted hash when it describes this apply's result: a cold start of the predicted structure (ApplyResult.predictable). */
export async function predictedFor(a: AfterApply, prediction: HashPrediction | undefined): Promise<PredictionOutcome | undefined> {
  if (prediction === undefined || a.result.kind !== 'full' || !a.result.predictable || a.result.structureHash !== prediction.structureHash) return undefined;
  return prediction.outcome;
}

/** The hash to record after an apply: kept, predicted, or read back (undefined: the table is absent). */
export async function tableHashAfterApply(before: AppliedRuleset | undefined, a: AfterApply, prediction?: HashPrediction): Promise<{ hash: string | undefined; source: HashSource; skipped?: string }> {
  const kept = keptTableHash(before, a);
  if (kept !== undefined) return { hash: kept, source: 'kept' };
  const predicted = await predictedFor(a, prediction);
  if (predicted?.hash !== undefined) return { hash: predicted.hash, source: 'predicted' };
  return { hash: await tableHashNow(a.nftPath, a.table), source: 'read-back', ...(predicted === undefined ? {} : { skipped: predicted.skipped }) };
}

/**
 * Longest wait for a prediction, as for a read-back (drift.ts tableState): the apply's lock is held meanwhile.
 * It normally ends before the load does.
 */
const predictionTimeoutMs = 10_000;

/**
 * Whether predicting is allowed. A predicted hash that a read-back right after a repair contradicts
 * (drift-repair.ts) turns it off for the rest of the process (sticky): every full load is read back from then
 * on, so a prediction that does not match the live listing can never make the drift check repair in a loop.
 */
export class PredictionSwitch {
  #off: { readonly predicted: string; readonly readBack: string } | undefined;

  get enabled(): boolean {
    return this.#off === undefined;
  }

  /** Why it is off (status, logs); undefined while on. */
  get off(): { readonly predicted: string; readonly readBack: string } | undefined {
    return this.#off;
  }

  /** Turns predicting off; true only the first time (the caller logs once). */
  disable(predicted: string, readBack: string): boolean {
    if (this.#off !== undefined) return false;
    this.#off = { predicted, readBack };
    return true;
  }
}

/** The process's switch: the agent's pass and its drift repair share it. */
export const predictionSwitch = new PredictionSwitch();

/** Starts the prediction of a full load's hash (predicted-table-hash.ts); its promise never rejects. */
export function startPrediction(o: { readonly nftPath: string; readonly table: string; readonly timeoutMs?: number | undefined }, rendered: PredictableLoad, sw: PredictionSwitch = predictionSwitch): HashPrediction {
  // Turned off: nothing is spawned; the caller reads the table back.
  if (!sw.enabled) return { structureHash: rendered.structureHash, outcome: Promise.resolve({ skipped: 'prediction turned off for this process: a predicted hash differed from the live table' }) };
  return {
    structureHash: rendered.structureHash,
    outcome: predictTableHash({ nftPath: o.nftPath, table: o.table, structureScript: rendered.structureScript, timeoutMs: Math.min(o.timeoutMs ?? predictionTimeoutMs, predictionTimeoutMs) }),
  };
}
