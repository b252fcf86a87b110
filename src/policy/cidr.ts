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
  // The eight groups into the scratch view, then one bigint from its two 64-bit halves (four bigints
  // made in all, not one per word and per shift).
  for (let k = 0; k < 8; k++) wordView.setUint16(2 * k, groupAt(k, count, ellipsis));
  return (wordView.getBigUint64(0) << 64n) | wordView.getBigUint64(8);
}

/** 128 bits as eight big-endian 16-bit groups: the scratch of plainIPv6 and the IPv6 formatting (never re-entered). */
const wordView = new DataView(new ArrayBuffer(16));

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

// Address texts are written as character codes into `textCodes` and made into one flat string at the
// end: no array per group, no string per group, no join. One flat string matters for set elements the
// incremental model holds (a concatenation chain keeps tens of bytes per element), and pod sets of a
// large cluster format 100k+ elements per full build. Not re-entered (no callbacks while writing).
const textCodes = new Uint8Array(128);
let textLength = 0;
/** Exact-length arrays for String.fromCharCode.apply, by length (an address with its length fits easily). */
const codeArrays: number[][] = [];

/** Starts a text (also after a call that threw half-way, e.g. given a number for an IPv6 bigint). */
function textStart(): void {
  textLength = 0;
}

function textDone(): string {
  const n = textLength;
  let codes = codeArrays[n];
  if (codes === undefined) {
    codes = new Array<number>(n).fill(0);
    codeArrays[n] = codes;
  }
  for (let i = 0; i < n; i++) codes[i] = textCodes[i]!;
  return String.fromCharCode.apply(null, codes);
}

function writeChar(c: number): void {
  textCodes[textLength++] = c;
}

/** A number in decimal as String(n) prints it (octets and prefix lengths: 0-999 written digit by digit). */
function writeDecimal(n: number): void {
  if (!(n >= 0 && n <= 999 && Math.floor(n) === n)) {
    // Not a length this module makes; printed as the joined text always printed it.
    const text = String(n);
    for (let i = 0; i < text.length; i++) writeChar(text.charCodeAt(i));
    return;
  }
  if (n >= 100) writeChar(48 + Math.floor(n / 100));
  if (n >= 10) writeChar(48 + (Math.floor(n / 10) % 10));
  writeChar(48 + (n % 10));
}

/** A 16-bit group in lower-case hex without leading zeros. */
function writeHexGroup(g: number): void {
  for (let shift = g >= 0x1000 ? 12 : g >= 0x100 ? 8 : g >= 0x10 ? 4 : 0; shift >= 0; shift -= 4) {
    const h = (g >>> shift) & 15;
    writeChar(h < 10 ? 48 + h : 87 + h);
  }
}

function writeV4(n: number): void {
  writeDecimal(n >>> 24);
  writeChar(46);
  writeDecimal((n >>> 16) & 255);
  writeChar(46);
  writeDecimal((n >>> 8) & 255);
  writeChar(46);
  writeDecimal(n & 255);
}

/** The address in wordView (eight groups) as RFC 5952 text, with glibc's dotted tails. */
function writeV6(): void {
  const g = (k: number): number => wordView.getUint16(2 * k);
  // Dotted tail for IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, first 96 bits
  // zero, bits 96-111 not) addresses, exactly as glibc's inet_ntop prints them, so that the text
  // equals `nft list` output (and node:net's). Go prints the latter as ::102:304.
  if (g(0) === 0 && g(1) === 0 && g(2) === 0 && g(3) === 0 && g(4) === 0) {
    const mapped = g(5) === 0xffff;
    if (mapped || (g(5) === 0 && g(6) !== 0)) {
      writeChar(58);
      writeChar(58);
      if (mapped) {
        for (const c of [102, 102, 102, 102, 58]) writeChar(c); // "ffff:"
      }
      writeV4(wordView.getUint32(12));
      return;
    }
  }
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g(i) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g(j) === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      writeChar(58);
      writeChar(58);
      k += bestLen - 1;
      continue;
    }
    if (k > 0 && k !== bestStart + bestLen) writeChar(58);
    writeHexGroup(g(k));
  }
}

/** Loads an IPv6 value into wordView (bits outside 0..2^128-1 wrap, as no parsed address has them). */
function loadV6(bits: bigint): void {
  wordView.setBigUint64(0, bits >> 64n);
  wordView.setBigUint64(8, bits);
}

function writeAddress(family: Family, bits: bigint): void {
  if (family === 'ipv4') {
    writeV4(Number(bits));
    return;
  }
  loadV6(bits);
  writeV6();
}

/** Canonical text: dotted decimal for IPv4, RFC 5952 for IPv6 (with glibc's dotted tails, see writeV6). */
export function formatAddress(family: Family, bits: bigint): string {
  textStart();
  writeAddress(family, bits);
  return textDone();
}

/** Canonical "10.0.0.0/8", "2001:db8::/32". */
export function formatPrefix(p: Prefix): string {
  textStart();
  writeAddress(p.family, p.bits);
  writeChar(47);
  writeDecimal(p.len);
  return textDone();
}

/** formatPrefix of the IPv4 prefix `n`/`len` (n: the address as a number). */
function formatIPv4Prefix(n: number, len: number): string {
  textStart();
  writeV4(n);
  writeChar(47);
  writeDecimal(len);
  return textDone();
}

/** formatPrefix of the IPv6 prefix `bits`/`len`. */
function formatIPv6Prefix(bits: bigint, len: number): string {
  textStart();
  loadV6(bits);
  writeV6();
  writeChar(47);
  writeDecimal(len);
  return textDone();
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
  return mergeHostPrefixes(ps, noHosts);
}

/**
 * Host addresses held compactly, one entry per address and no Prefix object: IPv4 as numbers
 * (0 to 2^32-1), IPv6 as bigints (0 to 2^128-1). The pod addresses of a large cluster, merged into
 * pools and endpoint sets on every full build.
 */
export interface HostAddresses {
  readonly v4: readonly number[];
  readonly v6: readonly bigint[];
}

const noHosts: readonly HostAddresses[] = [];

/** The host prefixes of `hosts` as Prefix objects after `prefixes` (the slow path's input). */
function withHostPrefixes(prefixes: readonly Prefix[], hosts: readonly HostAddresses[]): Prefix[] {
  const out = prefixes.slice();
  for (const h of hosts) {
    for (const n of h.v4) out.push({ family: 'ipv4', bits: BigInt(n), len: 32 });
    for (const b of h.v6) out.push({ family: 'ipv6', bits: b, len: 128 });
  }
  return out;
}

/** mergePrefixes of `prefixes` and the host prefixes of `hosts`, without a Prefix object per host. */
export function mergeHostPrefixes(prefixes: readonly Prefix[], hosts: readonly HostAddresses[]): Prefix[] {
  const out: Prefix[] = [];
  const merged = mergeBlocks(prefixes, hosts, {
    v4: (start, len) => void out.push({ family: 'ipv4', bits: BigInt(start), len }),
    v6: (bits, len) => void out.push({ family: 'ipv6', bits, len }),
  });
  // A prefix with host bits set is not one this module makes; the range path gives what it always gave.
  return merged ? out : rangesToPrefixes(prefixesToRanges(hosts.length === 0 ? prefixes : withHostPrefixes(prefixes, hosts)));
}

/** Canonical strings of a merged prefix list, split by family. */
export function formatPrefixesByFamily(ps: readonly Prefix[]): { v4: string[]; v6: string[] } {
  return formatHostPrefixesByFamily(ps, noHosts);
}

/**
 * formatPrefixesByFamily of `prefixes` and the host prefixes of `hosts`: the merged blocks formatted
 * as they come out of the merge, without a Prefix object per host or per block.
 */
export function formatHostPrefixesByFamily(prefixes: readonly Prefix[], hosts: readonly HostAddresses[]): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  const merged = mergeBlocks(prefixes, hosts, {
    v4: (start, len) => void v4.push(formatIPv4Prefix(start, len)),
    v6: (bits, len) => void v6.push(formatIPv6Prefix(bits, len)),
  });
  if (!merged) {
    for (const p of mergeHostPrefixes(prefixes, hosts)) (p.family === 'ipv4' ? v4 : v6).push(formatPrefix(p));
  }
  return { v4, v6 };
}

/** No host bits set (every Prefix this module makes). */
function aligned(p: Prefix): boolean {
  return (p.bits & ((1n << BigInt(familyWidth(p.family) - p.len)) - 1n)) === 0n;
}

/** Receives the merged blocks in order: the IPv4 ones (address as a number), then the IPv6 ones. */
interface BlockSink {
  v4(start: number, len: number): void;
  v6(bits: bigint, len: number): void;
}

const maxV6 = (1n << 128n) - 1n;

/**
 * The fewest prefixes covering exactly the union of `prefixes` and `hosts`, in mergePrefixes order,
 * handed to `sink`; false (and nothing handed) when some input is not a valid prefix or host address,
 * which the callers give to the bigint range path. IPv4 in doubles (one typed array sorted in place),
 * IPv6 swept once over the sorted prefixes and sorted host bigints, without a range object per input.
 * test/policy/cidr-merge.test.ts checks both against the bigint ranges (rangesToPrefixes(prefixesToRanges(ps))).
 */
function mergeBlocks(prefixes: readonly Prefix[], hosts: readonly HostAddresses[], sink: BlockSink): boolean {
  let v4Count = 0;
  let v6Count = 0;
  for (const p of prefixes) {
    if (p.family === 'ipv4') {
      const start = Number(p.bits);
      if (p.len < 0 || p.len > 32 || start < 0 || start % 2 ** (32 - p.len) !== 0 || start >= 2 ** 32) return false;
      v4Count++;
    } else {
      if (p.len !== 128 && !aligned(p)) return false;
      v6Count++;
    }
  }
  let v4Hosts = 0;
  let v6Hosts = 0;
  for (const h of hosts) {
    for (const n of h.v4) if (!(n >= 0 && n <= 0xffffffff && Math.floor(n) === n)) return false;
    for (const b of h.v6) if (!(b >= 0n && b <= maxV6)) return false;
    v4Hosts += h.v4.length;
    v6Hosts += h.v6.length;
  }
  if (v4Count + v4Hosts > 0) mergeIPv4(prefixes, v4Count, hosts, v4Hosts, sink);
  if (v6Count + v6Hosts > 0) mergeIPv6(v6Count === 0 ? [] : prefixes.filter((p) => p.family === 'ipv6'), hosts, v6Hosts, sink);
  return true;
}

/** The IPv6 part of mergeBlocks. Exact: bigints throughout. */
function mergeIPv6(ps: readonly Prefix[], hosts: readonly HostAddresses[], hostCount: number, sink: BlockSink): void {
  const sorted = ps.length <= 1 ? ps : ps.slice().sort((a, b) => (a.bits < b.bits ? -1 : a.bits > b.bits ? 1 : a.len - b.len));
  const hostBits: bigint[] = new Array<bigint>(hostCount);
  let k = 0;
  for (const h of hosts) for (const b of h.v6) hostBits[k++] = b;
  hostBits.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let start = 0n;
  let end = 0n;
  let next = 0n; // end + 1
  let open = false;
  let pi = 0;
  let hi = 0;
  while (pi < sorted.length || hi < hostCount) {
    const p = sorted[pi];
    let s: bigint;
    let e: bigint;
    if (p === undefined || (hi < hostCount && hostBits[hi]! < p.bits)) {
      s = hostBits[hi++]!;
      e = s;
    } else {
      s = p.bits;
      e = p.len === 128 ? p.bits : p.bits + (1n << BigInt(128 - p.len)) - 1n;
      pi++;
    }
    if (open && s <= next) {
      if (e > end) {
        end = e;
        next = e + 1n;
      }
      continue;
    }
    if (open) pushIPv6Blocks(sink, start, end);
    start = s;
    end = e;
    next = e + 1n;
    open = true;
  }
  if (open) pushIPv6Blocks(sink, start, end);
}

/** The fewest aligned IPv6 blocks covering [start, end] exactly, in order (normalRangesToPrefixes of one range). */
function pushIPv6Blocks(sink: BlockSink, start: bigint, end: bigint): void {
  if (start === end) {
    // One address (most elements of a pod set): no bit lengths to find.
    sink.v6(start, 128);
    return;
  }
  let s = start;
  while (s <= end) {
    const align = s === 0n ? 128 : bitLength(s & -s) - 1;
    const fit = bitLength(end - s + 1n) - 1;
    const k = Math.min(align, fit);
    sink.v6(s, 128 - k);
    s += 1n << BigInt(k);
  }
}

/**
 * The IPv4 part of mergeBlocks in doubles instead of bigints: one typed array sorted in place, no range
 * objects. A pod set of a large cluster is 100k+ host addresses, merged on every full build. Exact:
 * every value stays below 2^39.
 */
function mergeIPv4(ps: readonly Prefix[], count: number, hosts: readonly HostAddresses[], hostCount: number, sink: BlockSink): void {
  // start * 64 + len: sorted by start, then shorter (larger) first.
  const keys = new Float64Array(count + hostCount);
  let n = 0;
  for (const p of ps) if (p.family === 'ipv4') keys[n++] = Number(p.bits) * 64 + p.len;
  for (const h of hosts) for (const a of h.v4) keys[n++] = a * 64 + 32;
  keys.sort();
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
    if (start >= 0) pushIPv4Blocks(sink, start, end);
    start = s;
    end = e;
  }
  if (start >= 0) pushIPv4Blocks(sink, start, end);
}

/** The fewest aligned IPv4 blocks covering [start, end] exactly, in order (rangesToPrefixes in doubles). */
function pushIPv4Blocks(sink: BlockSink, start: number, end: number): void {
  let s = start;
  while (s <= end) {
    // Largest aligned block starting at s (trailing zeros of s) that does not pass end.
    const align = s === 0 ? 32 : 31 - Math.clz32(s & -s);
    const size = end - s + 1;
    const fit = size >= 2 ** 32 ? 32 : 31 - Math.clz32(size);
    const k = Math.min(align, fit);
    sink.v4(s, 32 - k);
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
