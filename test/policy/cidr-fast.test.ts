import test from 'ava';
import fc from 'fast-check';
import { parseAddr } from '../../src/api/go-netip.js';
import { canonicalIPv4, formatAddress, parseAddress } from '../../src/policy/cidr.js';

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
