// One namespace's objects of a kind, by name, in insertion order: the store of kube-list-watch.ts.
//
// It does for the store what a Map<name, object> did (get; set, which keeps an existing name's place;
// delete; size; values in insertion order) in less memory (issue 9): a Map's hash table costs ~37
// bytes per entry (100k pods: 3.7 MB), and the Kubernetes source copied each namespace's values into
// an array of its own for its snapshots (0.8 MB more). Here the objects are one array in insertion
// order, which the snapshots share (list(): copied before the next change, never changed once given
// out), and the index is an Int32Array hash table of positions keyed by each object's own name (no key
// string held): about 16-24 bytes an entry in all. A delete leaves a hole in the array; list() (a
// snapshot after the delete) and a store half holes make it dense again, moving the positions in the
// table by a map from old to new ones (no name hashed again: a pod delete costs no table rebuild). A
// delete from an array given out copies it without the value at once (positions after it one less).
//
// Hashing: a per-process random seed, so that names chosen to collide (anyone who may create pods
// chooses names) collide only by chance; a probe run found long all the same makes the table rebuild
// with a new seed (a few times at most: the answers never depend on it, only the time).
// test/inventory/sources/name-store.test.ts checks it against a Map.

import { withRemoved } from '../../exact-arrays.js';

/** Slot values: 0 = empty, -1 = deleted, else the item's position + 1. */
const empty = 0;
const deleted = -1;
/** A probe longer than this on insert rebuilds the table with another seed (at most `maxReseeds` times per size). */
const longProbe = 48;
const maxReseeds = 3;

function randomSeed(): number {
  return Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
}

/** A seeded 32-bit hash of the UTF-16 code units of `s` (FNV-1a steps, murmur3's final mix). */
export function nameHash(s: string, seed: number): number {
  let h = (seed ^ s.length) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class NameStore<T> {
  /** Insertion order; undefined where an object was deleted (until the next compaction). */
  #items: (T | undefined)[] = [];
  #holes = 0;
  #slots = new Int32Array(8);
  /** Slots not empty (live and deleted). */
  #used = 0;
  #seed = randomSeed();
  #reseeds = 0;
  /** #items was given out by list(): it is copied before the next change. */
  #shared = false;
  readonly #nameOf: (v: T) => string;

  /** `nameOf`: a value's key (the same for as long as the value is held). */
  constructor(nameOf: (v: T) => string) {
    this.#nameOf = nameOf;
  }

  get size(): number {
    return this.#items.length - this.#holes;
  }

  get(name: string): T | undefined {
    const s = this.#slots[this.#find(name)] as number;
    return s > 0 ? this.#items[s - 1] : undefined;
  }

  has(name: string): boolean {
    return (this.#slots[this.#find(name)] as number) > 0;
  }

  /** Holds `value` under its name: in the place of the value held there, else after every other. */
  set(value: T): void {
    const name = this.#nameOf(value);
    const at = this.#find(name);
    const s = this.#slots[at] as number;
    this.#own();
    if (s > 0) {
      this.#items[s - 1] = value;
      return;
    }
    this.#items.push(value);
    this.#insert(name, this.#items.length);
    if (this.#used * 2 > this.#slots.length) this.#rebuild();
  }

  /** Removes the value of `name`; returns it. */
  delete(name: string): T | undefined {
    const at = this.#find(name);
    const s = this.#slots[at] as number;
    if (s <= 0) return undefined;
    const old = this.#items[s - 1];
    this.#slots[at] = deleted;
    if (this.#shared) {
      // The array is a snapshot's (list() gave it out dense): one dense copy without the value, and the
      // positions after it one less, instead of a copy with a hole that the next list() compacts again.
      this.#items = withRemoved(this.#items, s - 1);
      this.#shared = false;
      const slots = this.#slots;
      for (let i = 0; i < slots.length; i++) {
        const v = slots[i] as number;
        if (v > s) slots[i] = v - 1;
      }
    } else {
      this.#items[s - 1] = undefined;
      this.#holes++;
      // Half holes: the array is made dense again.
      if (this.#holes > 16 && this.#holes * 2 > this.#items.length) this.#compact();
    }
    if (this.size * 5 < this.#slots.length && this.#slots.length > 8) this.#rebuild();
    return old;
  }

  /** Every value in insertion order (do not change the store while iterating). */
  *values(): IterableIterator<T> {
    const items = this.#items;
    for (let i = 0; i < items.length; i++) {
      const v = items[i];
      if (v !== undefined) yield v;
    }
  }

  /**
   * The values in insertion order as an array that stays as it is: shared with the store until its
   * next change (which copies first), so a snapshot holds no copy of its own. Never change it.
   */
  list(): readonly T[] {
    if (this.#holes > 0) this.#compact();
    this.#shared = true;
    return this.#items as T[];
  }

  /** How many times the table was rebuilt (tests: changes cost amortised O(1), never a rebuild each). */
  rebuilds = 0;

  /** The table's slot count (tests: it grows and shrinks with the store). */
  get slotCount(): number {
    return this.#slots.length;
  }

  /** The array is someone else's too (list()): from now on this store changes a copy. */
  #own(): void {
    if (this.#shared) {
      this.#items = this.#items.slice();
      this.#shared = false;
    }
  }

  /** The slot of `name`: where it is, else the empty slot that ends its probe run. */
  #find(name: string): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = nameHash(name, this.#seed) & mask;
    for (;;) {
      const s = slots[i] as number;
      if (s === empty) return i;
      if (s > 0 && this.#nameOf(this.#items[s - 1] as T) === name) return i;
      i = (i + 1) & mask;
    }
  }

  /** Puts position + 1 `p` for `name` (not in the table) in the first deleted or empty slot of its run. */
  #insert(name: string, p: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = nameHash(name, this.#seed) & mask;
    let steps = 0;
    while ((slots[i] as number) > 0) {
      i = (i + 1) & mask;
      steps++;
    }
    if (slots[i] === empty) this.#used++;
    slots[i] = p;
    if (steps > longProbe && this.#reseeds < maxReseeds) {
      this.#reseeds++;
      this.#seed = randomSeed();
      this.#rebuild();
    }
  }

  /** The array made dense (a new one: a list given out keeps its holes' neighbours as they were); the table's positions moved to match. */
  #compact(): void {
    const items = this.#items;
    const dense: T[] = new Array<T>(this.size);
    const moved = new Int32Array(items.length);
    let n = 0;
    for (let p = 0; p < items.length; p++) {
      const v = items[p];
      if (v === undefined) continue;
      dense[n] = v;
      moved[p] = ++n;
    }
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i] as number;
      if (s > 0) slots[i] = moved[s - 1] as number;
    }
    this.#items = dense;
    this.#holes = 0;
    this.#shared = false;
  }

  /**
   * A new table for the live values (at least 8 slots, at most 40% full: at least a quarter of the
   * values' count can be set or deleted before the next rebuild at half full, or at a fifth when the
   * store shrinks); the array made dense first.
   */
  #rebuild(): void {
    if (this.#holes > 0) this.#compact();
    this.rebuilds++;
    let cap = 8;
    while (cap * 2 < this.size * 5) cap *= 2;
    if (cap !== this.#slots.length) this.#reseeds = 0;
    const slots = new Int32Array(cap);
    const items = this.#items;
    const mask = cap - 1;
    for (let p = 0; p < items.length; p++) {
      let i = nameHash(this.#nameOf(items[p] as T), this.#seed) & mask;
      while (slots[i] !== empty) i = (i + 1) & mask;
      slots[i] = p + 1;
    }
    this.#slots = slots;
    this.#used = items.length;
  }
}
