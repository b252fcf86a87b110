// Coalesce bursts of file events (an editor save is 2-4 events, a ConfigMap
// swap about 6) into one reconcile, `ms` after the last event.
//
// Files keep a trailing quiet time, unlike the Kubernetes source's leading edge
// (src/inventory/sources/coalesce.ts): the first event of a save marks the start
// of a write, and a pass started then would read a file still being written (or
// a ConfigMap mid-swap), refuse it as unsettled, and hold the loop for a whole
// pass (seconds for large manifests) before the pass that reads the final
// state. File edits are operator actions, not churn; the latency targets are
// for API events.
//
// `maxWaitMs` bounds the quiet time: a watched directory that never goes quiet
// (a tool rewriting a file every 100 ms) still gets a reconcile at least that
// often, instead of being postponed forever.

import { realTimers, type Timers } from '../timers.js';

export type { Timers };

export interface Debouncer {
  /** Note one event; `fn` runs `ms` after the last one (at most `maxWaitMs` after the first) with every reason seen since the last run. */
  trigger(reason: string): void;
  cancel(): void;
  readonly pending: boolean;
}

/** The agent's bound on the file quiet time: ten quiet times. */
export function fileMaxWaitMs(debounceMs: number): number {
  return debounceMs * 10;
}

export function debounce(fn: (reasons: string[]) => void, ms: number, timers: Timers = realTimers, maxWaitMs = Number.POSITIVE_INFINITY): Debouncer {
  /** Runs `ms` after the last event; reset by every event. */
  let quiet: unknown;
  /** Runs `maxWaitMs` after the first event of the batch; never reset. */
  let deadline: unknown;
  let reasons: string[] = [];
  const clear = (): void => {
    if (quiet !== undefined) timers.clearTimeout(quiet);
    if (deadline !== undefined) timers.clearTimeout(deadline);
    quiet = undefined;
    deadline = undefined;
  };
  const run = (): void => {
    clear();
    const batch = reasons;
    reasons = [];
    fn(batch);
  };
  return {
    trigger(reason) {
      if (!reasons.includes(reason)) reasons.push(reason);
      if (quiet !== undefined) timers.clearTimeout(quiet);
      quiet = timers.setTimeout(run, ms);
      if (deadline === undefined && Number.isFinite(maxWaitMs) && maxWaitMs > ms) deadline = timers.setTimeout(run, maxWaitMs);
    },
    cancel() {
      clear();
      reasons = [];
    },
    get pending() {
      return quiet !== undefined;
    },
  };
}
