// An address set kept in the model's canonical form while its inputs change one
// at a time: the output is always mergePrefixes(inputs) minus holes (the largest
// aligned blocks fully covered), as formatPrefixesByFamily would print it, but an
// input added or removed costs O(address width + log n) instead of a re-merge of
// every input. Used by the incremental model (incremental-model.ts).
//
// Inputs are refcounted (two pods may briefly share an address; a pod address may
// also lie in a pod CIDR). Holes are single addresses that never appear in the
// output (node addresses in cluster_non_node). Keys are bigint: (bits << 8) | len.
//
// Why the local updates are exact: output blocks are the maximal aligned blocks
// inside (inputs minus holes). A change at prefix P only changes coverage inside
// P, so only blocks that contain P or lie inside P change, and the blocks merged
// up from P along its ancestors (each one's sibling must already be an output).

import { BlockList } from './block-list.js';
import { formatPrefix, mergePrefixes, subtractPrefixes, type Prefix } from './cidr.js';
import type { Family } from './model.js';
import { PrefixCounts } from './prefix-counts.js';

export class CoverSetError extends Error {
  override readonly name = 'CoverSetError';
}

const keyOf = (bits: bigint, len: number): bigint => (bits << 8n) | BigInt(len);

/** Receives every output block a half adds or removes (removals before additions within one change). */
export interface CoverListener {
  added(family: Family, bits: bigint, len: number): void;
  removed(family: Family, bits: bigint, len: number): void;
}

export interface ElementChanges {
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

/** Block sizes and network masks by prefix length for a family of `width` bits. */
function lengthTables(width: number): { blockSize: readonly bigint[]; netMask: readonly bigint[] } {
  const all = (1n << BigInt(width)) - 1n;
  const blockSize: bigint[] = [];
  const netMask: bigint[] = [];
  for (let l = 0; l <= width; l++) {
    const size = 1n << BigInt(width - l);
    blockSize.push(size);
    netMask.push(all ^ (size - 1n));
  }
  return { blockSize, netMask };
}

// A CoverHalf made its own (258 bigints an IPv6 half, ~10 KB); every endpoint set has two halves.
const v4Tables = lengthTables(32);
const v6Tables = lengthTables(128);

/** One family of a CoverSet. */
export class CoverHalf {
  readonly family: Family;
  private readonly width: number;
  /** blockSize[l]: addresses in a block of length l (one table per family, shared by every half). */
  private readonly blockSize: readonly bigint[];
  /** netMask[l]: network mask of length l (shared likewise). */
  private readonly netMask: readonly bigint[];
  /** Inputs with their counts, keyed compactly (an IPv4 address is an int32, not a bigint). */
  private readonly inputs: PrefixCounts;
  /** Distinct inputs per prefix length: ancestor lookups skip the (many) empty lengths. */
  private readonly perLength: number[] = [];
  private readonly holeCounts = new Map<bigint, number>();
  private holes: bigint[] = [];
  /** Output blocks, sorted by start (they are disjoint), with their canonical text (block-list.ts). */
  private readonly out: BlockList;
  private blockList: readonly Prefix[] | null = null;
  private readonly changes = new Map<bigint, { d: 1 | -1; text: string }>();
  /** True when inputs never nest (they are another set's output blocks): no descendant scan on removal. */
  disjointInputs = false;
  readonly listeners: CoverListener[] = [];

  constructor(family: Family) {
    this.family = family;
    this.inputs = new PrefixCounts(family);
    this.out = new BlockList(family);
    this.width = family === 'ipv4' ? 32 : 128;
    const tables = family === 'ipv4' ? v4Tables : v6Tables;
    this.blockSize = tables.blockSize;
    this.netMask = tables.netMask;
    for (let l = 0; l <= this.width; l++) this.perLength.push(0);
  }

  /** Replaces everything (no changes recorded): the output of a full merge. */
  load(inputs: readonly Prefix[], holes: readonly bigint[]): void {
    this.inputs.clear();
    this.holeCounts.clear();
    this.perLength.fill(0);
    for (const p of inputs) {
      if (this.inputs.add(p.bits, p.len) === 1) this.perLength[p.len] = (this.perLength[p.len] ?? 0) + 1;
    }
    for (const h of holes) this.holeCounts.set(h, (this.holeCounts.get(h) ?? 0) + 1);
    this.holes = [...this.holeCounts.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const merged = mergePrefixes(inputs);
    const blocks = this.holes.length === 0 ? merged : subtractPrefixes(merged, this.holes.map((h) => this.host(h)));
    this.out.load(blocks, blocks.map(formatPrefix));
    this.blockList = null;
    this.changes.clear();
  }

  /** The canonical elements, sorted; a new array after every change, so earlier results never change. */
  elements(): readonly string[] {
    return this.out.texts();
  }

  get size(): number {
    return this.out.length;
  }

  /** The output blocks; the same array until the next change. */
  blocks(): readonly Prefix[] {
    if (this.blockList === null) {
      const list: Prefix[] = [];
      for (let i = 0; i < this.out.length; i++) list.push({ family: this.family, bits: this.out.start(i), len: this.out.len(i) });
      this.blockList = list;
    }
    return this.blockList;
  }

  /** Does the output share an address with prefix (bits, len)? O(log n), allocates nothing but bigints. */
  overlaps(bits: bigint, len: number): boolean {
    const end = bits + (this.blockSize[len] ?? 0n) - 1n;
    // The last block starting at or before P's end is the only one that can reach into P (blocks are disjoint).
    const i = this.out.lowerBound(end + 1n) - 1;
    if (i < 0) return false;
    return this.out.start(i) + (this.blockSize[this.out.len(i)] ?? 0n) - 1n >= bits;
  }

  get inputCount(): number {
    return this.inputs.size;
  }

  /** Output elements added and removed since the last call (net). */
  takeChanges(): ElementChanges {
    const add: string[] = [];
    const remove: string[] = [];
    for (const c of this.changes.values()) (c.d === 1 ? add : remove).push(c.text);
    this.changes.clear();
    return { add, remove };
  }

  get changed(): boolean {
    return this.changes.size > 0;
  }

  addInput(bits: bigint, len: number): void {
    if (this.inputs.add(bits, len) > 1) return;
    this.perLength[len] = (this.perLength[len] ?? 0) + 1;
    this.cover(bits, len);
  }

  removeInput(bits: bigint, len: number): void {
    const left = this.inputs.remove(bits, len);
    if (left < 0) throw new CoverSetError(`${formatPrefix({ family: this.family, bits, len })} removed but never added`);
    if (left > 0) return;
    this.perLength[len] = (this.perLength[len] ?? 1) - 1;
    this.uncover(bits, len);
  }

  addHole(h: bigint): void {
    const c = this.holeCounts.get(h) ?? 0;
    this.holeCounts.set(h, c + 1);
    if (c > 0) return;
    this.holes.splice(this.lowerBound(this.holes, h), 0, h);
    const i = this.containing(h);
    if (i < 0) return;
    const bLen = this.out.len(i);
    this.removeAt(i);
    this.addSiblings(h, this.width, bLen);
  }

  removeHole(h: bigint): void {
    const c = this.holeCounts.get(h);
    if (c === undefined) throw new CoverSetError(`hole ${formatPrefix(this.host(h))} removed but never added`);
    if (c > 1) {
      this.holeCounts.set(h, c - 1);
      return;
    }
    this.holeCounts.delete(h);
    this.holes.splice(this.lowerBound(this.holes, h), 1);
    if (this.coveredByInput(h, this.width + 1)) this.mergeUp(h, this.width);
  }

  /** Is some input of length < `below` an ancestor of address/prefix start `bits`? */
  private coveredByInput(bits: bigint, below: number): boolean {
    for (let l = below - 1; l >= 0; l--) {
      if ((this.perLength[l] ?? 0) > 0 && this.inputs.has(bits & (this.netMask[l] ?? 0n), l)) return true;
    }
    return false;
  }

  private host(bits: bigint): Prefix {
    return { family: this.family, bits, len: this.width };
  }

  /** First index whose value is >= x. */
  private lowerBound(xs: readonly bigint[], x: bigint): number {
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((xs[mid] ?? 0n) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the output block containing address `a`, or -1. */
  private containing(a: bigint): number {
    const i = this.out.lowerBound(a + 1n) - 1;
    if (i < 0) return -1;
    return a - this.out.start(i) < (this.blockSize[this.out.len(i)] ?? 0n) ? i : -1;
  }

  private hasBlock(bits: bigint, len: number): number {
    const i = this.out.lowerBound(bits);
    return i < this.out.length && this.out.len(i) === len && this.out.start(i) === bits ? i : -1;
  }

  private addBlock(bits: bigint, len: number): void {
    const i = this.out.lowerBound(bits);
    const text = formatPrefix({ family: this.family, bits, len });
    this.out.insert(i, bits, len, text);
    this.blockList = null;
    this.record(keyOf(bits, len), 1, text);
    for (const l of this.listeners) l.added(this.family, bits, len);
  }

  private removeAt(i: number): void {
    const bits = this.out.start(i);
    const len = this.out.len(i);
    const text = this.out.text(i);
    this.out.removeAt(i);
    this.blockList = null;
    this.record(keyOf(bits, len), -1, text);
    for (const l of this.listeners) l.removed(this.family, bits, len);
  }

  private record(k: bigint, d: 1 | -1, text: string): void {
    const prev = this.changes.get(k);
    if (prev !== undefined && prev.d !== d) this.changes.delete(k);
    else this.changes.set(k, { d, text });
  }

  /** Adds block (bits, len), first absorbing every sibling already in the output. */
  private mergeUp(bits: bigint, len: number): void {
    let b = bits;
    let l = len;
    while (l > 0) {
      const sib = b ^ (this.blockSize[l] ?? 0n);
      const j = this.hasBlock(sib, l);
      if (j < 0) break;
      this.removeAt(j);
      l--;
      b &= this.netMask[l] ?? 0n;
    }
    this.addBlock(b, l);
  }

  /** Adds the sibling of every block on the path from (bits, len) up to, not including, length `top`. */
  private addSiblings(bits: bigint, len: number, top: number): void {
    for (let l = len; l > top; l--) this.addBlock((bits & (this.netMask[l] ?? 0n)) ^ (this.blockSize[l] ?? 0n), l);
  }

  private removeInside(bits: bigint, len: number): void {
    const end = bits + (this.blockSize[len] ?? 0n);
    const i = this.out.lowerBound(bits);
    while (i < this.out.length && this.out.start(i) < end) this.removeAt(i);
  }

  private holesInside(bits: bigint, len: number): bigint[] {
    const end = bits + (this.blockSize[len] ?? 0n);
    const out: bigint[] = [];
    for (let i = this.lowerBound(this.holes, bits); i < this.holes.length && (this.holes[i] ?? 0n) < end; i++) out.push(this.holes[i] ?? 0n);
    return out;
  }

  /** Adds blocks for `covered` (prefixes inside P) minus the holes inside P; maximal within P. */
  private addCovered(bits: bigint, len: number, covered: readonly Prefix[]): void {
    const holes = this.holesInside(bits, len);
    const blocks = holes.length === 0 ? mergePrefixes(covered) : subtractPrefixes(covered, holes.map((h) => this.host(h)));
    const only = blocks[0];
    if (blocks.length === 1 && only !== undefined && only.len === len) {
      this.mergeUp(bits, len);
      return;
    }
    for (const b of blocks) this.addBlock(b.bits, b.len);
  }

  /** P = (bits, len) became an input: make it covered. */
  private cover(bits: bigint, len: number): void {
    const i = this.containing(bits);
    if (i >= 0 && this.out.len(i) <= len) return; // already inside an output block
    if (len === this.width) {
      if (!this.holeCounts.has(bits)) this.mergeUp(bits, len);
      return;
    }
    this.removeInside(bits, len);
    this.addCovered(bits, len, [{ family: this.family, bits, len }]);
  }

  /** P = (bits, len) is no longer an input: drop what nothing else covers. */
  private uncover(bits: bigint, len: number): void {
    // An input containing P keeps all of P covered: nothing changes.
    if (this.coveredByInput(bits, len)) return;
    const i = this.containing(bits);
    const bLen = i < 0 ? -1 : this.out.len(i);
    if (i >= 0 && bLen < len) {
      // An output block B strictly contains P: B minus P stays.
      this.removeAt(i);
      this.addSiblings(bits, len, bLen);
    } else if (i >= 0 && bLen === len) {
      this.removeAt(i);
    } else if (len === this.width) {
      return; // a hole: it was not in the output
    } else {
      this.removeInside(bits, len);
    }
    if (len < this.width) this.addCovered(bits, len, this.descendants(bits, len));
  }

  private descendants(bits: bigint, len: number): Prefix[] {
    if (this.disjointInputs) return [];
    const out: Prefix[] = [];
    // Few prefixes fit inside P at the lengths that hold inputs (P a small block: the usual case, a
    // block merged up from pod addresses leaving a pool that feeds another): look each one up. A scan
    // of every input made a tuple and a bigint per input (100k pod addresses: ~5 MB of garbage per
    // merged block, most of what a pod add cost more than an IP change; issue 9).
    let probes = 0;
    for (let l = len + 1; l <= this.width && probes <= descendantProbeLimit; l++) if ((this.perLength[l] ?? 0) > 0) probes += 2 ** (l - len);
    if (probes <= descendantProbeLimit) {
      for (let l = len + 1; l <= this.width; l++) {
        if ((this.perLength[l] ?? 0) === 0) continue;
        const step = this.blockSize[l] ?? 0n;
        const n = 1 << (l - len);
        let b = bits;
        for (let i = 0; i < n; i++, b += step) if (this.inputs.has(b, l)) out.push({ family: this.family, bits: b, len: l });
      }
      return out;
    }
    const mask = this.netMask[len] ?? 0n;
    for (const [b, l] of this.inputs.entries()) {
      if (l <= len) continue;
      if ((b & mask) === bits) out.push({ family: this.family, bits: b, len: l });
    }
    return out;
  }
}

/** Up to this many candidate prefixes inside a removed input are looked up one by one, not found by a scan of every input. */
const descendantProbeLimit = 256;

/** Both families of one address set. */
export class CoverSet {
  readonly v4 = new CoverHalf('ipv4');
  readonly v6 = new CoverHalf('ipv6');

  half(family: Family): CoverHalf {
    return family === 'ipv4' ? this.v4 : this.v6;
  }

  load(inputs: readonly Prefix[], holes: readonly Prefix[] = []): void {
    for (const h of [this.v4, this.v6]) {
      h.load(
        inputs.filter((p) => p.family === h.family),
        holes.filter((p) => p.family === h.family).map((p) => p.bits),
      );
    }
  }

  add(p: Prefix): void {
    this.half(p.family).addInput(p.bits, p.len);
  }

  remove(p: Prefix): void {
    this.half(p.family).removeInput(p.bits, p.len);
  }

  addHole(p: Prefix): void {
    this.half(p.family).addHole(p.bits);
  }

  removeHole(p: Prefix): void {
    this.half(p.family).removeHole(p.bits);
  }

  get changed(): boolean {
    return this.v4.changed || this.v6.changed;
  }

  /**
   * This set's output blocks become inputs of `downstream`. `only`: they are its only inputs, so they
   * never nest and a removal needs no scan for nested inputs.
   */
  feeds(downstream: CoverSet, only: boolean): () => void {
    const listener: CoverListener = {
      added: (family, bits, len) => downstream.half(family).addInput(bits, len),
      removed: (family, bits, len) => downstream.half(family).removeInput(bits, len),
    };
    for (const h of [this.v4, this.v6]) h.listeners.push(listener);
    downstream.v4.disjointInputs = only;
    downstream.v6.disjointInputs = only;
    return () => {
      for (const h of [this.v4, this.v6]) h.listeners.splice(h.listeners.indexOf(listener), 1);
    };
  }

  /** Does the output share an address with `p`? */
  overlaps(p: Prefix): boolean {
    return this.half(p.family).overlaps(p.bits, p.len);
  }

  /** The output blocks (both families); the same array until the next change. */
  blocks(): readonly Prefix[] {
    const v4 = this.v4.blocks();
    const v6 = this.v6.blocks();
    if (this.blockCache === undefined || this.blockCache.v4 !== v4 || this.blockCache.v6 !== v6) this.blockCache = { v4, v6, all: [...v4, ...v6] };
    return this.blockCache.all;
  }

  private blockCache: { v4: readonly Prefix[]; v6: readonly Prefix[]; all: readonly Prefix[] } | undefined;

  elements(): { v4: readonly string[]; v6: readonly string[] } {
    return { v4: this.v4.elements(), v6: this.v6.elements() };
  }
}
