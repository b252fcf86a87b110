// Values keyed by (namespace, name), held in sorted chunks (issue 9, memory at 100k pods). The
// inventory's object index and the incremental model's pod index were nested Maps namespace -> name
// -> value: ~46 bytes of hash table per pod each (100k pods: 4.6 MB per index). Here the key is read
// from the value itself (its own namespace and name strings), so an entry is one pointer in a chunk
// of up to 2 x 512 values, sorted by "namespace/name" in UTF-16 code units: about 8-12 bytes a pod.
// A lookup is two binary searches (chunks, then within one), a change splices one chunk.
// test/inventory/name-index.test.ts checks it against a Map keyed by "namespace/name".

/** Values per chunk when loaded; a chunk grown to twice this is split. */
const defaultChunkSize = 512;

const slash = 0x2f;

/**
 * Compares `${a}/${b}` with `${c}/${d}` by UTF-16 code units (as `<` compares strings) without
 * joining them, but when a namespace with a '/' in it makes that necessary.
 */
export function compareJoined(a: string, b: string, c: string, d: string): number {
  if (a === c) return b < d ? -1 : b > d ? 1 : 0;
  const n = a.length < c.length ? a.length : c.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = c.charCodeAt(i);
    if (x !== y) return x < y ? -1 : 1;
  }
  // The namespaces differ and one starts the other: the shorter one goes on with its '/'.
  if (a.length < c.length) {
    const y = c.charCodeAt(n);
    if (y !== slash) return slash < y ? -1 : 1;
  } else {
    const x = a.charCodeAt(n);
    if (x !== slash) return x < slash ? -1 : 1;
  }
  const l = [a, '/', b].join('');
  const r = [c, '/', d].join('');
  return l < r ? -1 : l > r ? 1 : 0;
}

/**
 * `values` sorted by `${namespace}/${name}` (stable: equal keys keep their order). Already sorted (a
 * watch cache's list, the inventory's pods) costs one pass. Else, when no namespace has a '/' in it,
 * the namespaces order the joined keys whatever the names (the first difference, or the shorter one's
 * '/', comes before any name): values are grouped by namespace and only names are compared within a
 * group, which costs less than comparing joined keys throughout.
 */
export function sortByKey<T>(values: readonly T[], namespaceOf: (v: T) => string, nameOf: (v: T) => string): readonly T[] {
  let sorted = true;
  for (let i = 1; i < values.length && sorted; i++) {
    const a = values[i - 1] as T;
    const b = values[i] as T;
    sorted = compareJoined(namespaceOf(a), nameOf(a), namespaceOf(b), nameOf(b)) <= 0;
  }
  if (sorted) return values;
  const groups = new Map<string, T[]>();
  for (const v of values) {
    const ns = namespaceOf(v);
    if (ns.includes('/')) return [...values].sort((x, y) => compareJoined(namespaceOf(x), nameOf(x), namespaceOf(y), nameOf(y)));
    let g = groups.get(ns);
    if (g === undefined) {
      g = [];
      groups.set(ns, g);
    }
    g.push(v);
  }
  const out: T[] = [];
  for (const ns of [...groups.keys()].sort((a, b) => compareJoined(a, '', b, ''))) {
    const g = groups.get(ns) as T[];
    let inOrder = true;
    for (let i = 1; i < g.length && inOrder; i++) inOrder = nameOf(g[i - 1] as T) <= nameOf(g[i] as T);
    if (!inOrder) g.sort((x, y) => (nameOf(x) < nameOf(y) ? -1 : nameOf(x) > nameOf(y) ? 1 : 0));
    for (const v of g) out.push(v);
  }
  return out;
}

export class NameIndex<T> {
  #chunks: T[][] = [];
  #size = 0;
  readonly #namespaceOf: (v: T) => string;
  readonly #nameOf: (v: T) => string;
  readonly #chunkSize: number;

  /** `namespaceOf`/`nameOf`: a value's key (the same for as long as the value is held). */
  constructor(namespaceOf: (v: T) => string, nameOf: (v: T) => string, chunkSize = defaultChunkSize) {
    if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`NameIndex: chunk size ${chunkSize}`);
    this.#namespaceOf = namespaceOf;
    this.#nameOf = nameOf;
    this.#chunkSize = chunkSize;
  }

  get size(): number {
    return this.#size;
  }

  /** How many chunks hold the values (tests). */
  get chunkCount(): number {
    return this.#chunks.length;
  }

  /**
   * Replaces the content by `values` in any order (already sorted, as the inventory's pods are, costs
   * one pass); of values with equal keys the last one stays, as successive set() calls would leave it.
   * `strictlySorted`: the caller knows the keys ascend strictly (a PodList's array, a list it sorted
   * itself), and no pass checks it.
   */
  load(values: readonly T[], strictlySorted = false): void {
    let sorted = true;
    if (!strictlySorted) for (let i = 1; i < values.length && sorted; i++) sorted = this.#compare(values[i - 1] as T, values[i] as T) < 0;
    // Stable: equal keys keep their order, so the last of a run is the last given.
    const list = sorted ? values : sortByKey(values, this.#namespaceOf, this.#nameOf);
    const chunks: T[][] = [];
    let chunk: T[] = [];
    let size = 0;
    for (let i = 0; i < list.length; i++) {
      const v = list[i] as T;
      const next = list[i + 1];
      if (!sorted && next !== undefined && this.#compare(v, next) === 0) continue;
      if (chunk.length === this.#chunkSize) {
        chunks.push(chunk);
        chunk = [];
      }
      chunk.push(v);
      size++;
    }
    if (chunk.length > 0) chunks.push(chunk);
    this.#chunks = chunks;
    this.#size = size;
  }

  get(namespace: string, name: string): T | undefined {
    const at = this.#locate(namespace, name);
    return at.found ? (this.#chunks[at.chunk] as T[])[at.i] : undefined;
  }

  /** Holds `value` under its key, replacing the value held there; returns that one. */
  set(value: T): T | undefined {
    const at = this.#locate(this.#namespaceOf(value), this.#nameOf(value));
    const chunk = this.#chunks[at.chunk];
    if (chunk === undefined) {
      this.#chunks.push([value]);
      this.#size++;
      return undefined;
    }
    if (at.found) {
      const old = chunk[at.i];
      chunk[at.i] = value;
      return old;
    }
    chunk.splice(at.i, 0, value);
    this.#size++;
    if (chunk.length >= 2 * this.#chunkSize) this.#chunks.splice(at.chunk + 1, 0, chunk.splice(this.#chunkSize));
    return undefined;
  }

  /** Removes the value of (namespace, name); returns it. */
  delete(namespace: string, name: string): T | undefined {
    const at = this.#locate(namespace, name);
    if (!at.found) return undefined;
    const chunk = this.#chunks[at.chunk] as T[];
    const [old] = chunk.splice(at.i, 1);
    this.#size--;
    if (chunk.length === 0) this.#chunks.splice(at.chunk, 1);
    return old;
  }

  /** Every value, sorted by key (do not change the index while iterating). */
  *values(): IterableIterator<T> {
    for (const c of this.#chunks) yield* c;
  }

  #compare(x: T, y: T): number {
    return compareJoined(this.#namespaceOf(x), this.#nameOf(x), this.#namespaceOf(y), this.#nameOf(y));
  }

  #compareKey(v: T, namespace: string, name: string): number {
    return compareJoined(this.#namespaceOf(v), this.#nameOf(v), namespace, name);
  }

  /** The chunk where the key is or would go, the position in it, and whether it is there. */
  #locate(namespace: string, name: string): { chunk: number; i: number; found: boolean } {
    const chunks = this.#chunks;
    // The last chunk whose first value sorts at or before the key (the first chunk when none does).
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#compareKey((chunks[mid] as T[])[0] as T, namespace, name) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const at = lo > 0 ? lo - 1 : 0;
    const chunk = chunks[at];
    if (chunk === undefined) return { chunk: 0, i: 0, found: false };
    let i = 0;
    let j = chunk.length;
    while (i < j) {
      const mid = (i + j) >> 1;
      if (this.#compareKey(chunk[mid] as T, namespace, name) < 0) i = mid + 1;
      else j = mid;
    }
    return { chunk: at, i, found: i < chunk.length && this.#compareKey(chunk[i] as T, namespace, name) === 0 };
  }
}
