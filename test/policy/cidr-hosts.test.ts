// mergeHostPrefixes / formatHostPrefixesByFamily (cidr.ts, session 15) merge prefixes with host
// addresses held as numbers: they must equal the old path, one Prefix per host merged by the bigint
// range path and formatted by the joined formatting (test/helpers/cidr-reference.ts).
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { formatHostPrefixesByFamily, formatPrefix, formatPrefixesByFamily, mergeHostPrefixes, mergePrefixes, prefixesToRanges, rangesToPrefixes, type HostAddresses, type Prefix } from '../../src/policy/cidr.js';
import { formatPrefixReference, formatUnionReference, hostPrefixes } from '../helpers/cidr-reference.js';

const masked = (family: 'ipv4' | 'ipv6', bits: bigint, len: number): Prefix => {
  const width = family === 'ipv4' ? 32 : 128;
  return { family, bits: (bits >> BigInt(width - len)) << BigInt(width - len), len };
};
// Addresses packed together (so hosts touch, repeat and fill blocks), at both ends of each space, and anywhere.
const v4Host = fc.oneof(fc.integer({ min: 0xc0000200, max: 0xc000021f }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0xfffffff8, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }));
const v6Host = fc.oneof(
  fc.bigInt({ min: 0x20010db8n << 96n, max: (0x20010db8n << 96n) + 31n }),
  fc.bigInt({ min: 0n, max: 7n }),
  fc.bigInt({ min: (1n << 128n) - 8n, max: (1n << 128n) - 1n }),
  fc.bigInt({ min: 0xffffn << 32n, max: (0xffffn << 32n) + 0xffffffffn }), // IPv4-mapped
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
);
const v4Prefix = fc.tuple(fc.oneof(fc.bigInt({ min: 0xc0000200n, max: 0xc000021fn }), fc.bigInt({ min: 0n, max: 0xffffffffn })), fc.oneof(fc.integer({ min: 24, max: 32 }), fc.integer({ min: 0, max: 32 }))).map(([b, len]) => masked('ipv4', b, len));
const v6Prefix = fc.tuple(fc.oneof(fc.bigInt({ min: 0x20010db8n << 96n, max: (0x20010db8n << 96n) + 31n }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })), fc.oneof(fc.integer({ min: 120, max: 128 }), fc.integer({ min: 0, max: 128 }))).map(([b, len]) => masked('ipv6', b, len));
const hostLists: fc.Arbitrary<HostAddresses[]> = fc.array(fc.record({ v4: fc.array(v4Host, { maxLength: 40 }), v6: fc.array(v6Host, { maxLength: 20 }) }), { maxLength: 4 });
const prefixes = fc.array(fc.oneof({ weight: 3, arbitrary: v4Prefix }, { weight: 2, arbitrary: v6Prefix }), { maxLength: 12 });

const allV4 = (hs: readonly HostAddresses[]): number[] => hs.flatMap((h) => h.v4);
const allV6 = (hs: readonly HostAddresses[]): bigint[] => hs.flatMap((h) => h.v6);

testProp('formatHostPrefixesByFamily equals one Prefix per host, merged by ranges, formatted the old way', [prefixes, hostLists], (t, ps, hs) => {
  t.deepEqual(formatHostPrefixesByFamily(ps, hs), formatUnionReference(ps, allV4(hs), allV6(hs)));
}, { numRuns: 1500 });

testProp('mergeHostPrefixes equals mergePrefixes and the range path over the same addresses as Prefix objects', [prefixes, hostLists], (t, ps, hs) => {
  const all = [...ps, ...hostPrefixes(allV4(hs), allV6(hs))];
  const got = mergeHostPrefixes(ps, hs);
  t.deepEqual(got, rangesToPrefixes(prefixesToRanges(all)));
  t.deepEqual(got, mergePrefixes(all));
  t.deepEqual(formatPrefixesByFamily(all), formatUnionReference(all, [], []));
}, { numRuns: 1500 });

test('host merges: duplicates, neighbours, /0, both ends of both spaces, nothing at all', (t) => {
  const check = (ps: Prefix[], v4: number[], v6: bigint[]): void => {
    t.deepEqual(formatHostPrefixesByFamily(ps, [{ v4, v6 }]), formatUnionReference(ps, v4, v6));
    t.deepEqual(mergeHostPrefixes(ps, [{ v4, v6 }]), rangesToPrefixes(prefixesToRanges([...ps, ...hostPrefixes(v4, v6)])));
  };
  check([], [], []);
  check([], [5, 5, 5, 4, 6, 7], []);
  check([], [0xffffffff, 0xfffffffe, 0], [(1n << 128n) - 1n, (1n << 128n) - 2n, 0n, 0n]);
  check([masked('ipv4', 0n, 0), masked('ipv6', 0n, 0)], [1, 2, 3], [1n, 2n]);
  check([masked('ipv4', 0xc0000200n, 24)], [0xc0000300, 0xc00002ff, 0xc00001ff], []);
  t.deepEqual(formatHostPrefixesByFamily([], [{ v4: [0xc0000200, 0xc0000201, 0xc0000203, 0xc0000202], v6: [(0x20010db8n << 96n) | 1n, 0x20010db8n << 96n] }]), {
    v4: ['192.0.2.0/30'],
    v6: ['2001:db8::/127'],
  });
});

test('hosts that are no addresses take the range path and give what it gives', (t) => {
  // Never made by resolve-peers; an integer out of range still answers as the Prefix objects would.
  const ps = [masked('ipv4', 0xc0000200n, 24)];
  for (const hs of [[{ v4: [-1], v6: [] }], [{ v4: [2 ** 32], v6: [] }], [{ v4: [], v6: [-1n] }], [{ v4: [], v6: [1n << 128n] }]]) {
    const want = rangesToPrefixes(prefixesToRanges([...ps, ...hostPrefixes(allV4(hs), allV6(hs))]));
    t.deepEqual(mergeHostPrefixes(ps, hs), want);
    t.deepEqual(formatHostPrefixesByFamily(ps, hs).v4, want.filter((p) => p.family === 'ipv4').map(formatPrefix));
  }
  // A prefix with host bits set (never made by cidr.ts) too.
  const odd: Prefix = { family: 'ipv4', bits: 0xc0000201n, len: 24 };
  t.deepEqual(mergeHostPrefixes([odd], [{ v4: [7], v6: [] }]), rangesToPrefixes(prefixesToRanges([odd, ...hostPrefixes([7], [])])));
  t.deepEqual(formatHostPrefixesByFamily([odd], [{ v4: [7], v6: [] }]).v4, rangesToPrefixes(prefixesToRanges([odd, ...hostPrefixes([7], [])])).map(formatPrefixReference));
});
