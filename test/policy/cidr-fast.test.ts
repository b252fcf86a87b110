import test from 'ava';
import fc from 'fast-check';
import { parseAddr } from '../../src/api/go-netip.js';
import { canonicalIPv4, formatAddress, parseAddress, plainIPv6 } from '../../src/policy/cidr.js';

// canonicalIPv4 is a fast path in front of the strict (Go netip) parser: it must accept exactly the
// IPv4 texts that parser accepts and formatAddress prints back unchanged, with the same value.
const octet = fc.oneof(fc.integer({ min: 0, max: 255 }).map(String), fc.constantFrom('00', '01', '007', '256', '999', '1000', '', '-1', '+1', ' 1', '1 ', 'a', '0x1', '٣'));
const dotted = fc.array(octet, { minLength: 1, maxLength: 6 }).map((xs) => xs.join('.'));
const noise = fc.string({ unit: fc.constantFrom('0', '1', '2', '5', '9', '.', ':', '/', '%', 'a', ' '), maxLength: 18 });

function strictCanonical(s: string): number | undefined {
  const r = parseAddr(s);
  if (!r.ok || r.value.family !== 4 || r.value.zone) return undefined;
  return formatAddress('ipv4', r.value.addr) === s ? Number(r.value.addr) : undefined;
}

test('canonicalIPv4 accepts exactly the canonical IPv4 texts of the strict parser, with the same value', (t) => {
  fc.assert(
    fc.property(fc.oneof(dotted, noise), (s) => {
      t.is(canonicalIPv4(s), strictCanonical(s), s);
    }),
    { numRuns: 20_000 },
  );
  // Boundaries, written out.
  for (const s of ['0.0.0.0', '255.255.255.255', '192.0.2.1', '10.0.0.0']) t.is(canonicalIPv4(s), strictCanonical(s));
  for (const s of ['1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.256', '1.2.3.4 ', '1..3.4', '::ffff:1.2.3.4', '1.2.3.4/32']) t.is(canonicalIPv4(s), undefined, s);
});

test('parseAddress gives the same result with and without the fast path', (t) => {
  fc.assert(
    fc.property(fc.oneof(dotted, noise), (s) => {
      const r = parseAddr(s);
      let viaStrict: { family: string; bits: bigint } | string;
      if (r.ok && !r.value.zone) viaStrict = { family: r.value.family === 4 ? 'ipv4' : 'ipv6', bits: r.value.addr };
      else viaStrict = 'error';
      let got: { family: string; bits: bigint } | string;
      try {
        got = parseAddress(s);
      } catch {
        got = 'error';
      }
      t.deepEqual(got, viaStrict, s);
    }),
    { numRuns: 10_000 },
  );
});

const hexGroup = fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16)), fc.constantFrom('0', '00000', 'FFFF', 'fFfF', '12345', 'g', ''));
const colons = fc.array(fc.tuple(hexGroup, fc.constantFrom(':', ':', ':', '::', ':::', '.', '%eth0', '')), { minLength: 1, maxLength: 10 }).map((xs) => xs.map(([g, sep]) => g + sep).join(''));
const v6noise = fc.string({ unit: fc.constantFrom('0', '1', 'a', 'F', ':', ':', '.', '%', 'g', ' '), maxLength: 42 });

test('plainIPv6 gives the strict parser value whenever it accepts, and accepts every plain address the strict parser does', (t) => {
  fc.assert(
    fc.property(fc.oneof(colons, v6noise, fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((b) => formatAddress('ipv6', b))), (s) => {
      const fast = plainIPv6(s);
      const r = parseAddr(s);
      const strict = r.ok && r.value.family === 6 && !r.value.zone ? r.value.addr : undefined;
      if (fast !== undefined) t.true(fast === strict, s);
      // Plain text (no '.', no '%') the strict parser accepts must take the fast path.
      else if (strict !== undefined && !s.includes('.') && !s.includes('%')) t.fail(`fast path refused ${s}`);
      // And parseAddress, fast path included, answers like the strict parser alone.
      let got: bigint | string;
      try {
        const a = parseAddress(s);
        got = a.family === 'ipv6' ? a.bits : 'ipv4';
      } catch {
        got = 'error';
      }
      const want = r.ok && !r.value.zone ? (r.value.family === 6 ? r.value.addr : 'ipv4') : 'error';
      if (got !== want) t.fail(`parseAddress(${s})`);
    }),
    { numRuns: 20_000 },
  );
  t.is(plainIPv6('::'), 0n);
  t.is(plainIPv6('2001:db8::1'), (0x20010db8n << 96n) | 1n);
  for (const s of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':1::', '1:', '12345::', '::ffff:1.2.3.4', 'fe80::1%eth0', '1:2:3:4:5:6:7:8::']) t.is(plainIPv6(s), undefined, s);
});
