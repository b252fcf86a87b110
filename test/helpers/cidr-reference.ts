// Reference for the allocation-light paths of src/policy/cidr.ts (session 15): the
// address parsing and formatting those functions had before, kept verbatim as
// the test oracle (bigint words, arrays joined), and the union of Prefix objects
// the host-address merges replace.

import { prefixesToRanges, rangesToPrefixes, type Family, type Prefix } from '../../src/policy/cidr.js';

function formatV4Number(n: number): string {
  return [n >>> 24, '.', (n >>> 16) & 255, '.', (n >>> 8) & 255, '.', n & 255].join('');
}

/** formatAddress('ipv6', bits) as it was: four words by bigint shifts, groups joined. */
export function formatV6Reference(bits: bigint): string {
  const w0 = Number(bits >> 96n);
  const w1 = Number((bits >> 64n) & 0xffffffffn);
  const w2 = Number((bits >> 32n) & 0xffffffffn);
  const w3 = Number(bits & 0xffffffffn);
  if (w0 === 0 && w1 === 0) {
    if (w2 === 0xffff) return ['::ffff:', formatV4Number(w3)].join('');
    if (w2 === 0 && w3 >>> 16 !== 0) return ['::', formatV4Number(w3)].join('');
  }
  const groups = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
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
  const hex = (from: number, to: number): string => {
    const parts: string[] = [];
    for (let k = from; k < to; k++) parts.push((groups[k] ?? 0).toString(16));
    return parts.join(':');
  };
  if (bestStart < 0) return hex(0, 8);
  return [hex(0, bestStart), '::', hex(bestStart + bestLen, 8)].join('');
}

/** formatAddress as it was. */
export function formatAddressReference(family: Family, bits: bigint): string {
  return family === 'ipv4' ? formatV4Number(Number(bits)) : formatV6Reference(bits);
}

/** formatPrefix as it was. */
export function formatPrefixReference(p: Prefix): string {
  return [formatAddressReference(p.family, p.bits), '/', p.len].join('');
}

/** The host prefixes of IPv4 numbers and IPv6 bigints, as Prefix objects. */
export function hostPrefixes(v4: readonly number[], v6: readonly bigint[]): Prefix[] {
  return [
    ...v4.map((n): Prefix => ({ family: 'ipv4', bits: BigInt(n), len: 32 })),
    ...v6.map((b): Prefix => ({ family: 'ipv6', bits: b, len: 128 })),
  ];
}

/** formatPrefixesByFamily of the prefixes and the hosts as it was: one Prefix per host, merged by the bigint range path, formatted the old way. */
export function formatUnionReference(prefixes: readonly Prefix[], v4: readonly number[], v6: readonly bigint[]): { v4: string[]; v6: string[] } {
  const out = { v4: [] as string[], v6: [] as string[] };
  for (const p of rangesToPrefixes(prefixesToRanges([...prefixes, ...hostPrefixes(v4, v6)]))) (p.family === 'ipv4' ? out.v4 : out.v6).push(formatPrefixReference(p));
  return out;
}
