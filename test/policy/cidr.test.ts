import test from 'ava';
import {
  AddressMatcher,
  CidrError,
  addressInPrefix,
  canonicalAddress,
  canonicalPrefix,
  formatAddress,
  formatPrefix,
  formatPrefixesByFamily,
  hostPrefix,
  isAddress,
  mergePrefixes,
  parseAddress,
  parsePrefix,
  parsePrefixDetailed,
  parsePrefixOrAddress,
  prefixContains,
  rangesToPrefixes,
  subtractPrefixes,
} from '../../src/policy/cidr.js';

const fmt = (ps: readonly { family: 'ipv4' | 'ipv6'; bits: bigint; len: number }[]): string[] => ps.map(formatPrefix);
const parseAll = (ss: readonly string[]) => ss.map(parsePrefix);

test('parsePrefix masks host bits and reports them', (t) => {
  const d = parsePrefixDetailed('10.1.2.3/8');
  t.is(formatPrefix(d.prefix), '10.0.0.0/8');
  t.true(d.hadHostBits);
  t.false(parsePrefixDetailed('10.0.0.0/8').hadHostBits);
  t.is(canonicalPrefix('2001:DB8:0:0::1/64'), '2001:db8::/64');
  t.is(canonicalPrefix('0.0.0.0/0'), '0.0.0.0/0');
  t.is(canonicalPrefix('::/0'), '::/0');
  t.is(canonicalPrefix('192.0.2.7/32'), '192.0.2.7/32');
});

for (const bad of [
  '010.0.0.1/32', // leading zero in an octet
  '10.0.0.0/33', // too long for IPv4
  '2001:db8::/129',
  '10.0.0.1', // bare address: length required
  '10.0.0.0/', // empty length
  '10.0.0.0/08', // leading zero in the length
  '10.0.0.0/+8',
  '10.0.0.0/-1',
  '10.0.0.0/8 ',
  ' 10.0.0.0/8',
  '10.0.0/8',
  '10.0.0.0.0/8',
  '256.0.0.0/8',
  'fe80::1%eth0/64', // zone
  '1::2::3/64',
  '1:2:3:4:5:6:7:8:9/64',
  '1:2:3:4:5:6:7:8::/64', // "::" must stand for at least one group
  '12345::/16',
  ':1::/16',
  '1::2:/64',
  ':::/0',
  '::ffff:1.2.3/96',
  '1.2.3.4::/64',
  'example.com/8',
  '/8',
  '',
]) {
  test(`parsePrefix rejects ${JSON.stringify(bad)}`, (t) => {
    const err = t.throws(() => parsePrefix(bad), { instanceOf: CidrError });
    t.is(err?.name, 'CidrError');
    t.true(err?.message.includes(JSON.stringify(bad)) ?? false, err?.message);
  });
}

test('CidrError messages say what is wrong', (t) => {
  t.regex(t.throws(() => parsePrefix('010.0.0.1/32'))?.message ?? '', /leading zero/);
  t.regex(t.throws(() => parsePrefix('10.0.0.0/33'))?.message ?? '', /prefix length out of range/);
  t.regex(t.throws(() => parsePrefix('10.0.0.1'))?.message ?? '', /no '\/'/);
  t.regex(t.throws(() => parseAddress('fe80::1%eth0'))?.message ?? '', /zones/);
});

test('parseAddress accepts valid forms and keeps IPv4-mapped as IPv6', (t) => {
  t.deepEqual(parseAddress('192.0.2.1'), { family: 'ipv4', bits: 0xc0000201n });
  t.deepEqual(parseAddress('0.0.0.0'), { family: 'ipv4', bits: 0n });
  t.deepEqual(parseAddress('::'), { family: 'ipv6', bits: 0n });
  t.deepEqual(parseAddress('::1'), { family: 'ipv6', bits: 1n });
  t.deepEqual(parseAddress('1::'), { family: 'ipv6', bits: 1n << 112n });
  t.deepEqual(parseAddress('::ffff:10.1.2.3'), { family: 'ipv6', bits: 0xffff0a010203n });
  t.deepEqual(parseAddress('1:2:3:4:5:6:7::'), parseAddress('1:2:3:4:5:6:7:0'));
  t.deepEqual(parseAddress('::2:3:4:5:6:7:8'), parseAddress('0:2:3:4:5:6:7:8'));
  t.deepEqual(parseAddress('1:2:3:4:5:6:1.2.3.4'), parseAddress('1:2:3:4:5:6:102:304'));
  t.deepEqual(parseAddress('0001:0DB8::00ff'), parseAddress('1:db8::ff'));
  t.false(isAddress('1:2:3:4:5:6:7:1.2.3.4'));
  t.false(isAddress('01.2.3.4'));
  t.false(isAddress('1.2.3.4/32'));
  t.true(isAddress('2001:db8::1'));
});

test('formatAddress follows RFC 5952', (t) => {
  const f = (s: string): string => canonicalAddress(s);
  t.is(f('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  t.is(f('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // a single zero group is not compressed
  t.is(f('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1'); // the longest run wins
  t.is(f('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'); // the first run wins a tie
  t.is(f('0:0:0:0:0:0:0:0'), '::');
  t.is(f('FFFF:0:0:0:0:0:0:0'), 'ffff::');
  t.is(f('::ffff:0a01:0203'), '::ffff:10.1.2.3');
  t.is(f('::ffff:0:0'), '::ffff:0.0.0.0');
  // IPv4-compatible: dotted like glibc's inet_ntop (what `nft list` prints), except below ::1:0
  t.is(f('::0102:0304'), '::1.2.3.4');
  t.is(f('::1:0'), '::0.1.0.0');
  t.is(f('::100'), '::100');
  t.is(f('::1'), '::1');
  t.is(f('::1:0:0'), '::1:0:0');
  t.is(formatAddress('ipv4', 0xffffffffn), '255.255.255.255');
});

test('hostPrefix and parsePrefixOrAddress', (t) => {
  t.is(formatPrefix(hostPrefix('192.0.2.1')), '192.0.2.1/32');
  t.is(formatPrefix(hostPrefix('2001:db8::1')), '2001:db8::1/128');
  t.is(formatPrefix(parsePrefixOrAddress('2001:db8::1')), '2001:db8::1/128');
  t.is(formatPrefix(parsePrefixOrAddress('192.0.2.9/24')), '192.0.2.0/24');
  t.throws(() => hostPrefix('192.0.2.1/32'), { instanceOf: CidrError });
});

test('prefixContains and addressInPrefix', (t) => {
  const p8 = parsePrefix('10.0.0.0/8');
  t.true(prefixContains(p8, parsePrefix('10.2.0.0/16')));
  t.true(prefixContains(p8, p8));
  t.false(prefixContains(parsePrefix('10.2.0.0/16'), p8));
  t.false(prefixContains(p8, parsePrefix('11.0.0.0/16')));
  t.false(prefixContains(parsePrefix('0.0.0.0/0'), parsePrefix('::/0')));
  t.true(prefixContains(parsePrefix('::/0'), parsePrefix('::ffff:10.0.0.0/104')));
  t.true(addressInPrefix(parseAddress('10.255.1.1'), p8));
  t.false(addressInPrefix(parseAddress('11.0.0.0'), p8));
  // IPv4-mapped IPv6 is IPv6: not inside an IPv4 prefix.
  t.false(addressInPrefix(parseAddress('::ffff:10.1.2.3'), p8));
});

test('mergePrefixes sorts, drops contained, merges siblings', (t) => {
  t.deepEqual(
    fmt(mergePrefixes(parseAll(['2001:db8::/33', '10.1.0.0/16', '2001:db8:8000::/33', '10.0.0.0/16', '10.1.2.0/24', '192.0.2.0/24']))),
    ['10.0.0.0/15', '192.0.2.0/24', '2001:db8::/32'],
  );
  t.deepEqual(fmt(mergePrefixes([])), []);
  t.deepEqual(fmt(mergePrefixes(parseAll(['0.0.0.0/1', '128.0.0.0/1']))), ['0.0.0.0/0']);
  // adjacent but not siblings: stay two prefixes
  t.deepEqual(fmt(mergePrefixes(parseAll(['10.0.1.0/24', '10.0.2.0/24']))), ['10.0.1.0/24', '10.0.2.0/24']);
});

test('subtractPrefixes carves holes', (t) => {
  t.deepEqual(fmt(subtractPrefixes(parseAll(['10.0.0.0/8']), parseAll(['10.0.0.0/9']))), ['10.128.0.0/9']);
  t.deepEqual(fmt(subtractPrefixes(parseAll(['192.0.2.0/24']), parseAll(['192.0.2.1/32']))), [
    '192.0.2.0/32',
    '192.0.2.2/31',
    '192.0.2.4/30',
    '192.0.2.8/29',
    '192.0.2.16/28',
    '192.0.2.32/27',
    '192.0.2.64/26',
    '192.0.2.128/25',
  ]);
  t.deepEqual(fmt(subtractPrefixes(parseAll(['::/0']), parseAll(['8000::/1']))), ['::/1']);
  t.deepEqual(fmt(subtractPrefixes(parseAll(['10.0.0.0/8', '2001:db8::/32']), parseAll(['0.0.0.0/0']))), ['2001:db8::/32']);
  t.deepEqual(fmt(subtractPrefixes(parseAll(['10.0.0.0/24']), parseAll(['10.0.0.0/8']))), []);
  t.deepEqual(fmt(subtractPrefixes(parseAll(['10.0.0.0/24']), [])), ['10.0.0.0/24']);
});

test('rangesToPrefixes covers an unaligned range exactly', (t) => {
  t.deepEqual(fmt(rangesToPrefixes([{ family: 'ipv4', start: 0xc0000201n, end: 0xc0000206n }])), [
    '192.0.2.1/32',
    '192.0.2.2/31',
    '192.0.2.4/31',
    '192.0.2.6/32',
  ]);
  t.deepEqual(fmt(rangesToPrefixes([{ family: 'ipv6', start: 0n, end: (1n << 128n) - 1n }])), ['::/0']);
});

test('formatPrefixesByFamily splits merged strings', (t) => {
  t.deepEqual(formatPrefixesByFamily(parseAll(['2001:db8::1/128', '192.0.2.1/32', '192.0.2.0/24'])), {
    v4: ['192.0.2.0/24'],
    v6: ['2001:db8::1/128'],
  });
});

test('AddressMatcher answers membership at the range edges', (t) => {
  const m = new AddressMatcher(parseAll(['192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32']));
  t.is(m.size, 3);
  t.true(m.has(parseAddress('192.0.2.0')));
  t.true(m.has(parseAddress('192.0.2.255')));
  t.false(m.has(parseAddress('192.0.3.0')));
  t.false(m.has(parseAddress('192.0.1.255')));
  t.true(m.has(parseAddress('198.51.100.7')));
  t.false(m.has(parseAddress('198.51.100.8')));
  t.true(m.has(parseAddress('2001:db8:ffff::1')));
  t.false(m.has(parseAddress('2001:db9::')));
  // same bits, other family
  t.false(m.has({ family: 'ipv6', bits: parseAddress('192.0.2.1').bits }));
  t.false(new AddressMatcher([]).has(parseAddress('0.0.0.0')));
});

// Correctness at scale; its speed is measured by `npm run bench`, not asserted here (no wall-clock margins in tests).
test('AddressMatcher over 100k host addresses answers every lookup', (t) => {
  const base = parseAddress('10.0.0.0').bits;
  const ps = Array.from({ length: 100_000 }, (_, i) => ({ family: 'ipv4' as const, bits: base + BigInt(i * 3), len: 32 }));
  const t0 = performance.now();
  const m = new AddressMatcher(ps);
  const built = performance.now() - t0;
  let hits = 0;
  const t1 = performance.now();
  for (let i = 0; i < 100_000; i++) if (m.has({ family: 'ipv4', bits: base + BigInt(i) })) hits++;
  const queried = performance.now() - t1;
  t.is(hits, Math.ceil(100_000 / 3));
  t.log(`build ${built.toFixed(0)} ms, 100k lookups ${queried.toFixed(0)} ms`);
});
