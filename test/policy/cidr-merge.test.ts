// mergePrefixes computes IPv4 in doubles (cidr.ts mergeIPv4): it must equal the bigint range path.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { formatPrefix, mergePrefixes, prefixesToRanges, rangesToPrefixes, type Prefix } from '../../src/policy/cidr.js';

const reference = (ps: readonly Prefix[]): Prefix[] => rangesToPrefixes(prefixesToRanges(ps));

const masked = (family: 'ipv4' | 'ipv6', bits: bigint, len: number): Prefix => {
  const width = family === 'ipv4' ? 32 : 128;
  return { family, bits: (bits >> BigInt(width - len)) << BigInt(width - len), len };
};

// Addresses packed near each other (so blocks touch, nest and merge), at both ends of the space, and anywhere.
const v4Base = fc.oneof(
  fc.bigInt({ min: 0n, max: 255n }),
  fc.bigInt({ min: 0xc0000200n, max: 0xc00002ffn }),
  fc.bigInt({ min: 0xffffff00n, max: 0xffffffffn }),
  fc.bigInt({ min: 0n, max: 0xffffffffn }),
);
const v4Prefix = fc.tuple(v4Base, fc.oneof(fc.integer({ min: 24, max: 32 }), fc.integer({ min: 0, max: 32 }))).map(([b, len]) => masked('ipv4', b, len));
const v6Prefix = fc
  .tuple(fc.oneof(fc.bigInt({ min: 0n, max: 255n }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })), fc.oneof(fc.integer({ min: 120, max: 128 }), fc.integer({ min: 0, max: 128 })))
  .map(([b, len]) => masked('ipv6', b, len));

testProp('mergePrefixes equals the bigint ranges path (IPv4, IPv6 and mixed lists)', [fc.array(fc.oneof({ weight: 4, arbitrary: v4Prefix }, { weight: 1, arbitrary: v6Prefix }), { maxLength: 200 })], (t, ps) => {
  t.deepEqual(mergePrefixes(ps).map(formatPrefix), reference(ps).map(formatPrefix));
  t.deepEqual(mergePrefixes(ps), reference(ps));
}, { numRuns: 1000 });

test('mergePrefixes: the whole IPv4 space, adjacent halves, the last address, duplicates', (t) => {
  const p = (bits: bigint, len: number): Prefix => ({ family: 'ipv4', bits, len });
  t.deepEqual(mergePrefixes([p(0n, 0)]).map(formatPrefix), ['0.0.0.0/0']);
  t.deepEqual(mergePrefixes([p(0x80000000n, 1), p(0n, 1)]).map(formatPrefix), ['0.0.0.0/0']);
  t.deepEqual(mergePrefixes([p(0xffffffffn, 32), p(0xfffffffen, 32), p(0xffffffffn, 32)]).map(formatPrefix), ['255.255.255.254/31']);
  t.deepEqual(mergePrefixes([p(1n, 32), p(3n, 32), p(2n, 32)]).map(formatPrefix), ['0.0.0.1/32', '0.0.0.2/31']);
  t.deepEqual(mergePrefixes([]), []);
  t.deepEqual(mergePrefixes([p(0xc0000200n, 24)]), [p(0xc0000200n, 24)]);
});

// Prefixes with host bits set are never made by cidr.ts; given one anyway, mergePrefixes still answers as before.
const raw = fc.oneof(
  fc.tuple(fc.constant('ipv4' as const), fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.integer({ min: 0, max: 32 })),
  fc.tuple(fc.constant('ipv6' as const), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 })),
).map(([family, bits, len]): Prefix => ({ family, bits, len }));

testProp('mergePrefixes of prefixes with or without host bits equals the bigint ranges path', [fc.array(fc.oneof(raw, v4Prefix, v6Prefix), { minLength: 1, maxLength: 4 })], (t, ps) => {
  t.deepEqual(mergePrefixes(ps), reference(ps));
});
