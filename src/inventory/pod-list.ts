// The inventory's pods (sorted by "namespace/name" in UTF-16 code units, as buildInventory sorts them)
// kept in chunks that successive inventories share. An agent pass for one pod event used to copy the
// whole 100k-entry array (an object in V8's large-object space per event, which drives major GCs);
// `with` copies the short array of chunks and the one chunk that changed. The plain array is made
// only when someone reads Inventory.pods (a full model build, inventoryEvents), once per list.
// A list made from an array (a full build) keeps only that array until its first update cuts it into
// chunks: never both for every pod at once (100k pods: 0.8 MB less after a full build).

import type { PodInfo } from './types.js';

/** Pods per chunk when a list is cut; a chunk grown to twice this is split. */
const defaultChunkSize = 512;

const keyOf = (ns: string, name: string): string => [ns, '/', name].join('');

function compareKey(a: PodInfo, key: string): number {
  const k = keyOf(a.namespace, a.name);
  return k < key ? -1 : k > key ? 1 : 0;
}

/** Arrays known to be sorted by key without repeats: PodList.of's input and toArray()'s output. */
const sortedArrays = new WeakSet<readonly PodInfo[]>();

/**
 * Is `pods` the array of a PodList (sorted by "namespace/name" without repeated keys)? Lets the
 * incremental model index an inventory's pods without checking their order again.
 */
export function isPodListArray(pods: readonly PodInfo[]): boolean {
  return sortedArrays.has(pods);
}

export class PodList {
  /** Undefined until needed when the list was made from its array (PodList.of). */
  #chunks: readonly (readonly PodInfo[])[] | undefined;
  readonly length: number;
  readonly #chunkSize: number;
  #array: readonly PodInfo[] | undefined;

  private constructor(chunks: readonly (readonly PodInfo[])[] | undefined, length: number, chunkSize: number, array?: readonly PodInfo[]) {
    this.#chunks = chunks;
    this.length = length;
    this.#chunkSize = chunkSize;
    this.#array = array;
    if (array !== undefined) sortedArrays.add(array);
  }

  /**
   * The list of `sorted` (sorted and without duplicate keys, as buildInventory makes it); kept as its
   * array too. `chunkSize` (tests: small, to split and empty chunks often).
   */
  static of(sorted: readonly PodInfo[], chunkSize = defaultChunkSize): PodList {
    if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`PodList: chunk size ${chunkSize}`);
    return new PodList(undefined, sorted.length, chunkSize, sorted);
  }

  /** The chunks, cut from the array the first time they are needed. */
  #chunked(): readonly (readonly PodInfo[])[] {
    if (this.#chunks === undefined) {
      const sorted = this.#array as readonly PodInfo[];
      const chunks: PodInfo[][] = [];
      for (let i = 0; i < sorted.length; i += this.#chunkSize) chunks.push(sorted.slice(i, i + this.#chunkSize));
      this.#chunks = chunks;
    }
    return this.#chunks;
  }

  /** How many chunks hold the pods (tests). */
  get chunkCount(): number {
    return this.#chunked().length;
  }

  /** Whether the chunks are made yet (tests: a full build's list holds its array alone). */
  get chunked(): boolean {
    return this.#chunks !== undefined;
  }

  /** The pods as one sorted array (made once per list; never modify it). */
  toArray(): readonly PodInfo[] {
    if (this.#array === undefined) {
      const out: PodInfo[] = new Array<PodInfo>(this.length);
      let n = 0;
      for (const c of this.#chunked()) for (const p of c) out[n++] = p;
      this.#array = out;
      sortedArrays.add(out);
    }
    return this.#array;
  }

  /**
   * A new list: each key "namespace/name" of `changes` set to its PodInfo (inserted in order, or
   * replacing the pod of that key), or removed when undefined. This list stays as it is.
   */
  with(changes: ReadonlyMap<string, PodInfo | undefined>): PodList {
    if (changes.size === 0) return this;
    const chunks = [...this.#chunked()] as PodInfo[][];
    // Chunks copied for this update: changed in place from then on.
    const owned = new Set<PodInfo[]>();
    let length = this.length;
    for (const [key, info] of changes) {
      // The last chunk whose first pod sorts at or before the key (the first chunk when none does).
      let lo = 0;
      let hi = chunks.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compareKey((chunks[mid] as PodInfo[])[0] as PodInfo, key) <= 0) lo = mid + 1;
        else hi = mid;
      }
      const at = Math.max(0, lo - 1);
      let chunk = chunks[at];
      if (chunk === undefined) {
        // An empty list.
        if (info !== undefined) {
          const fresh = [info];
          chunks.push(fresh);
          owned.add(fresh);
          length++;
        }
        continue;
      }
      let i = 0;
      let j = chunk.length;
      while (i < j) {
        const mid = (i + j) >> 1;
        if (compareKey(chunk[mid] as PodInfo, key) < 0) i = mid + 1;
        else j = mid;
      }
      const present = i < chunk.length && compareKey(chunk[i] as PodInfo, key) === 0;
      if (info === undefined && !present) continue;
      if (!owned.has(chunk)) {
        chunk = [...chunk];
        chunks[at] = chunk;
        owned.add(chunk);
      }
      if (info === undefined) {
        chunk.splice(i, 1);
        length--;
        if (chunk.length === 0) chunks.splice(at, 1);
      } else {
        chunk.splice(i, present ? 1 : 0, info);
        if (!present) length++;
        if (chunk.length >= 2 * this.#chunkSize) {
          const tail = chunk.splice(this.#chunkSize);
          chunks.splice(at + 1, 0, tail);
          owned.add(tail);
        }
      }
    }
    return new PodList(chunks, length, this.#chunkSize);
  }
}
