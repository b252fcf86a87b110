// The output blocks of one CoverHalf (cover-set.ts): disjoint prefixes of one family sorted by start,
// with their canonical text (issue 9, memory at 100k pods). Held as bigint[] + number[] each block
// cost a bigint object and two array slots (~50 bytes; 65k blocks at 100k pods: 3.3 MB). Here starts
// are 32-bit words in one Uint32Array (1 word an IPv4 block, 4 an IPv6 one, most significant first)
// and lengths one byte each; bigints are made only when a start is read.
// The text array is handed out as it is (texts()) and copied before the next change (copy on write),
// so an array handed out never changes and an unchanged list keeps one text array, not two.
// test/policy/block-list.test.ts checks it against sorted bigint arrays.

import { withInserted, withRemoved } from '../exact-arrays.js';
import type { Family } from './model.js';

const minCapacity = 4;

export class BlockList {
  readonly family: Family;
  /** 32-bit words per start: 1 (IPv4) or 4 (IPv6). */
  private readonly words: 1 | 4;
  private starts: Uint32Array;
  private lens: Uint8Array;
  private textList: string[] = [];
  /** textList was handed out: copy it before changing it. */
  private shared = false;
  private count = 0;
  /** The words of the last key searched for (no array per search). */
  private readonly key = new Uint32Array(4);

  constructor(family: Family) {
    this.family = family;
    this.words = family === 'ipv4' ? 1 : 4;
    this.starts = new Uint32Array(minCapacity * this.words);
    this.lens = new Uint8Array(minCapacity);
  }

  get length(): number {
    return this.count;
  }

  /** Replaces the content: blocks sorted by start, disjoint. */
  load(blocks: readonly { readonly bits: bigint; readonly len: number }[], texts: string[]): void {
    const n = blocks.length;
    const cap = Math.max(minCapacity, n);
    this.starts = new Uint32Array(cap * this.words);
    this.lens = new Uint8Array(cap);
    for (let i = 0; i < n; i++) {
      const b = blocks[i] as { bits: bigint; len: number };
      this.write(i, b.bits);
      this.lens[i] = b.len;
    }
    this.count = n;
    this.textList = texts;
    this.shared = false;
  }

  start(i: number): bigint {
    const s = this.starts;
    if (this.words === 1) return BigInt(s[i] as number);
    const o = 4 * i;
    return (BigInt(s[o] as number) << 96n) | (BigInt(s[o + 1] as number) << 64n) | (BigInt(s[o + 2] as number) << 32n) | BigInt(s[o + 3] as number);
  }

  len(i: number): number {
    return this.lens[i] as number;
  }

  text(i: number): string {
    return this.textList[i] as string;
  }

  /** The texts in order; never changed afterwards (the next change works on a copy). */
  texts(): readonly string[] {
    this.shared = true;
    return this.textList;
  }

  /** The first index whose start is >= x (x may be one past the family's last address). */
  lowerBound(x: bigint): number {
    const n = this.count;
    const s = this.starts;
    if (this.words === 1) {
      const v = Number(x);
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((s[mid] as number) < v) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }
    if (x >> 128n !== 0n) return n; // 2^128: after every start
    const k = this.key;
    k[0] = Number((x >> 96n) & 0xffffffffn);
    k[1] = Number((x >> 64n) & 0xffffffffn);
    k[2] = Number((x >> 32n) & 0xffffffffn);
    k[3] = Number(x & 0xffffffffn);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.below(mid, k)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts a block at index i (the caller keeps the order). */
  insert(i: number, bits: bigint, len: number, text: string): void {
    const w = this.words;
    if (this.count === this.lens.length) {
      const cap = this.lens.length * 2;
      const starts = new Uint32Array(cap * w);
      starts.set(this.starts);
      this.starts = starts;
      const lens = new Uint8Array(cap);
      lens.set(this.lens);
      this.lens = lens;
    }
    this.starts.copyWithin((i + 1) * w, i * w, this.count * w);
    this.lens.copyWithin(i + 1, i, this.count);
    this.write(i, bits);
    this.lens[i] = len;
    this.count++;
    if (this.shared) {
      // One copy of the exact new size (a copy then a splice allocated it twice, the splice with room to grow).
      this.textList = withInserted(this.textList, i, text);
      this.shared = false;
    } else {
      this.textList.splice(i, 0, text);
    }
  }

  removeAt(i: number): void {
    const w = this.words;
    this.starts.copyWithin(i * w, (i + 1) * w, this.count * w);
    this.lens.copyWithin(i, i + 1, this.count);
    this.count--;
    if (this.shared) {
      this.textList = withRemoved(this.textList, i);
      this.shared = false;
    } else {
      this.textList.splice(i, 1);
    }
    // Give memory back once far below capacity (a set that emptied).
    if (this.lens.length > minCapacity && this.count * 4 < this.lens.length) {
      const cap = Math.max(minCapacity, this.lens.length / 2);
      this.starts = this.starts.slice(0, cap * w);
      this.lens = this.lens.slice(0, cap);
    }
  }

  private write(i: number, bits: bigint): void {
    if (this.words === 1) {
      this.starts[i] = Number(bits);
      return;
    }
    const o = 4 * i;
    this.starts[o] = Number((bits >> 96n) & 0xffffffffn);
    this.starts[o + 1] = Number((bits >> 64n) & 0xffffffffn);
    this.starts[o + 2] = Number((bits >> 32n) & 0xffffffffn);
    this.starts[o + 3] = Number(bits & 0xffffffffn);
  }

  /** Is the IPv6 start at index i below the key k (4 words)? */
  private below(i: number, k: Uint32Array): boolean {
    const s = this.starts;
    const o = 4 * i;
    for (let w = 0; w < 4; w++) {
      const a = s[o + w] as number;
      const b = k[w] as number;
      if (a !== b) return a < b;
    }
    return false;
  }
}
