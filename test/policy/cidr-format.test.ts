// formatAddress / formatPrefix write character codes into one flat string (cidr.ts, session 15) instead
// of joining arrays of group strings: they must print exactly what the joined version printed.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { SocketAddress } from 'node:net';
import { formatAddress, formatPrefix, parseAddress, plainIPv6, type Prefix } from '../../src/policy/cidr.js';
import { formatAddressReference, formatPrefixReference } from '../helpers/cidr-reference.js';

const v4Bits = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.constantFrom(0n, 1n, 0xffffffffn, 0x0a000000n, 0xc0000201n, 0x64410001n));
// Zero runs of every length and place (RFC 5952 compression and its ties), every group width
// (1-4 hex digits), and the IPv4-mapped / IPv4-compatible forms that print with a dotted tail.
const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 0xf }), fc.integer({ min: 0x10, max: 0xff }), fc.integer({ min: 0x100, max: 0xfff }), fc.integer({ min: 0x1000, max: 0xffff }));
const v6Bits = fc.oneof(
  fc.array(group, { minLength: 8, maxLength: 8 }).map((gs) => gs.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n)),
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc.tuple(fc.constantFrom(0n, 0xffffn, 1n, 0xfffen), fc.bigInt({ min: 0n, max: (1n << 32n) - 1n })).map(([hi, lo]) => (hi << 32n) | lo),
  fc.constantFrom(0n, 1n, (1n << 128n) - 1n, 0xffffn << 32n, 1n << 16n, (1n << 16n) - 1n, 0x20010db8n << 96n),
);

testProp('formatAddress prints what the joined formatting printed (IPv4 and IPv6)', [fc.oneof(v4Bits.map((b) => ['ipv4', b] as const), v6Bits.map((b) => ['ipv6', b] as const))], (t, [family, bits]) => {
  t.is(formatAddress(family, bits), formatAddressReference(family, bits));
}, { numRuns: 5000 });

testProp('IPv6 text agrees with node:net and parses back to the same value', [v6Bits], (t, bits) => {
  const text = formatAddress('ipv6', bits);
  t.is(new SocketAddress({ address: text, family: 'ipv6' }).address, text);
  t.is(parseAddress(text).bits, bits);
  if (!text.includes('.')) t.is(plainIPv6(text), bits);
}, { numRuns: 3000 });

// Lengths this module never makes (negative, fractional, huge) print as they always did.
const anyLen = fc.oneof(fc.integer({ min: 0, max: 128 }), fc.integer({ min: -5, max: 5000 }), fc.double({ noNaN: false }));
testProp('formatPrefix prints what the joined formatting printed, whatever the length', [fc.oneof(v4Bits.map((b) => ['ipv4', b] as const), v6Bits.map((b) => ['ipv6', b] as const)), anyLen], (t, [family, bits], len) => {
  const p: Prefix = { family, bits, len };
  t.is(formatPrefix(p), formatPrefixReference(p));
}, { numRuns: 5000 });

test('formatting: boundaries and forms written out', (t) => {
  const cases: [Prefix, string][] = [
    [{ family: 'ipv4', bits: 0n, len: 0 }, '0.0.0.0/0'],
    [{ family: 'ipv4', bits: 0xffffffffn, len: 32 }, '255.255.255.255/32'],
    [{ family: 'ipv6', bits: 0n, len: 0 }, '::/0'],
    [{ family: 'ipv6', bits: 1n, len: 128 }, '::1/128'],
    [{ family: 'ipv6', bits: (0xffffn << 32n) | 0xc0000201n, len: 128 }, '::ffff:192.0.2.1/128'],
    [{ family: 'ipv6', bits: 0xc0000201n, len: 128 }, '::192.0.2.1/128'],
    [{ family: 'ipv6', bits: 0x0000ffffn, len: 128 }, '::ffff/128'],
    [{ family: 'ipv6', bits: (0x20010db8n << 96n) | 1n, len: 128 }, '2001:db8::1/128'],
    [{ family: 'ipv6', bits: (0x20010db8n << 96n) | (1n << 64n) | 1n, len: 128 }, '2001:db8:0:1::1/128'],
    [{ family: 'ipv6', bits: (1n << 112n) | (1n << 48n), len: 128 }, '1::1:0:0:0/128'],
    [{ family: 'ipv6', bits: (1n << 128n) - 1n, len: 128 }, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'],
  ];
  for (const [p, text] of cases) {
    t.is(formatPrefix(p), text);
    t.is(formatPrefixReference(p), text);
  }
  // Interleaved calls do not leak characters into each other (one scratch buffer).
  const a = formatAddress('ipv6', 1n);
  const b = formatPrefix({ family: 'ipv4', bits: 0x0a000000n, len: 8 });
  t.deepEqual([a, b, formatAddress('ipv4', 1n)], ['::1', '10.0.0.0/8', '0.0.0.1']);
});

test('a formatting call that throws half-way leaves no characters behind for the next one', (t) => {
  // A symbol for a length throws (as the joined formatting did) after the address is written.
  const bad = { family: 'ipv6', bits: 0x20010db8n << 96n, len: Symbol('len') as unknown as number } as const;
  t.throws(() => formatPrefix(bad), { instanceOf: TypeError });
  t.throws(() => formatPrefixReference(bad), { instanceOf: TypeError });
  // And a number where an IPv6 bigint belongs.
  t.throws(() => formatPrefix({ family: 'ipv6', bits: 5 as unknown as bigint, len: 128 }), { instanceOf: TypeError });
  t.is(formatPrefix({ family: 'ipv4', bits: 0x0a000001n, len: 32 }), '10.0.0.1/32');
  t.is(formatAddress('ipv6', 1n), '::1');
});
