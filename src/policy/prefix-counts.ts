// A multiset of prefixes of one family, keyed compactly (issue 9, memory at 100k pods).
//
// The incremental model counts every pod address twice (per identity, and in the pods pool's
// inputs). Keyed by bigint, each of those 200k+ keys is a heap object of its own; here an IPv4
// host address (/32, nearly every key) is an int32 number, which V8 keeps inline (a Smi) with no
// allocation. Other IPv4 prefixes use bits * 64 + len (exact: below 2^38). An IPv6 host address
// whose upper 98 bits are those of the first IPv6 host added (pod addresses of a cluster share a
// /104 with Cilium's default IPAM) is keyed by its low 30 bits, a Smi too; any other IPv6 prefix
// keeps a bigint. The host keys (nearly all) are counted in open-addressing tables of int32
// (int-counts.ts: 10-20 bytes an entry instead of a Map's ~37).
// test/policy/prefix-counts.test.ts checks it against a Map keyed the old way.

import { IntCounts } from './int-counts.js';
import type { Family } from './model.js';

export class PrefixCounts {
  readonly family: Family;
  // Made on first use: an identity of one pod holds one address of one family.
  /** IPv4 /32: the address as a signed 32-bit integer. */
  private hosts4: IntCounts | undefined;
  /** Other IPv4 prefixes: bits * 64 + len. */
  private nets4: Map<number, number> | undefined;
  /** IPv6: (bits << 8) | len. */
  private all6: Map<bigint, number> | undefined;
  /** IPv6 /128 with bits >> 30 === base6: the low 30 bits. */
  private hosts6: IntCounts | undefined;
  /** Upper 98 bits of the first IPv6 host address added (until clear()). */
  private base6: bigint | undefined;

  constructor(family: Family) {
    this.family = family;
  }

  /** How many times (bits, len) was added and not removed; 0 when absent. */
  count(bits: bigint, len: number): number {
    return this.get(bits, len) ?? 0;
  }

  has(bits: bigint, len: number): boolean {
    return this.get(bits, len) !== undefined;
  }

  /** Adds one; returns the new count. */
  add(bits: bigint, len: number): number {
    // The key is made once per call (an IPv6 key is a new bigint each time it is made).
    if (this.family === 'ipv6') {
      if (len === 128) {
        const hi = bits >> 30n;
        this.base6 ??= hi;
        if (hi === this.base6) return (this.hosts6 ??= new IntCounts()).bump(Number(bits & low30), 1);
      }
      return bump(this.all6 ??= new Map(), (bits << 8n) | BigInt(len), 1);
    }
    if (len === 32) return (this.hosts4 ??= new IntCounts()).bump(Number(bits) | 0, 1);
    return bump(this.nets4 ??= new Map(), Number(bits) * 64 + len, 1);
  }

  /** Removes one; returns the new count, or -1 when (bits, len) was absent (nothing changes). */
  remove(bits: bigint, len: number): number {
    if (this.family === 'ipv6') {
      if (len === 128 && this.hosts6 !== undefined && bits >> 30n === this.base6) return this.hosts6.bump(Number(bits & low30), -1);
      return this.all6 === undefined ? -1 : bump(this.all6, (bits << 8n) | BigInt(len), -1);
    }
    if (len === 32) return this.hosts4 === undefined ? -1 : this.hosts4.bump(Number(bits) | 0, -1);
    return this.nets4 === undefined ? -1 : bump(this.nets4, Number(bits) * 64 + len, -1);
  }

  clear(): void {
    this.hosts4 = undefined;
    this.nets4 = undefined;
    this.all6 = undefined;
    this.hosts6 = undefined;
    this.base6 = undefined;
  }

  /** Distinct prefixes held. */
  get size(): number {
    return (this.hosts4?.size ?? 0) + (this.nets4?.size ?? 0) + (this.all6?.size ?? 0) + (this.hosts6?.size ?? 0);
  }

  /** Every distinct prefix with its count. */
  *entries(): IterableIterator<[bits: bigint, len: number, count: number]> {
    for (const [k, n] of this.hosts4?.entries() ?? []) yield [BigInt(k >>> 0), 32, n];
    for (const [k, n] of this.nets4 ?? []) {
      const len = k % 64;
      yield [BigInt((k - len) / 64), len, n];
    }
    for (const [k, n] of this.all6 ?? []) yield [k >> 8n, Number(k & 0xffn), n];
    const base = (this.base6 ?? 0n) << 30n;
    for (const [k, n] of this.hosts6?.entries() ?? []) yield [base | BigInt(k), 128, n];
  }

  private get(bits: bigint, len: number): number | undefined {
    if (this.family === 'ipv6') {
      if (len === 128 && this.hosts6 !== undefined && bits >> 30n === this.base6) return orAbsent(this.hosts6.get(Number(bits & low30)));
      return this.all6?.get((bits << 8n) | BigInt(len));
    }
    return len === 32 ? orAbsent(this.hosts4?.get(Number(bits) | 0) ?? 0) : this.nets4?.get(Number(bits) * 64 + len);
  }
}

/** Adds d (+1 or -1) to the count of k: the new count, 0 when it went (deleted), -1 when a removal found nothing. */
function bump<K>(m: Map<K, number>, k: K, d: 1 | -1): number {
  const n = m.get(k);
  if (n === undefined) {
    if (d < 0) return -1;
    m.set(k, 1);
    return 1;
  }
  if (n + d === 0) {
    m.delete(k);
    return 0;
  }
  m.set(k, n + d);
  return n + d;
}

/** IntCounts answers 0 for an absent key; get() answers undefined. */
const orAbsent = (n: number): number | undefined => (n === 0 ? undefined : n);

const low30 = (1n << 30n) - 1n;
