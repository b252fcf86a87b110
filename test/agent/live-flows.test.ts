import test from 'ava';
import { liveFlows, parseAddress, representativeAddress, representativePeers } from '../../src/agent/live-flows.js';
import { model, set, sock } from './fixtures.js';

test('an established session on a listening port is ingress to the local port', (t) => {
  const flows = liveFlows([
    sock({ state: 'listen', localAddress: '0.0.0.0', localPort: 22 }),
    sock({ state: 'established', localPort: 22, remoteAddress: '203.0.113.5', remotePort: 50000 }),
  ], model({ sets: { world: set('world', ['0.0.0.0/0']) } }));
  const conn = flows.filter((f) => f.kind === 'connection');
  t.deepEqual(conn.map((f) => f.flow), [{ direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22 }]);
  t.is(conn[0]?.local, '192.0.2.1:22');
});

test('an outbound connection is egress to the remote port; connected UDP too', (t) => {
  const flows = liveFlows([
    sock({ state: 'established', localPort: 40000, remoteAddress: '198.51.100.7', remotePort: 443 }),
    sock({ proto: 'udp', state: 'established', localPort: 40001, remoteAddress: '192.0.2.53', remotePort: 53 }),
    sock({ state: 'time-wait', localPort: 40002, remoteAddress: '198.51.100.8', remotePort: 80 }),
  ], model());
  t.deepEqual(flows.map((f) => f.flow), [
    { direction: 'egress', peer: '198.51.100.7', proto: 'tcp', port: 443 },
    { direction: 'egress', peer: '192.0.2.53', proto: 'udp', port: 53 },
  ]);
});

test('loopback connections and listeners are skipped', (t) => {
  const flows = liveFlows([
    sock({ state: 'listen', localAddress: '127.0.0.1', localPort: 631 }),
    sock({ state: 'established', localAddress: '127.0.0.1', localPort: 631, remoteAddress: '127.0.0.1', remotePort: 50000 }),
  ], model());
  t.deepEqual(flows, []);
});

test('a listener is reported once per identity set with addresses of its family', (t) => {
  const m = model({
    sets: {
      world: set('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' }),
      apiserver: set('apiserver', ['192.0.2.50/32']),
      v6only: set('v6only', [], ['2001:db8:ffff::/48']),
    },
    exclusions: { cluster: { v4: ['0.0.0.0/8'], v6: [] }, cluster_non_node: { v4: [], v6: [] } },
  });
  const flows = liveFlows([sock({ state: 'listen', localAddress: '0.0.0.0', localPort: 22 })], m);
  t.deepEqual(flows.map((f) => [f.peerSet, f.flow.peer]), [['apiserver', '192.0.2.50'], ['world', '203.0.113.1']]);
});

test('a "::" listener is dual-stack; a family without sets gets one "any" line', (t) => {
  const m = model({ sets: { v6only: set('v6only', [], ['2001:db8:ffff::/48']) } });
  t.deepEqual(representativePeers(m, { family: 6, localAddress: '::' }), [['203.0.113.1', 'any'], ['2001:db8:ffff::1', 'v6only']]);
  t.deepEqual(representativePeers(m, { family: 6, localAddress: '2001:db8::1' }), [['2001:db8:ffff::1', 'v6only']]);
});

test('bound UDP sockets are listeners', (t) => {
  const flows = liveFlows([sock({ proto: 'udp', state: 'close', localAddress: '0.0.0.0', localPort: 53 })], model());
  t.deepEqual(flows.map((f) => f.flow), [{ direction: 'ingress', peer: '203.0.113.1', proto: 'udp', port: 53 }]);
});

test('the representative address steps out of excluded ranges', (t) => {
  const m = model({ exclusions: { cluster: { v4: ['198.51.100.0/25'], v6: [] }, cluster_non_node: { v4: [], v6: [] } } });
  t.is(representativeAddress(set('c', ['198.51.100.0/24'], [], { exclude: 'cluster' }), 4, m), '198.51.100.129');
  t.is(representativeAddress(set('c', ['198.51.100.0/25'], [], { exclude: 'cluster' }), 4, m), undefined);
  t.is(representativeAddress(set('h', ['192.0.2.7/32']), 4, m), '192.0.2.7');
});

test('parseAddress handles compressed and embedded-IPv4 forms and rejects junk', (t) => {
  t.is(parseAddress('2001:db8::1'), 0x20010db8000000000000000000000001n);
  t.is(parseAddress('::ffff:192.0.2.1'), 0xffffc0000201n);
  t.is(parseAddress('192.0.2.1'), 0xc0000201n);
  t.is(parseAddress('1:2:3:4:5:6:7:8:9'), undefined);
  t.is(parseAddress('192.0.2.256'), undefined);
  t.is(parseAddress('2001:db8::1::2'), undefined);
});

test('a dual-stack listener makes its IPv4 sessions ingress', (t) => {
  const flows = liveFlows([
    sock({ state: 'listen', family: 6, localAddress: '::', localPort: 22 }),
    sock({ state: 'established', localPort: 22, remoteAddress: '203.0.113.5', remotePort: 50000 }),
  ], model());
  t.deepEqual(flows.filter((f) => f.kind === 'connection').map((f) => f.flow.direction), ['ingress']);
});
