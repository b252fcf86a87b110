import test from 'ava';
import { formatIPv6, parseProcNet, readProcNet } from '../../src/agent/proc-net.js';

const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1664 1 0000000000000000 100 0 0 10 0
   1: 010200C0:0016 057100CB:D431 01 00000000:00000000 02:0009AB7F 00000000     0        0 2211 4 0000000000000000 20 4 30 10 -1
`;

test('tcp: listener and established session, little-endian words', (t) => {
  const s = parseProcNet(tcp, 'tcp', true);
  t.is(s.length, 2);
  t.like(s[0], { proto: 'tcp', family: 4, localAddress: '0.0.0.0', localPort: 22, state: 'listen', inode: 1664 });
  t.like(s[1], { localAddress: '192.0.2.1', localPort: 22, remoteAddress: '203.0.113.5', remotePort: 0xd431, state: 'established' });
});

test('big-endian kernels print words in network order', (t) => {
  const s = parseProcNet('   0: C0000201:0016 CB007105:D431 01 0 0 0 0 0 1 0\n', 'tcp', false);
  t.like(s[0], { localAddress: '192.0.2.1', remoteAddress: '203.0.113.5' });
});

const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0
   1: B80D0120000000000000000001000000:0016 B80D01200000FFFF0000000005000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0 100 0 0 10 0
   2: 0000000000000000FFFF0000010200C0:0016 0000000000000000FFFF0000057100CB:C351 01 00000000:00000000 00:00000000 00000000     0        0 102 1 0 100 0 0 10 0
`;

test('tcp6: unspecified, 2001:db8 addresses compressed, v4-mapped peers become IPv4', (t) => {
  const s = parseProcNet(tcp6, 'tcp', true);
  t.is(s.length, 3);
  t.like(s[0], { family: 6, localAddress: '::', state: 'listen' });
  t.like(s[1], { family: 6, localAddress: '2001:db8::1', remoteAddress: '2001:db8:ffff::5', remotePort: 50000 });
  t.like(s[2], { family: 4, localAddress: '192.0.2.1', remoteAddress: '203.0.113.5', remotePort: 50001 });
});

test('udp: bound socket is state close, connected is established', (t) => {
  const udp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  10: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 300 2 0 0
  11: 010200C0:A000 057100CB:0035 01 00000000:00000000 00:00000000 00000000   100        0 301 2 0 0
`;
  const s = parseProcNet(udp, 'udp', true);
  t.like(s[0], { proto: 'udp', localPort: 53, state: 'close' });
  t.like(s[1], { proto: 'udp', remoteAddress: '203.0.113.5', remotePort: 53, state: 'established', uid: 100 });
});

test('garbage and truncated lines are skipped', (t) => {
  t.deepEqual(parseProcNet('nonsense\n   0: 0000:0016 00000000:0000 0A\n   1: ZZZZZZZZ:0016 00000000:0000 0A 0 0 0 0 0 1 0\n', 'tcp'), []);
});

test('formatIPv6 follows RFC 5952', (t) => {
  const b = (hex: string) => hex.match(/../g)!.map((h) => parseInt(h, 16));
  t.is(formatIPv6(b('00000000000000000000000000000000')), '::');
  t.is(formatIPv6(b('00000000000000000000000000000001')), '::1');
  t.is(formatIPv6(b('20010db8000000010000000000000001')), '2001:db8:0:1::1');
  // a single zero group is not compressed; the first of two equal runs is
  t.is(formatIPv6(b('20010db8000100010001000100010001')), '2001:db8:1:1:1:1:1:1');
  t.is(formatIPv6(b('20010db8000000000001000000000001')), '2001:db8::1:0:0:1');
  t.is(formatIPv6(b('20010db8000100000001000100010001')), '2001:db8:1:0:1:1:1:1');
});

test('readProcNet reads this process\'s own listening socket', async (t) => {
  const net = await import('node:net');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const all = await readProcNet();
  t.true(all.some((s) => s.proto === 'tcp' && s.localPort === port && s.state === 'listen' && s.localAddress === '127.0.0.1'));
});
