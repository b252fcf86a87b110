// Full garbage collections soon after a pass that built the model from scratch (the first pass, a resync,
// a relist), once the agent is idle.
//
// Building the first model of a large cluster leaves the heap far bigger than what stays live (100k pods:
// RSS ~205 MB right after the first apply, ~140 MB once collected). V8 gives that memory back by itself only
// when its memory reducer runs, ~20 s after the last full collection of an idle process (measured:
// `NODEWALL_BENCH_IDLE_S=60 npm run bench scale`). Two collections of our own do it in ~6 s:
// - 1 s after the pass (no other pass started meanwhile): the old generation's garbage (205 -> ~175 MB);
// - 5 s after that: V8 shrinks its young generation only when the recent allocation rate is low, which it
//   measures over the last ~5 s, so only a collection that late gives those ~32 MB back (-> ~140 MB).
// Each is one pause of ~50 ms at 100k pods, while idle. A pass starting meanwhile postpones the next step
// to after it. Incremental passes (pod and policy events) never schedule any: V8's own collections are
// cheaper there.
//
// The collector function is V8's `gc`: `--expose-gc` set at run time exposes it in new contexts only, so it
// is taken from a fresh one (the flag changes nothing else). Where that fails, nothing is scheduled.

import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

export type CollectGarbage = () => void;

/** V8's full collection, or undefined when this runtime does not give it out. */
export function obtainGc(): CollectGarbage | undefined {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as CollectGarbage;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    return typeof gc === 'function' ? (gc as CollectGarbage) : undefined;
  } catch {
    return undefined;
  }
}

export interface HeapCompactionOptions {
  /** The collector (tests pass a counter); default obtainGc(). null: never collect. */
  readonly gc?: CollectGarbage | null;
  /** Quiet time after the pass before the first collection, then before the second (see above). */
  readonly delaysMs?: readonly number[];
  /** Told what one collection did (debug log). */
  readonly onCollected?: (c: { readonly step: number; readonly heapBeforeMB: number; readonly heapAfterMB: number; readonly rssAfterMB: number; readonly ms: number }) => void;
}

const defaultDelaysMs = [1000, 5000];

export class HeapCompaction {
  readonly #gc: CollectGarbage | undefined;
  readonly #delaysMs: readonly number[];
  readonly #onCollected: HeapCompactionOptions['onCollected'];
  /** The collections still owed after the last full build: index into #delaysMs (length: none owed). */
  #step: number;
  #passes = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Collections made (tests, debug). */
  collections = 0;

  constructor(opts: HeapCompactionOptions = {}) {
    this.#gc = opts.gc === null ? undefined : (opts.gc ?? obtainGc());
    this.#delaysMs = opts.delaysMs ?? defaultDelaysMs;
    this.#step = this.#delaysMs.length;
    this.#onCollected = opts.onCollected;
  }

  /** A pass begins: no collection while it runs. */
  passStarting(): void {
    this.#passes++;
    this.#cancel();
  }

  /** A pass ended; `fullBuild`: its model (or inventory) was built from scratch (owes the collections anew). */
  passEnded(fullBuild: boolean): void {
    this.#passes = Math.max(0, this.#passes - 1);
    if (fullBuild) this.#step = 0;
    if (this.#passes === 0) this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel();
  }

  #arm(): void {
    const delay = this.#delaysMs[this.#step];
    if (delay === undefined || this.#gc === undefined || this.#stopped) return;
    this.#cancel();
    this.#timer = setTimeout(() => this.#collect(), delay);
    // Never what keeps a stopping process alive.
    this.#timer.unref();
  }

  #cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #collect(): void {
    this.#timer = undefined;
    if (this.#passes > 0 || this.#stopped || this.#gc === undefined) return;
    // A timer callback: anything thrown here would be uncaught and end the agent (process.memoryUsage() reads
    // /proc and throws on EMFILE). A collection that fails is skipped; the next step still comes.
    try {
      const before = process.memoryUsage().heapUsed;
      const t0 = performance.now();
      this.#gc();
      this.collections++;
      const after = process.memoryUsage();
      this.#onCollected?.({ step: this.#step + 1, heapBeforeMB: mb(before), heapAfterMB: mb(after.heapUsed), rssAfterMB: mb(after.rss), ms: Math.round(performance.now() - t0) });
    } catch {
      // nothing to undo: memory stays as V8 keeps it
    }
    this.#step++;
    this.#arm();
  }
}

const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10;
