// Addresses as the evaluator reads them per flow: IPv4 as a number (no bigint, no string parsing
// beyond one pass over the dotted quad), IPv6 as a bigint; and address lists as merged, sorted
// ranges searched by bisection. Built once per address list holder, queried per flow.

import { canonicalIPv4, parseAddress, parsePrefix, prefixesToRanges, prefixToRange, type Address, type AddressRange, type Prefix } from '../policy/cidr.js';

/** One peer address: `v4` when family is ipv4, `v6` otherwise (the other field is unused). */
export interface FlowAddress {
  readonly family: 'ipv4' | 'ipv6';
  readonly v4: number;
  readonly v6: bigint;
}

/**
 * A canonical IPv4 prefix ("192.0.2.0/24": a canonical dotted quad, a length 0..32 without leading
 * zeros) as its inclusive range, host bits masked off as parsePrefix does; undefined otherwise (the
 * caller then uses parsePrefix, which decides, and throws, for everything else).
 */
function canonicalV4Prefix(s: string): [number, number] | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const n = canonicalIPv4(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (n === undefined || !/^(?:0|[1-9]\d?)$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  const size = 2 ** (32 - len);
  const start = n - (n % size);
  return [start, start + size - 1];
}

/**
 * The flow's peer address. Canonical dotted quads take the fast path; everything else goes through
 * parseAddress (Go's netip rules), which the fast path agrees with: it accepts only what Go accepts
 * and throws CidrError like parseAddress for anything else.
 */
export function parseFlowAddress(s: string): FlowAddress {
  const n = canonicalIPv4(s);
  if (n !== undefined) return { family: 'ipv4', v4: n, v6: 0n };
  return toFlowAddress(parseAddress(s));
}

export function toFlowAddress(a: Address): FlowAddress {
  return a.family === 'ipv4' ? { family: 'ipv4', v4: Number(a.bits), v6: 0n } : { family: 'ipv6', v4: 0, v6: a.bits };
}

/** Index of the last element of `starts` <= x, or -1. */
export function lastAtOrBelow(starts: Float64Array | Int32Array, x: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid]! <= x) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

export function lastAtOrBelowBig(starts: readonly bigint[], x: bigint): number {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid]! <= x) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** Merged address ranges of one address list, per family. */
export class AddressRanges {
  readonly v4Starts: Float64Array;
  readonly v4Ends: Float64Array;
  readonly v6Starts: readonly bigint[];
  readonly v6Ends: readonly bigint[];

  constructor(prefixes: readonly string[]) {
    // IPv4 in numbers (a fast path for canonical "a.b.c.d/len", which model sets are made of), IPv6 in bigints.
    const v4: [number, number][] = [];
    const v6: Prefix[] = [];
    for (const s of prefixes) {
      const fast = canonicalV4Prefix(s);
      if (fast !== undefined) {
        v4.push(fast);
        continue;
      }
      const p = parsePrefix(s);
      if (p.family === 'ipv6') {
        v6.push(p);
        continue;
      }
      const r = prefixToRange(p);
      v4.push([Number(r.start), Number(r.end)]);
    }
    v4.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const v4s: number[] = [];
    const v4e: number[] = [];
    for (const [start, end] of v4) {
      const last = v4e.length - 1;
      if (last >= 0 && start <= v4e[last]! + 1) {
        if (end > v4e[last]!) v4e[last] = end;
      } else {
        v4s.push(start);
        v4e.push(end);
      }
    }
    const v6s: bigint[] = [];
    const v6e: bigint[] = [];
    for (const r of prefixesToRanges(v6)) {
      v6s.push(r.start);
      v6e.push(r.end);
    }
    this.v4Starts = Float64Array.from(v4s);
    this.v4Ends = Float64Array.from(v4e);
    this.v6Starts = v6s;
    this.v6Ends = v6e;
  }

  /** Number of merged ranges held. */
  get size(): number {
    return this.v4Starts.length + this.v6Starts.length;
  }

  has(a: FlowAddress): boolean {
    if (a.family === 'ipv4') {
      const i = lastAtOrBelow(this.v4Starts, a.v4);
      return i >= 0 && a.v4 <= this.v4Ends[i]!;
    }
    const i = lastAtOrBelowBig(this.v6Starts, a.v6);
    return i >= 0 && a.v6 <= this.v6Ends[i]!;
  }

  /** Does any held address fall in the inclusive range `r` (a prefix's)? One bisection: the ranges are merged. */
  overlaps(r: AddressRange): boolean {
    if (r.family === 'ipv4') {
      const i = lastAtOrBelow(this.v4Starts, Number(r.end));
      return i >= 0 && this.v4Ends[i]! >= Number(r.start);
    }
    const i = lastAtOrBelowBig(this.v6Starts, r.end);
    return i >= 0 && this.v6Ends[i]! >= r.start;
  }
}

type Addresses = { readonly v4: readonly string[]; readonly v6: readonly string[] };

/**
 * Ranges by the address lists' holder (an IdentitySet or an exclusion), not by model: models are
 * immutable and an incremental update keeps the objects of what did not change, so a pod event
 * rebuilds the ranges of the sets it changed alone, and a model copied with another run mode
 * (lint) shares them all.
 */
const byHolder = new WeakMap<Addresses, AddressRanges>();

export function rangesOf(a: Addresses): AddressRanges {
  let r = byHolder.get(a);
  if (r === undefined) {
    r = new AddressRanges([...a.v4, ...a.v6]);
    byHolder.set(a, r);
  }
  return r;
}
