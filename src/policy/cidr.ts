// IP prefix algebra over bigint: strict parsing (like Go's netip, which Cilium
// uses to validate CIDRs), canonical formatting, containment, merge, subtract,
// and a fast membership matcher. Pure; no dependencies.

import { parseAddr as goParseAddr, parsePrefix as goParsePrefix } from '../api/go-netip.js';
import type { Family } from './model.js';

export type { Family };

/** A CIDR prefix. `bits` is the network address (host bits are always zero). */
export interface Prefix {
  readonly family: Family;
  readonly bits: bigint;
  readonly len: number;
}

export interface Address {
  readonly family: Family;
  readonly bits: bigint;
}

/** An inclusive address range of one family. */
export interface AddressRange {
  readonly family: Family;
  readonly start: bigint;
  readonly end: bigint;
}

export class CidrError extends Error {
  override readonly name = 'CidrError';
  /** The text that failed to parse. */
  readonly input: string;
  constructor(message: string, input: string, options?: { cause?: unknown }) {
    super(message, options);
    this.input = input;
  }
}

export function familyWidth(family: Family): number {
  return family === 'ipv4' ? 32 : 128;
}

/**
 * Parses a bare IP address strictly, with Go's net/netip rules (api/go-netip.ts,
 * the one parser of the project): no leading zeros in IPv4 octets, no zone, no
 * surrounding space. IPv4-mapped IPv6 ("::ffff:10.1.2.3") stays IPv6.
 */
export function parseAddress(s: string): Address {
  const v4 = canonicalIPv4(s);
  if (v4 !== undefined) return { family: 'ipv4', bits: BigInt(v4) };
  const v6 = plainIPv6(s);
  if (v6 !== undefined) return { family: 'ipv6', bits: v6 };
  const r = goParseAddr(s);
  if (!r.ok) throw new CidrError(`invalid IP address: ${r.error}`, s);
  if (r.value.zone) throw new CidrError(`invalid IP address "${s}": zones are not allowed`, s);
  return { family: r.value.family === 4 ? 'ipv4' : 'ipv6', bits: r.value.addr };
}

/**
 * The value of `s` when it is an IPv4 address in canonical form (four decimal fields 0-255, no
 * leading zeros, nothing else), else undefined. Exactly the IPv4 texts the strict parser accepts
 * and formatAddress prints back unchanged: a fast path for the pod and node addresses of a large
 * cluster (test/policy/cidr-fast.test.ts checks it against the strict parser).
 */
export function canonicalIPv4(s: string): number | undefined {
  const n = s.length;
  if (n < 7 || n > 15) return undefined;
  let value = 0;
  let field = 0;
  let digits = 0;
  let fields = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? s.charCodeAt(i) : 46; // a '.' after the end closes the last field
    if (c === 46) {
      if (digits === 0 || field > 255) return undefined;
      value = value * 256 + field;
      fields++;
      field = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return undefined;
    if (digits === 1 && field === 0) return undefined; // leading zero
    field = field * 10 + (c - 48);
    digits++;
    if (digits > 3) return undefined;
  }
  return fields === 4 ? value : undefined;
}

const hexValue = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);

/**
 * The value of `s` when it is a plain IPv6 address (hex groups of 1-4 digits separated by ':', at
 * most one '::', no embedded IPv4, no zone) that the strict parser accepts, else undefined (the
 * strict parser then decides, with its error texts). A fast path like canonicalIPv4.
 */
export function plainIPv6(s: string): bigint | undefined {
  const n = s.length;
  if (n < 2 || n > 39) return undefined;
  // Groups as written (a reused scratch array: no allocation per address; this function never re-enters).
  const groups = scratchGroups;
  let count = 0;
  let ellipsis = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return undefined;
    ellipsis = 0;
    i = 2;
  }
  while (i < n) {
    let value = 0;
    let digits = 0;
    for (; i < n; i++) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      if (++digits > 4) return undefined;
    }
    if (digits === 0 || count >= 8) return undefined;
    groups[count++] = value;
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return undefined; // '.', '%' or anything else: the strict parser
    i++;
    if (i === n) return undefined; // a trailing single ':'
    if (s.charCodeAt(i) === 58) {
      if (ellipsis >= 0) return undefined;
      ellipsis = count;
      i++;
    }
  }
  if (ellipsis < 0 ? count !== 8 : count > 7) return undefined;
  // Four exact 32-bit numbers, then one bigint.
  const word = (k: number): bigint => BigInt(groupAt(2 * k, count, ellipsis) * 65536 + groupAt(2 * k + 1, count, ellipsis));
  return (word(0) << 96n) | (word(1) << 64n) | (word(2) << 32n) | word(3);
}

const scratchGroups: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

/** Group k (0-7) of the full address whose `count` written groups are in scratchGroups, '::' before group `ellipsis` (-1: none). */
function groupAt(k: number, count: number, ellipsis: number): number {
  if (ellipsis < 0 || k < ellipsis) return scratchGroups[k] ?? 0;
  const gap = 8 - count;
  return k < ellipsis + gap ? 0 : (scratchGroups[k - gap] ?? 0);
}

/** True when `s` is a valid bare IP address for parseAddress. */
export function isAddress(s: string): boolean {
  try {
    parseAddress(s);
    return true;
  } catch {
    return false;
  }
}

function maskBits(bits: bigint, len: number, family: Family): bigint {
  const shift = BigInt(familyWidth(family) - len);
  return (bits >> shift) << shift;
}

/**
 * Parses "ADDR/LEN" strictly like Go's netip.ParsePrefix: the length is
 * required, decimal without leading zeros, within the family's width.
 * Host bits are masked off and reported as `hadHostBits`.
 */
export function parsePrefixDetailed(s: string): { prefix: Prefix; hadHostBits: boolean } {
  const r = goParsePrefix(s);
  if (!r.ok) throw new CidrError(`invalid CIDR: ${r.error}`, s);
  const family: Family = r.value.family === 4 ? 'ipv4' : 'ipv6';
  const bits = maskBits(r.value.addr, r.value.bits, family);
  return { prefix: { family, bits, len: r.value.bits }, hadHostBits: bits !== r.value.addr };
}

export function parsePrefix(s: string): Prefix {
  return parsePrefixDetailed(s).prefix;
}

/** Accepts either "ADDR/LEN" or a bare address (as a host prefix). */
export function parsePrefixOrAddress(s: string): Prefix {
  return s.includes('/') ? parsePrefix(s) : hostPrefix(s);
}

/** The /32 or /128 prefix of one address. */
export function hostPrefix(addr: string): Prefix {
  const a = parseAddress(addr);
  return { family: a.family, bits: a.bits, len: familyWidth(a.family) };
}

function formatV4(bits: bigint): string {
  return formatV4Number(Number(bits));
}

function formatV4Number(n: number): string {
  // join: one flat string (see formatPrefix).
  return [n >>> 24, '.', (n >>> 16) & 255, '.', (n >>> 8) & 255, '.', n & 255].join('');
}

function formatV6(bits: bigint): string {
  // Four 32-bit words as numbers: the groups come from number arithmetic, not one bigint shift each.
  const w0 = Number(bits >> 96n);
  const w1 = Number((bits >> 64n) & 0xffffffffn);
  const w2 = Number((bits >> 32n) & 0xffffffffn);
  const w3 = Number(bits & 0xffffffffn);
  // Dotted tail for IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, first 96 bits
  // zero, bits 96-111 not) addresses, exactly as glibc's inet_ntop prints them, so that the text
  // equals `nft list` output (and node:net's). Go prints the latter as ::102:304.
  if (w0 === 0 && w1 === 0) {
    if (w2 === 0xffff) return ['::ffff:', formatV4Number(w3)].join('');
    if (w2 === 0 && w3 >>> 16 !== 0) return ['::', formatV4Number(w3)].join('');
  }
  const groups = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // join: flat strings (see formatPrefix).
  const hex = (from: number, to: number): string => {
    const parts: string[] = [];
    for (let k = from; k < to; k++) parts.push((groups[k] ?? 0).toString(16));
    return parts.join(':');
  };
  if (bestStart < 0) return hex(0, 8);
  return [hex(0, bestStart), '::', hex(bestStart + bestLen, 8)].join('');
}

/** Canonical text: dotted decimal for IPv4, RFC 5952 for IPv6 (with glibc's dotted tails, see formatV6). */
export function formatAddress(family: Family, bits: bigint): string {
  return family === 'ipv4' ? formatV4(bits) : formatV6(bits);
}

/** Canonical "10.0.0.0/8", "2001:db8::/32". */
export function formatPrefix(p: Prefix): string {
  // join makes one flat string; a template literal a chain of concatenation nodes, which set
  // elements held by the incremental model would keep (tens of bytes per element).
  return [formatAddress(p.family, p.bits), '/', p.len].join('');
}

/** Canonical text of a bare address, e.g. "2001:DB8:0::1" -> "2001:db8::1". Throws CidrError. */
export function canonicalAddress(s: string): string {
  const a = parseAddress(s);
  return formatAddress(a.family, a.bits);
}

/** Canonical text of a CIDR with host bits masked, e.g. "10.1.2.3/8" -> "10.0.0.0/8". Throws CidrError. */
export function canonicalPrefix(s: string): string {
  return formatPrefix(parsePrefix(s));
}

export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.len <= inner.len && maskBits(inner.bits, outer.len, outer.family) === outer.bits;
}

export function addressInPrefix(addr: Address, p: Prefix): boolean {
  return addr.family === p.family && maskBits(addr.bits, p.len, p.family) === p.bits;
}

export function prefixToRange(p: Prefix): AddressRange {
  const size = 1n << BigInt(familyWidth(p.family) - p.len);
  return { family: p.family, start: p.bits, end: p.bits + size - 1n };
}

function compareRanges(a: AddressRange, b: AddressRange): number {
  if (a.family !== b.family) return a.family === 'ipv4' ? -1 : 1;
  if (a.start !== b.start) return a.start < b.start ? -1 : 1;
  if (a.end !== b.end) return a.end < b.end ? -1 : 1;
  return 0;
}

/** Sorted (IPv4 first), non-overlapping, non-adjacent ranges covering exactly the input. */
export function normalizeRanges(rs: readonly AddressRange[]): AddressRange[] {
  const sorted = [...rs].sort(compareRanges);
  const out: AddressRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.family === r.family && r.start <= last.end + 1n) {
      if (r.end > last.end) out[out.length - 1] = { family: last.family, start: last.start, end: r.end };
    } else {
      out.push(r);
    }
  }
  return out;
}

export function prefixesToRanges(ps: readonly Prefix[]): AddressRange[] {
  return normalizeRanges(ps.map(prefixToRange));
}

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

/** The fewest prefixes covering exactly the given ranges, sorted. */
export function rangesToPrefixes(rs: readonly AddressRange[]): Prefix[] {
  return normalRangesToPrefixes(normalizeRanges(rs));
}

/** rangesToPrefixes of ranges already normalized (sorted, disjoint, not adjacent). */
function normalRangesToPrefixes(rs: readonly AddressRange[]): Prefix[] {
  const out: Prefix[] = [];
  for (const r of rs) {
    const width = familyWidth(r.family);
    if (r.start === r.end) {
      // One address (most elements of a pod set): no bit lengths to find.
      out.push({ family: r.family, bits: r.start, len: width });
      continue;
    }
    let start = r.start;
    while (start <= r.end) {
      // Largest aligned block starting at `start` that does not pass `end`.
      const align = start === 0n ? width : bitLength(start & -start) - 1;
      const fit = bitLength(r.end - start + 1n) - 1;
      const k = Math.min(align, fit);
      out.push({ family: r.family, bits: start, len: width - k });
      start += 1n << BigInt(k);
    }
  }
  return out;
}

/**
 * Minimal equivalent prefix list: sorted (IPv4 first, then by address and
 * length), no element inside another, adjacent siblings merged.
 */
export function mergePrefixes(ps: readonly Prefix[]): Prefix[] {
  // Nothing or one prefix (a node's pod CIDRs, called once per node): nothing to merge.
  if (ps.length === 0) return [];
  if (ps.length === 1) {
    const p = ps[0] as Prefix;
    if (aligned(p)) return [{ family: p.family, bits: p.bits, len: p.len }];
  }
  let v4 = 0;
  for (const p of ps) if (p.family === 'ipv4') v4++;
  const out = v4 === 0 ? [] : mergeIPv4(ps, v4);
  const v6 = v4 === ps.length ? undefined : mergeIPv6(v4 === 0 ? ps : ps.filter((p) => p.family === 'ipv6'));
  // A prefix with host bits set is not one this module makes; the range path gives what it always gave.
  if (out === undefined || v6 === undefined && v4 < ps.length) return rangesToPrefixes(prefixesToRanges(ps));
  if (v6 !== undefined) for (const p of v6) out.push(p);
  return out;
}

/** No host bits set (every Prefix this module makes). */
function aligned(p: Prefix): boolean {
  return (p.bits & ((1n << BigInt(familyWidth(p.family) - p.len)) - 1n)) === 0n;
}

/**
 * mergePrefixes of IPv6 prefixes: sorted as they are and swept once, without a range object per input
 * (test/policy/cidr-merge.test.ts checks it against the range path).
 */
function mergeIPv6(ps: readonly Prefix[]): Prefix[] | undefined {
  for (const p of ps) if (p.len !== 128 && !aligned(p)) return undefined;
  const sorted = ps.slice().sort((a, b) => (a.bits < b.bits ? -1 : a.bits > b.bits ? 1 : a.len - b.len));
  const ranges: AddressRange[] = [];
  let start = 0n;
  let end = 0n;
  let next = 0n; // end + 1
  let open = false;
  for (const p of sorted) {
    const e = p.len === 128 ? p.bits : p.bits + (1n << BigInt(128 - p.len)) - 1n;
    if (open && p.bits <= next) {
      if (e > end) {
        end = e;
        next = e + 1n;
      }
      continue;
    }
    if (open) ranges.push({ family: 'ipv6', start, end });
    start = p.bits;
    end = e;
    next = e + 1n;
    open = true;
  }
  if (open) ranges.push({ family: 'ipv6', start, end });
  return normalRangesToPrefixes(ranges);
}

/**
 * mergePrefixes of the IPv4 prefixes of `ps` (`count` of them) in doubles instead of bigints: one typed
 * array sorted in place, no range objects. A pod set of a large cluster is 100k+ host prefixes, merged
 * on every full build. Exact: every value stays below 2^39. test/policy/cidr-merge.test.ts checks it
 * against the bigint ranges (rangesToPrefixes(prefixesToRanges(ps))).
 */
function mergeIPv4(ps: readonly Prefix[], count: number): Prefix[] | undefined {
  // start * 64 + len: sorted by start, then shorter (larger) first.
  const keys = new Float64Array(count);
  let n = 0;
  for (const p of ps) {
    if (p.family !== 'ipv4') continue;
    const start = Number(p.bits);
    if (p.len < 0 || p.len > 32 || start < 0 || start % 2 ** (32 - p.len) !== 0 || start >= 2 ** 32) return undefined; // not a valid prefix
    keys[n++] = start * 64 + p.len;
  }
  keys.sort();
  const out: Prefix[] = [];
  let start = -1;
  let end = -1;
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    const len = k % 64;
    const s = (k - len) / 64;
    const e = s + 2 ** (32 - len) - 1;
    if (start >= 0 && s <= end + 1) {
      if (e > end) end = e;
      continue;
    }
    if (start >= 0) pushIPv4Blocks(out, start, end);
    start = s;
    end = e;
  }
  if (start >= 0) pushIPv4Blocks(out, start, end);
  return out;
}

/** The fewest aligned IPv4 blocks covering [start, end] exactly, in order (rangesToPrefixes in doubles). */
function pushIPv4Blocks(out: Prefix[], start: number, end: number): void {
  let s = start;
  while (s <= end) {
    // Largest aligned block starting at s (trailing zeros of s) that does not pass end.
    const align = s === 0 ? 32 : 31 - Math.clz32(s & -s);
    const size = end - s + 1;
    const fit = size >= 2 ** 32 ? 32 : 31 - Math.clz32(size);
    const k = Math.min(align, fit);
    out.push({ family: 'ipv4', bits: BigInt(s), len: 32 - k });
    s += 2 ** k;
  }
}

/** Addresses in `base` but not in `minus`, as a merged prefix list. */
export function subtractPrefixes(base: readonly Prefix[], minus: readonly Prefix[]): Prefix[] {
  const cut = prefixesToRanges(minus);
  const out: AddressRange[] = [];
  let ci = 0;
  for (const r of prefixesToRanges(base)) {
    // Both lists are sorted by (family, start); cut ranges before r can be skipped for later r too.
    while (ci < cut.length && compareFamilyEnd(cut[ci]!, r) < 0) ci++;
    let start = r.start;
    for (let k = ci; k < cut.length; k++) {
      const c = cut[k]!;
      if (c.family !== r.family || c.start > r.end) break;
      if (c.start > start) out.push({ family: r.family, start, end: c.start - 1n });
      if (c.end + 1n > start) start = c.end + 1n;
      if (start > r.end) break;
    }
    if (start <= r.end) out.push({ family: r.family, start, end: r.end });
  }
  return rangesToPrefixes(out);
}

/** Orders cut range c against base range r: negative when c lies wholly before r. */
function compareFamilyEnd(c: AddressRange, r: AddressRange): number {
  if (c.family !== r.family) return c.family === 'ipv4' ? -1 : 1;
  return c.end < r.start ? -1 : 0;
}

/** Canonical strings of a merged prefix list, split by family. */
export function formatPrefixesByFamily(ps: readonly Prefix[]): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const p of mergePrefixes(ps)) (p.family === 'ipv4' ? v4 : v6).push(formatPrefix(p));
  return { v4, v6 };
}

/**
 * Fast membership test over a fixed prefix list: merged ranges per family,
 * binary search. Built once per set, queried per flow.
 */
export class AddressMatcher {
  readonly #starts: Record<Family, bigint[]> = { ipv4: [], ipv6: [] };
  readonly #ends: Record<Family, bigint[]> = { ipv4: [], ipv6: [] };

  constructor(prefixes: readonly Prefix[]) {
    for (const r of prefixesToRanges(prefixes)) {
      this.#starts[r.family].push(r.start);
      this.#ends[r.family].push(r.end);
    }
  }

  /** Number of merged ranges held. */
  get size(): number {
    return this.#starts.ipv4.length + this.#starts.ipv6.length;
  }

  has(addr: Address): boolean {
    const starts = this.#starts[addr.family];
    const ends = this.#ends[addr.family];
    // Last range whose start <= addr.
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= addr.bits) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found >= 0 && addr.bits <= ends[found]!;
  }
}
