// The pods of one identity in the incremental model (issue 9, memory at 100k pods): a plain array
// while the identity is small (8 bytes a pod; a Set took ~20: 2 MB over 400 identities at 100k pods),
// a Set once it holds more than `arrayLimit`, so that removing one of an identity's tens of thousands
// of pods stays O(1). Order is not kept (the model merges addresses, so it never depends on it).
// test/policy/pod-bag.test.ts checks it against a Set.

/** Above this many members the bag is a Set; back to an array below half of it. */
const defaultArrayLimit = 1024;

export class PodBag<T> {
  private items: T[] | Set<T> = [];
  private readonly arrayLimit: number;

  constructor(arrayLimit = defaultArrayLimit) {
    if (!Number.isInteger(arrayLimit) || arrayLimit < 1) throw new RangeError(`PodBag: array limit ${arrayLimit}`);
    this.arrayLimit = arrayLimit;
  }

  get size(): number {
    return Array.isArray(this.items) ? this.items.length : this.items.size;
  }

  /** Held as a Set (tests). */
  get isSet(): boolean {
    return !Array.isArray(this.items);
  }

  has(v: T): boolean {
    return Array.isArray(this.items) ? this.items.includes(v) : this.items.has(v);
  }

  /**
   * Adds v, which must not be in already (the model adds a pod once: a pod changed in place goes
   * through replace()); not checked, as that would make filling an identity quadratic.
   */
  add(v: T): void {
    const items = this.items;
    if (!Array.isArray(items)) {
      items.add(v);
      return;
    }
    items.push(v);
    if (items.length > this.arrayLimit) this.items = new Set(items);
  }

  /** Removes v; false when it was not in. */
  delete(v: T): boolean {
    const items = this.items;
    if (!Array.isArray(items)) {
      if (!items.delete(v)) return false;
      if (items.size < this.arrayLimit / 2) this.items = [...items];
      return true;
    }
    const i = items.indexOf(v);
    if (i < 0) return false;
    const last = items.pop() as T;
    if (i < items.length) items[i] = last;
    return true;
  }

  /** Replaces `old` by `v` (which must not be in already, but when it is old); false (nothing changes) when old is not in. */
  replace(old: T, v: T): boolean {
    const items = this.items;
    if (!Array.isArray(items)) {
      if (!items.delete(old)) return false;
      items.add(v);
      return true;
    }
    const i = items.indexOf(old);
    if (i < 0) return false;
    items[i] = v;
    return true;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.items[Symbol.iterator]();
  }
}
