// How deep each periodic drift check looks. The full check lists the table (`nft -t list table`), which on
// nft 1.0.6 fetches every set element first: about a second of kernel CPU at 100k elements, every
// driftCheckSeconds. While the nft monitor runs (every child alive), it reports any edit of the table at
// once, so the poll only has to catch what the monitor could miss: most ticks compare the cheap structural
// listing (chains and set declarations, drift.ts structureState), and every `fullEvery`-th tick, the
// monitor's events, and any tick while a monitor child is down, do the full check. A structural difference
// always falls through to the full check (drift-repair.ts), so a cheap tick never hides drift it sees.

import type { CheckDepth } from './drift-repair.js';

/** Full check on every 12th poll while the monitor runs: once a minute at the default 5 s interval. */
export const defaultFullCheckEvery = 12;

export class DriftPollDepth {
  readonly #fullEvery: number;
  #ticks = 0;

  constructor(fullEvery = defaultFullCheckEvery) {
    this.#fullEvery = Math.max(1, Math.floor(fullEvery));
  }

  /** The depth of the next poll; `monitorUp`: every nft monitor child is running. */
  next(monitorUp: boolean): CheckDepth {
    if (!monitorUp) {
      // The first tick after the monitor comes back is a cheap one only after a full one.
      this.#ticks = 0;
      return 'full';
    }
    const t = this.#ticks++;
    return t % this.#fullEvery === 0 ? 'full' : 'structure';
  }
}
