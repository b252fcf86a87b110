// mergeWithLastGood's bookkeeping (which policies are invalid, kept, rejected, removed; the new last
// good map) reads every policy of every file: at 1k policies a few ms per pass, and a pod event changes
// none of it. The memo remembers the last call's inputs and answer, and answers again when:
// - every file is the same file, with the same text hash, the same policy documents and the same load
//   problems (compared by identity: the sources hand out the same decoded objects for unchanged input);
// - the held (unreadable, unsettled, empty) files are the same;
// - the previous last good map holds the same entries (key, file, text hash, document);
// - the build of this pass found the same policies and the same valid ones (by identity);
// - and the remembered call needed no substitute (its state was the input's own build).
// Then every output is what the full bookkeeping would compute from these same inputs. Not used when
// refusals are in force (their answers are not part of the key).
//
// Ownership: the answer the memo remembers is the answer it hands out, on the call that computed it
// and on every hit, without copies (a copy of the 1k-entry containers per pod event was most of the
// memo's cost and all of its garbage). So nobody may change it: its arrays are frozen and its last good
// map is a SealedMap (no set/delete/clear). The agent changes a last good map only on rare operator
// events (a rollback, an unconfirmed change, the persisted store at start) and copies it first.

import type { PolicyDocument } from '../api/types.js';
import type { Problem } from '../api/problem.js';
import type { BuiltState, GoodEntry, HeldFile, LastGood, LoadedFile, MergeResult } from './last-good.js';

interface FileKey {
  readonly file: string;
  readonly textHash: string;
  readonly policies: readonly PolicyDocument[];
  readonly problems: readonly Problem[];
}

interface Remembered {
  readonly files: readonly FileKey[];
  readonly held: string;
  readonly prev: readonly GoodEntry[];
  readonly policies: readonly PolicyDocument[];
  readonly valid: readonly PolicyDocument[];
  readonly result: Omit<MergeResult<unknown>, 'state'>;
}

/** This call's inputs, and whether they equal the remembered call's. */
export interface MergeInputs {
  readonly files: readonly LoadedFile[];
  readonly unreadable: readonly (string | HeldFile)[];
  readonly prev: LastGood;
  readonly same: boolean;
}

/**
 * A map that cannot be changed once made: the memo's answers are shared between passes. A wrapper, not a
 * Map subclass: it has no set/delete/clear to call (a Map subclass overriding them was 10-100x slower to
 * fill, and Map.prototype.set.call would still change it).
 */
export class SealedMap<K, V> implements ReadonlyMap<K, V> {
  readonly #map: Map<K, V>;

  private constructor(map: Map<K, V>) {
    this.#map = map;
  }

  static of<K, V>(entries: Iterable<readonly [K, V]>): SealedMap<K, V> {
    return new SealedMap(new Map(entries));
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    this.#map.forEach((v, k) => fn.call(thisArg, v, k, this));
  }

  entries(): MapIterator<[K, V]> {
    return this.#map.entries();
  }

  keys(): MapIterator<K> {
    return this.#map.keys();
  }

  values(): MapIterator<V> {
    return this.#map.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map[Symbol.iterator]();
  }
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function heldKey(unreadable: readonly (string | HeldFile)[]): string {
  return unreadable.length === 0 ? '' : JSON.stringify(unreadable.map((u) => (typeof u === 'string' ? [u] : [u.file, u.reason])));
}

export class MergeMemo {
  #last: Remembered | undefined;
  /** A sealed last good map found entry by entry equal to the remembered call's (unchangeable, so for good). */
  #prevMatched: LastGood | undefined;
  /** Calls answered from the memo (for tests and logs). */
  hits = 0;

  inputKey(files: readonly LoadedFile[], unreadable: readonly (string | HeldFile)[], prev: LastGood): MergeInputs {
    return { files, unreadable, prev, same: this.#sameInputs(files, unreadable, prev) };
  }

  #sameInputs(files: readonly LoadedFile[], unreadable: readonly (string | HeldFile)[], prev: LastGood): boolean {
    const m = this.#last;
    if (m === undefined || m.files.length !== files.length || m.prev.length !== prev.size) return false;
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      const k = m.files[i]!;
      if (f.file !== k.file || !sameItems(f.load.policies, k.policies) || !sameItems(f.load.problems, k.problems)) return false;
      // The text hash names a policy's last good text; a file without policies (the cluster objects) is never one.
      if (k.policies.length > 0 && f.textHash !== k.textHash) return false;
    }
    // A sealed map that matched once matches again (the agent hands back the last answer's map, pass after pass).
    if (prev !== this.#prevMatched) {
      let i = 0;
      for (const g of prev.values()) {
        const r = m.prev[i++]!;
        if (g !== r && (g.key !== r.key || g.file !== r.file || g.textHash !== r.textHash || g.doc !== r.doc)) return false;
      }
      if (prev instanceof SealedMap) this.#prevMatched = prev;
    }
    return heldKey(unreadable) === m.held;
  }

  /** The remembered answer itself (frozen, shared), when the inputs and this pass's build match it. */
  result(key: MergeInputs, first: BuiltState): Omit<MergeResult<unknown>, 'state'> | undefined {
    const m = this.#last;
    if (!key.same || m === undefined || !sameItems(first.policies, m.policies) || !sameItems(first.valid, m.valid)) return undefined;
    this.hits++;
    return m.result;
  }

  /** Remembers this call; returns its answer sealed (what the caller hands out, now and on later hits). */
  remember<S>(key: MergeInputs, first: BuiltState, result: MergeResult<S>): MergeResult<S> {
    const { state, ...rest } = result;
    // Frozen in place: these containers were made by this very call and nobody else holds them yet.
    const freezeAll = <T extends object>(xs: readonly T[]): readonly T[] => {
      for (const x of xs) Object.freeze(x);
      return Object.freeze(xs);
    };
    const sealed: Omit<MergeResult<unknown>, 'state'> = Object.freeze({
      kept: freezeAll(rest.kept),
      rejected: freezeAll(rest.rejected),
      lastGood: SealedMap.of(rest.lastGood),
      replacedProblems: Object.freeze(rest.replacedProblems),
      removed: freezeAll(rest.removed),
      ...(rest.withheld === undefined ? {} : { withheld: freezeAll(rest.withheld) }),
    });
    this.#last = {
      files: key.files.map((f) => ({ file: f.file, textHash: f.textHash, policies: [...f.load.policies], problems: [...f.load.problems] })),
      held: heldKey(key.unreadable),
      prev: [...key.prev.values()],
      policies: [...first.policies],
      valid: [...first.valid],
      result: sealed,
    };
    this.#prevMatched = undefined;
    return { ...sealed, state };
  }

  forget(): void {
    this.#last = undefined;
    this.#prevMatched = undefined;
  }
}
