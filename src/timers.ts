// Timers as an interface, so the debouncer and the coalescer run on a fake
// clock in tests (test/helpers/fake-timers.ts) and on Node's timers otherwise.

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
