import test from 'ava';
import { parseAddr, parsePrefix, prefixContains } from '../../src/api/go-netip.js';

const ok = (s: string): boolean => parsePrefix(s).ok;
const error = (s: string): string => {
  const r = parsePrefix(s);
  return r.ok ? '' : r.error;
};

test('accepts what Go netip.ParsePrefix accepts', (t) => {
  for (const s of ['10.0.0.0/8', '10.1.2.3/8', '0.0.0.0/0', '192.0.2.1/32', '::/0', '2001:db8::/32', '2001:db8::1/128',
    '::ffff:192.0.2.0/120', '1:2:3:4:5:6:7:8/64', 'fe80::/10', '2001:DB8::/32']) t.true(ok(s), s);
});

test('refuses what Go refuses, with Go-like messages', (t) => {
  t.is(error('10.0.0.1'), 'netip.ParsePrefix("10.0.0.1"): no \'/\'');
  t.is(error('10.0.0.0/33'), 'netip.ParsePrefix("10.0.0.0/33"): prefix length out of range');
  t.is(error('10.0.0.0/08'), 'netip.ParsePrefix("10.0.0.0/08"): bad bits after slash: "08"');
  t.is(error('10.0.0.0/-1'), 'netip.ParsePrefix("10.0.0.0/-1"): bad bits after slash: "-1"');
  t.is(error('256.0.0.0/8'), 'netip.ParsePrefix("256.0.0.0/8"): ParseAddr("256.0.0.0"): IPv4 field has value >255');
  t.is(error('01.0.0.0/8'), 'netip.ParsePrefix("01.0.0.0/8"): ParseAddr("01.0.0.0"): IPv4 field has octet with leading zero');
  t.is(error('host/8'), 'netip.ParsePrefix("host/8"): ParseAddr("host"): unable to parse IP');
  t.regex(error('10.0.0/8'), /IPv4 address too short/);
  t.regex(error('1.2.3.4.5/8'), /IPv4 address too long/);
  t.regex(error('fe80::1%eth0/64'), /IPv6 zones cannot be present in a prefix/);
  t.regex(error('1::2::3/64'), /multiple ::/);
  t.regex(error('1:2:3:4:5:6:7/64'), /too short/);
  t.regex(error('12345::/16'), />=2\^16/);
  t.regex(error('::/129'), /out of range/);
});

test('address values', (t) => {
  const a = parseAddr('::ffff:192.0.2.1');
  t.true(a.ok && a.value.family === 6 && a.value.addr === 0xffffc0000201n);
  const b = parseAddr('192.0.2.1');
  t.true(b.ok && b.value.family === 4 && b.value.addr === 0xc0000201n);
  const c = parseAddr('1::');
  t.true(c.ok && c.value.addr === 1n << 112n);
});

test('containment (except inside cidr)', (t) => {
  const p = (s: string) => {
    const r = parsePrefix(s);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };
  t.true(prefixContains(p('10.0.0.0/8'), p('10.1.0.0/16')));
  t.true(prefixContains(p('10.1.2.3/8'), p('10.0.0.0/8')));
  t.false(prefixContains(p('10.0.0.0/16'), p('10.0.0.0/8')));
  t.false(prefixContains(p('10.0.0.0/8'), p('11.0.0.0/16')));
  t.false(prefixContains(p('0.0.0.0/0'), p('::/0')));
  t.true(prefixContains(p('2001:db8::/32'), p('2001:db8:ffff::/48')));
});
