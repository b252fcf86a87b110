// A manual clock for timer-driven code (debouncers, coalescers): setTimeout and
// clearTimeout against a virtual `now`, run in due order (ties: creation order)
// by advance(). Timers created while advancing run too when they fall due.

export interface FakeTimers {
  readonly timers: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
  /** Virtual milliseconds since the clock was made. */
  now(): number;
  /** Move the clock forward, running every timer due by then. */
  advance(ms: number): void;
  /** Run timers until none is left (bounded: throws after `limit` runs). */
  runAll(limit?: number): void;
  /** Timers not yet run. */
  pending(): number;
}

export function fakeTimers(): FakeTimers {
  let now = 0;
  let nextId = 1;
  const queue = new Map<number, { at: number; fn: () => void }>();
  const due = (limit: number): [number, { at: number; fn: () => void }] | undefined => {
    let best: [number, { at: number; fn: () => void }] | undefined;
    for (const e of queue) if (e[1].at <= limit && (best === undefined || e[1].at < best[1].at || (e[1].at === best[1].at && e[0] < best[0]))) best = e;
    return best;
  };
  const runOne = (e: [number, { at: number; fn: () => void }]): void => {
    queue.delete(e[0]);
    now = Math.max(now, e[1].at);
    e[1].fn();
  };
  return {
    timers: {
      setTimeout(fn, ms) {
        const id = nextId++;
        queue.set(id, { at: now + Math.max(0, ms), fn });
        return id;
      },
      clearTimeout(h) {
        queue.delete(h as number);
      },
    },
    now: () => now,
    advance(ms) {
      const target = now + ms;
      for (let e = due(target); e !== undefined; e = due(target)) runOne(e);
      now = target;
    },
    runAll(limit = 100_000) {
      for (let i = 0; queue.size > 0; i++) {
        if (i >= limit) throw new Error(`fake timers: still ${queue.size} timer(s) after ${limit} runs`);
        const e = due(Infinity);
        if (e !== undefined) runOne(e);
      }
    },
    pending: () => queue.size,
  };
}
