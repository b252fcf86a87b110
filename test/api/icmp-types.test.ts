import test from 'ava';
import { ICMPV4_TYPES, ICMPV6_TYPES, icmpTypeNumber } from '../../src/api/icmp-types.js';

test('IPv4 names (§10)', (t) => {
  t.is(icmpTypeNumber('EchoRequest', 'IPv4'), 8);
  t.is(icmpTypeNumber('Echo', 'IPv4'), 8);
  t.is(icmpTypeNumber('EchoReply', 'IPv4'), 0);
  t.is(icmpTypeNumber('RouterSelection', 'IPv4'), 10);
  t.is(icmpTypeNumber('ExtendedEchoReply', 'IPv4'), 43);
  t.is(Object.keys(ICMPV4_TYPES).length, 14);
});

test('IPv6 names (§10)', (t) => {
  t.is(icmpTypeNumber('EchoRequest', 'IPv6'), 128);
  t.is(icmpTypeNumber('PacketTooBig', 'IPv6'), 2);
  t.is(icmpTypeNumber('NeighborSolicitation', 'IPv6'), 135);
  t.is(icmpTypeNumber('DuplicateAddressConfirmationCodeSuffix', 'IPv6'), 158);
  t.is(icmpTypeNumber('ExtendedEchoReply', 'IPv6'), 161);
  t.is(Object.keys(ICMPV6_TYPES).length, 27);
});

test('names are per family and case-sensitive', (t) => {
  t.is(icmpTypeNumber('ICMPNodeInformationQuery', 'IPv4'), undefined);
  t.is(icmpTypeNumber('Echo', 'IPv6'), undefined);
  t.is(icmpTypeNumber('echorequest', 'IPv4'), undefined);
  t.is(icmpTypeNumber('toString', 'IPv4'), undefined);
});

test('numbers and numeric strings are used as-is', (t) => {
  t.is(icmpTypeNumber(8, 'IPv4'), 8);
  t.is(icmpTypeNumber(300, 'IPv6'), 300);
  t.is(icmpTypeNumber('128', 'IPv6'), 128);
  t.is(icmpTypeNumber(1.5, 'IPv4'), undefined);
});
