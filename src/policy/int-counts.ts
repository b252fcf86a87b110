// A multiset of int32 keys: how many times each key was added and not removed (issue 9, memory at
// 100k pods). The incremental model counts every pod address twice (per endpoint set, and in the
// pods pool); as a Map<number, number> each entry took ~37 bytes of hash table (100k pod addresses:
// 3.7 MB per family in the pods pool alone). Here it is an open-addressing table with linear probing
// in one Int32Array of [key, count] pairs: 8 bytes a slot, 10-20 bytes an entry, nothing allocated
// per entry, no tombstones (a removal shifts the probe chain back). A count of 0 marks an empty slot.
// test/policy/int-counts.test.ts checks it against a Map.

/** Slots of a new table (a power of two). */
const minCapacity = 8;

export class IntCounts {
  /** [key, count] per slot; count 0: empty. */
  private slots: Int32Array;
  /** Slots - 1 (the capacity is a power of two). */
  private mask: number;
  /** 32 - log2(capacity): the multiplicative hash keeps that many top bits. */
  private shift: number;
  private used = 0;

  constructor() {
    this.slots = new Int32Array(2 * minCapacity);
    this.mask = minCapacity - 1;
    this.shift = 32 - Math.log2(minCapacity);
  }

  /** Distinct keys held. */
  get size(): number {
    return this.used;
  }

  /** Slots of the table (tests: growth and shrinking). */
  get capacity(): number {
    return this.mask + 1;
  }

  /** The count of `key`; 0 when absent. */
  get(key: number): number {
    const i = this.find(key | 0);
    return i < 0 ? 0 : (this.slots[2 * i + 1] as number);
  }

  /** Adds `d` (+1 or -1) to the count of `key`: the new count, 0 when it went, -1 when a removal found nothing. */
  bump(key: number, d: 1 | -1): number {
    const k = key | 0;
    const i = this.find(k);
    if (i < 0) {
      if (d < 0) return -1;
      // Grow past a load of 0.8 (linear probing stays short up to there).
      if ((this.used + 1) * 5 > this.capacity * 4) this.resize(this.capacity * 2);
      this.insert(k, 1);
      this.used++;
      return 1;
    }
    const s = this.slots;
    const n = (s[2 * i + 1] as number) + d;
    if (n > 0) {
      if (n > 0x7fffffff) throw new RangeError('IntCounts: count over 2^31 - 1');
      s[2 * i + 1] = n;
      return n;
    }
    this.removeSlot(i);
    this.used--;
    // Shrink below a load of 1/8 (a table emptied by deletes gives its memory back).
    if (this.capacity > minCapacity && this.used * 8 < this.capacity) this.resize(this.capacity / 2);
    return 0;
  }

  clear(): void {
    this.slots = new Int32Array(2 * minCapacity);
    this.mask = minCapacity - 1;
    this.shift = 32 - Math.log2(minCapacity);
    this.used = 0;
  }

  /** Every key with its count, in no particular order (do not change the table while iterating). */
  *entries(): IterableIterator<[key: number, count: number]> {
    const s = this.slots;
    for (let i = 0; i < s.length; i += 2) {
      const n = s[i + 1] as number;
      if (n > 0) yield [s[i] as number, n];
    }
  }

  /** The home slot of k (Fibonacci hashing: consecutive addresses spread over the table). */
  private home(k: number): number {
    return Math.imul(k, 0x9e3779b1) >>> this.shift;
  }

  /** The slot holding k, or -1. */
  private find(k: number): number {
    const s = this.slots;
    const mask = this.mask;
    for (let i = this.home(k); ; i = (i + 1) & mask) {
      if (s[2 * i + 1] === 0) return -1;
      if (s[2 * i] === k) return i;
    }
  }

  /** Puts k (absent) with count n in the first free slot of its probe chain. */
  private insert(k: number, n: number): void {
    const s = this.slots;
    const mask = this.mask;
    let i = this.home(k);
    while (s[2 * i + 1] !== 0) i = (i + 1) & mask;
    s[2 * i] = k;
    s[2 * i + 1] = n;
  }

  /** Empties slot i and moves later entries of the probe run back so that every entry stays reachable. */
  private removeSlot(i: number): void {
    const s = this.slots;
    const mask = this.mask;
    let hole = i;
    for (let j = (i + 1) & mask; s[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const h = this.home(s[2 * j] as number);
      // The entry at j may move to the hole when its home is not cyclically in (hole, j].
      const reachable = hole <= j ? h > hole && h <= j : h > hole || h <= j;
      if (reachable) continue;
      s[2 * hole] = s[2 * j] as number;
      s[2 * hole + 1] = s[2 * j + 1] as number;
      hole = j;
    }
    s[2 * hole] = 0;
    s[2 * hole + 1] = 0;
  }

  private resize(capacity: number): void {
    const old = this.slots;
    this.slots = new Int32Array(2 * capacity);
    this.mask = capacity - 1;
    this.shift = 32 - Math.log2(capacity);
    for (let i = 0; i < old.length; i += 2) {
      const n = old[i + 1] as number;
      if (n > 0) this.insert(old[i] as number, n);
    }
  }
}
