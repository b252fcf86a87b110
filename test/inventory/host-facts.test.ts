import { hostname, type NetworkInterfaceInfo } from 'node:os';
import test from 'ava';
import { hostName, localAddresses } from '../../src/inventory/host-facts.js';

const v4 = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4',
  mac: '00:00:00:00:00:00',
  internal,
  cidr: `${address}/24`,
});
const v6 = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: 'ffff:ffff:ffff:ffff::',
  family: 'IPv6',
  mac: '00:00:00:00:00:00',
  internal,
  cidr: `${address}/64`,
  scopeid: 0,
});

test('localAddresses keeps every global address and drops loopback and IPv6 link-local', (t) => {
  t.deepEqual(
    localAddresses({
      lo: [v4('127.0.0.1', true), v6('::1', true)],
      eth0: [v4('192.0.2.1'), v4('192.0.2.10'), v6('2001:DB8:0::1'), v6('fe80::1%eth0'), v6('FE80::2')],
      cilium_host: [v4('198.51.100.1'), v6('2001:db8:100::1')],
      dummy: [v4('127.0.0.2'), v4('192.0.2.1')],
      none: undefined,
    }),
    ['192.0.2.1', '192.0.2.10', '198.51.100.1', '2001:db8::1', '2001:db8:100::1'],
  );
});

test('localAddresses on this machine returns canonical non-loopback addresses', (t) => {
  const got = localAddresses();
  t.true(Array.isArray(got));
  for (const a of got) {
    t.false(a.startsWith('127.') || a === '::1' || /^fe80:/i.test(a), a);
    t.false(a.includes('%'), a);
  }
});

test('hostName is os.hostname()', (t) => {
  t.is(hostName(), hostname());
});
