// Leading-edge coalescing of change notifications: an isolated change is handed
// on at once, a burst costs at most one hand-off per window.
//
// - notify() while idle: the hand-off runs on the next timer turn (delay 0), not
//   inside notify(). Callers notify from inside a batch of synchronous work (the
//   client library applies a whole list, or a chunk of watch events, in one
//   loop); handing off in the middle of it would expose a half-applied state.
// - Each hand-off opens a window of `windowMs`. Notifications during the window
//   are handed off together when it ends, which opens the next window; a window
//   that ends without notifications returns to idle.
// - A hand-off that returns `false` handed nothing on (the Kubernetes source
//   before its first complete list): no window opens, so the next change still
//   goes out at once.
//
// Guarantees (test/inventory/sources/coalesce.test.ts): no notification is ever
// lost, the last one is always handed off, every notification is handed off
// within `windowMs` of its arrival (plus the time hand-offs themselves take),
// and two hand-offs are at least `windowMs` apart.

import { realTimers, type Timers } from '../../timers.js';

export type { Timers as CoalesceTimers } from '../../timers.js';

export interface Coalescer {
  /** Note one change; it is handed off now (idle) or when the current window ends. */
  notify(): void;
  /** Drop a pending hand-off and close the window (stop). */
  cancel(): void;
  /** A notification has not been handed off yet. */
  readonly pending: boolean;
}

export function coalesce(handOff: () => boolean | void, windowMs: number, timers: Timers = realTimers): Coalescer {
  if (!(windowMs >= 0) || !Number.isFinite(windowMs)) throw new RangeError(`coalesce window must be a finite number >= 0, got ${windowMs}`);
  /** The deferred leading hand-off or the end of the current window. */
  let handle: unknown;
  let dirty = false;
  const fire = (): void => {
    handle = undefined;
    if (!dirty) return;
    dirty = false;
    // The window opens before the hand-off: a notify() from inside handOff (or a
    // throwing handOff) still finds a consistent state and is handed off later.
    const window = timers.setTimeout(fire, windowMs);
    handle = window;
    if (handOff() === false && handle === window) {
      timers.clearTimeout(window);
      handle = dirty ? timers.setTimeout(fire, 0) : undefined;
    }
  };
  return {
    notify() {
      dirty = true;
      if (handle === undefined) handle = timers.setTimeout(fire, 0);
    },
    cancel() {
      if (handle !== undefined) timers.clearTimeout(handle);
      handle = undefined;
      dirty = false;
    },
    get pending() {
      return dirty;
    },
  };
}
