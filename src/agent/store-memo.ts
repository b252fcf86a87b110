// The persisted last good store (last-good-store.ts) is rewritten only when what it holds changes. Kubernetes
// passes come several times a second and change no policy: comparing the entries with those last saved
// (key, file, text hash, in order) answers that without serialising and hashing 1k entries per pass.
// The text store is pruned to the texts the entries refer to only when it can hold others: after a save,
// or when a pass added a text (the store only grows between prunes).

import type { GoodEntry } from './last-good.js';

export class StoreMemo {
  #saved: { readonly stateDir: string; readonly configHash: string | null; readonly entries: readonly (readonly [string, string, string])[] } | undefined;
  #prunedSize: number | undefined;

  /** Does `lastGood` (with this state dir and config) differ from what was saved last? */
  changed(stateDir: string, configHash: string | null, lastGood: ReadonlyMap<string, GoodEntry>): boolean {
    const s = this.#saved;
    if (s === undefined || s.stateDir !== stateDir || s.configHash !== configHash || s.entries.length !== lastGood.size) return true;
    let i = 0;
    for (const [k, g] of lastGood) {
      const e = s.entries[i++]!;
      if (e[0] !== k || e[1] !== g.file || e[2] !== g.textHash) return true;
    }
    return false;
  }

  /** Remember what was saved. */
  saved(stateDir: string, configHash: string | null, lastGood: ReadonlyMap<string, GoodEntry>): void {
    this.#saved = { stateDir, configHash, entries: [...lastGood].map(([k, g]) => [k, g.file, g.textHash] as const) };
    this.#prunedSize = undefined;
  }

  /** Drops texts no entry refers to, unless nothing can have changed since the last prune. */
  prune(texts: Map<string, string>, lastGood: ReadonlyMap<string, GoodEntry>): void {
    if (this.#prunedSize !== undefined && texts.size === this.#prunedSize) return;
    const used = new Set<string>();
    for (const g of lastGood.values()) used.add(g.textHash);
    for (const h of [...texts.keys()]) if (!used.has(h)) texts.delete(h);
    this.#prunedSize = texts.size;
  }
}
