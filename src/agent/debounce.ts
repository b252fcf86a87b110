// Coalesce bursts of file events (an editor save is 2-4 events, a ConfigMap
// swap about 6) into one reconcile, `ms` after the last event.

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface Debouncer {
  /** Note one event; `fn` runs `ms` after the last one with every reason seen since the last run. */
  trigger(reason: string): void;
  cancel(): void;
  readonly pending: boolean;
}

export function debounce(fn: (reasons: string[]) => void, ms: number, timers: Timers = realTimers): Debouncer {
  let handle: unknown;
  let reasons: string[] = [];
  return {
    trigger(reason) {
      if (!reasons.includes(reason)) reasons.push(reason);
      if (handle !== undefined) timers.clearTimeout(handle);
      handle = timers.setTimeout(() => {
        handle = undefined;
        const batch = reasons;
        reasons = [];
        fn(batch);
      }, ms);
    },
    cancel() {
      if (handle !== undefined) timers.clearTimeout(handle);
      handle = undefined;
      reasons = [];
    },
    get pending() {
      return handle !== undefined;
    },
  };
}
