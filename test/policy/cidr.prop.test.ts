import { SocketAddress, isIP } from 'node:net';
import { fc, testProp } from '@fast-check/ava';
import {
  AddressMatcher,
  addressInPrefix,
  formatAddress,
  formatPrefix,
  mergePrefixes,
  parseAddress,
  parsePrefix,
  parsePrefixDetailed,
  prefixContains,
  subtractPrefixes,
  type Prefix,
} from '../../src/policy/cidr.js';

const v4Bits = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n });
const v6Bits = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
// IPv6 with many zero groups, so compression cases come up often.
const v6Sparse = fc.oneof(
  fc
    .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
    .map((gs) => gs.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n)),
  // IPv4-mapped and IPv4-compatible ranges, which print with a dotted tail
  fc.tuple(fc.constantFrom(0n, 0xffffn), fc.bigInt({ min: 0n, max: (1n << 32n) - 1n })).map(([hi, lo]) => (hi << 32n) | lo),
);

const anyPrefix: fc.Arbitrary<Prefix> = fc.oneof(
  fc.tuple(v4Bits, fc.integer({ min: 0, max: 32 })).map(([b, len]) => ({ family: 'ipv4' as const, bits: (b >> BigInt(32 - len)) << BigInt(32 - len), len })),
  fc.tuple(fc.oneof(v6Bits, v6Sparse), fc.integer({ min: 0, max: 128 })).map(([b, len]) => ({ family: 'ipv6' as const, bits: (b >> BigInt(128 - len)) << BigInt(128 - len), len })),
);

testProp('formatPrefix/parsePrefix round trip', [anyPrefix], (t, p) => {
  const text = formatPrefix(p);
  t.deepEqual(parsePrefix(text), p);
  t.is(formatPrefix(parsePrefix(text.toUpperCase())), text);
  t.false(parsePrefixDetailed(text).hadHostBits);
});

testProp('formatAddress/parseAddress round trip', [fc.oneof(v6Bits, v6Sparse)], (t, bits) => {
  t.is(parseAddress(formatAddress('ipv6', bits)).bits, bits);
});

testProp('IPv6 formatting agrees with node:net (RFC 5952)', [fc.oneof(v6Bits, v6Sparse)], (t, bits) => {
  const ours = formatAddress('ipv6', bits);
  t.is(isIP(ours), 6);
  t.is(new SocketAddress({ address: ours, family: 'ipv6' }).address, ours);
});

testProp('IPv4 formatting agrees with node:net', [v4Bits], (t, bits) => {
  const ours = formatAddress('ipv4', bits);
  t.is(isIP(ours), 4);
  t.is(new SocketAddress({ address: ours, family: 'ipv4' }).address, ours);
});

// Small prefixes inside 192.0.0.0/20 (4096 addresses) so the oracle can enumerate every address.
const BASE = 0xc0000000n;
const SPACE = 4096;
const smallPrefix: fc.Arbitrary<Prefix> = fc
  .tuple(fc.integer({ min: 0, max: SPACE - 1 }), fc.integer({ min: 20, max: 32 }))
  .map(([off, len]) => {
    const shift = BigInt(32 - len);
    return { family: 'ipv4' as const, bits: ((BASE + BigInt(off)) >> shift) << shift, len };
  });
const smallList = fc.array(smallPrefix, { maxLength: 12 });

function members(ps: readonly Prefix[]): boolean[] {
  const out: boolean[] = [];
  for (let i = 0; i < SPACE; i++) {
    const a = { family: 'ipv4' as const, bits: BASE + BigInt(i) };
    out.push(ps.some((p) => addressInPrefix(a, p)));
  }
  return out;
}

function assertCanonical(t: { true: (v: boolean, m?: string) => void }, ps: readonly Prefix[]): void {
  for (let i = 0; i < ps.length; i++) {
    for (let j = 0; j < ps.length; j++) {
      if (i !== j) t.true(!prefixContains(ps[i]!, ps[j]!), `${formatPrefix(ps[i]!)} contains ${formatPrefix(ps[j]!)}`);
    }
    if (i > 0) t.true(ps[i - 1]!.bits < ps[i]!.bits, 'sorted by address');
    // two siblings of one parent would have been merged
    const p = ps[i]!;
    const q = ps[i + 1];
    if (q !== undefined && p.len === q.len && p.len > 0) {
      const shift = BigInt(32 - p.len + 1);
      t.true(p.bits >> shift !== q.bits >> shift || p.bits === q.bits, 'siblings merged');
    }
  }
}

testProp('mergePrefixes keeps membership and is canonical', [smallList], (t, ps) => {
  const merged = mergePrefixes(ps);
  t.deepEqual(members(merged), members(ps));
  assertCanonical(t, merged);
  t.deepEqual(mergePrefixes(merged), merged);
});

testProp('subtractPrefixes = base and not minus', [smallList, smallList], (t, base, minus) => {
  const result = subtractPrefixes(base, minus);
  const b = members(base);
  const m = members(minus);
  t.deepEqual(members(result), b.map((x, i) => x && !m[i]));
  assertCanonical(t, result);
});

testProp('AddressMatcher agrees with a linear scan', [smallList, fc.array(fc.integer({ min: -16, max: SPACE + 16 }), { maxLength: 64 })], (t, ps, probes) => {
  const m = new AddressMatcher(ps);
  t.true(m.size <= ps.length, 'ranges are merged');
  for (const off of probes) {
    const a = { family: 'ipv4' as const, bits: BASE + BigInt(off) };
    t.is(m.has(a), ps.some((p) => addressInPrefix(a, p)));
  }
});

testProp('mixed families never interfere', [fc.array(anyPrefix, { maxLength: 8 }), fc.array(anyPrefix, { maxLength: 8 })], (t, a, b) => {
  const r = subtractPrefixes(a, b);
  t.deepEqual(mergePrefixes(r), r, 'result is merged');
  for (const p of r) {
    // Merging may join two base prefixes into their parent, so check coverage by the union.
    t.deepEqual(subtractPrefixes([p], a), [], 'inside the union of base');
    t.false(b.some((q) => prefixContains(q, p) || prefixContains(p, q)), 'disjoint from minus');
  }
});
