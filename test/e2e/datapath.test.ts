// Datapath behaviour with real packets: live connections cut when their allow
// goes away, neighbour discovery under default deny, audit mode recording.

import test from 'ava';
import { readAuditRecords } from '../../src/agent/audit-records.js';
import { applyModel } from '../../src/nft/apply.js';
import { renderRuleset } from '../../src/nft/render.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import * as b from '../helpers/model-builders.js';
import { Lab, nftPath, nodeV4, nodeV6 } from './lab.js';

const table = 'nodewall';

function allowPort(podV4: readonly string[], port: number) {
  return b.model({
    sets: [b.identity('pods', podV4, [], { kind: 'endpoints' })],
    ingress: b.enforced([b.allow('pods', [b.tcp(port)], 'spec.ingress[0]')]),
  });
}

test('removing an allow cuts a live TCP connection; unrelated changes keep it', async (t) => {
  const lab = await Lab.create(t, 'cut');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await applyModel(allowPort(['198.51.100.5/32', '198.51.100.6/32'], 7000), opts);
  const c1 = await lab.openIngress('198.51.100.5', 7000);
  const c2 = await lab.openIngress('198.51.100.6', 7000);
  t.true(await lab.echo(c1, 2000));
  t.true(await lab.echo(c2, 2000));

  // Element delta: 198.51.100.6 leaves the identity; its established connection stops, the other one lives.
  const d = await applyModel(allowPort(['198.51.100.5/32'], 7000), opts);
  t.is(d.kind, 'delta');
  t.true(await lab.echo(c1, 2000));
  t.false(await lab.echo(c2));

  // Full replace that drops the allow: the last connection stops too.
  const f = await applyModel(allowPort(['198.51.100.5/32'], 7001), opts);
  t.is(f.kind, 'full');
  t.false(await lab.echo(c1));
  await lab.closeConn(c1);
  await lab.closeConn(c2);
});

function ndModel(alwaysAllow: readonly number[]) {
  return b.model({
    sets: [b.identity('pods', [], ['2001:db8:100::5/128'], { kind: 'endpoints' })],
    ingress: b.enforced([b.allow('pods', [b.tcp(22), b.icmp('ipv6', 128)], 'spec.ingress[0]')]),
    egress: b.enforced([]),
    datapath: { icmpv6AlwaysAllow: alwaysAllow },
  });
}

test('ICMPv6 neighbour discovery survives default deny in both directions', async (t) => {
  const lab = await Lab.create(t, 'nd');
  const flush = async () => {
    await lab.exec('node', 'ip', ['-6', 'neigh', 'flush', 'all']);
    await lab.exec('peer', 'ip', ['-6', 'neigh', 'flush', 'all']);
  };
  await lab.addPeerAddress('2001:db8:100::5');
  await lab.load(renderRuleset(ndModel(b.datapathDefaults.icmpv6AlwaysAllow), { table, mode: 'enforce' }));
  await flush();
  t.is(await lab.probeSure({ direction: 'ingress', peer: '2001:db8:100::5', proto: 'icmpv6', icmpType: 128 }, 'allow'), 'allow');
  await flush();
  t.is(await lab.probeSure({ direction: 'ingress', peer: '2001:db8:100::5', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  const neigh = await lab.exec('node', 'ip', ['-6', 'neigh', 'show', '2001:db8:100::5']);
  t.regex(neigh, /lladdr/);
  // Anything else is still denied, and the node's own egress is under default deny.
  t.is(await lab.probe({ direction: 'ingress', peer: '2001:db8:100::5', proto: 'tcp', port: 23 }), 'deny');
  t.is(await lab.probe({ direction: 'egress', peer: '2001:db8:100::5', proto: 'tcp', port: 22 }), 'deny');

  // Between the link-local addresses of the veth pair, with echo allowed from any peer.
  const linkLocal = async (side: 'node' | 'peer', dev: string) =>
    /inet6 (fe80::[0-9a-f:]+)\/64/.exec(await lab.exec(side, 'ip', ['-6', 'addr', 'show', 'dev', dev, 'scope', 'link']))?.[1] ?? '';
  const nodeLL = await linkLocal('node', 'nw0');
  const peerLL = await linkLocal('peer', 'nw1');
  t.regex(nodeLL, /^fe80::/);
  const echoAnyone = b.model({ ingress: b.enforced([b.allow(null, [b.icmp('ipv6', 128)], 'spec.ingress[0]')]), egress: b.enforced([b.allow(null, [b.icmp('ipv6', 128)], 'spec.egress[0]')]) });
  await lab.load(renderRuleset(echoAnyone, { table, mode: 'enforce' }));
  await flush();
  t.regex(await lab.exec('peer', 'ping', ['-6', '-n', '-c1', '-W3', `${nodeLL}%nw1`]), /1 received/);
  await flush();
  t.regex(await lab.exec('node', 'ping', ['-6', '-n', '-c1', '-W3', `${peerLL}%nw0`]), /1 received/);

  // Control: without the always-allowed ICMPv6 types, the same flow dies once the neighbour cache is empty.
  await lab.load(renderRuleset(ndModel([]), { table, mode: 'enforce' }));
  await flush();
  t.is(await lab.probe({ direction: 'ingress', peer: '2001:db8:100::5', proto: 'tcp', port: 22 }), 'deny');
  t.not(nodeV6, '2001:db8:100::5');
});

test('audit mode accepts would-be drops and records peer, protocol and port', async (t) => {
  const lab = await Lab.create(t, 'audit');
  const m = b.model({
    sets: [
      b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' }),
      b.identity('pods', ['198.51.100.5/32'], [], { kind: 'endpoints' }),
    ],
    exclusions: { cluster: { v4: ['198.51.100.0/24'], v6: [] }, cluster_non_node: { v4: [], v6: [] } },
    ingress: b.enforced([b.deny('pods', [b.tcp(2222)], 'spec.ingressDeny[0]'), b.allow('world', [b.tcp(22)], 'spec.ingress[0]')]),
    egress: b.enforced([]),
  });
  const r = await applyModel(m, { nftPath, table, mode: 'audit', netns: lab.nodeNs });
  t.is(r.kind, 'full');
  const probes = [
    { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 2222 }, // deny entry
    { direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 8080 }, // default deny
    { direction: 'ingress', peer: '203.0.113.7', proto: 'udp', port: 5353 },
    { direction: 'ingress', peer: '203.0.113.7', proto: 'icmp', icmpType: 8 },
    { direction: 'ingress', peer: '2001:db8:ffff::7', proto: 'icmpv6', icmpType: 128 },
    { direction: 'egress', peer: '203.0.113.9', proto: 'tcp', port: 9999 },
    { direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, // allowed: no record
  ] as const;
  for (const p of probes) t.is(await lab.probeSure(p, 'allow'), 'allow', JSON.stringify(p));
  const records = (await readAuditRecords(nftPath, table, lab.nodeNs)).map((x) => `${x.direction} ${x.peer} ${x.proto} ${x.port}`).sort();
  t.deepEqual(records, [
    'egress 203.0.113.9 6 9999',
    'ingress 198.51.100.5 6 2222',
    'ingress 2001:db8:ffff::7 58 32768',
    'ingress 203.0.113.7 1 2048',
    'ingress 203.0.113.7 17 5353',
    'ingress 203.0.113.7 6 8080',
  ]);
  const enforce = await applyModel(m, { nftPath, table, mode: 'enforce', netns: lab.nodeNs });
  t.is(enforce.kind, 'full');
  t.is(await lab.probe(probes[0]), 'deny');
  t.is(await lab.probe(probes[1]), 'deny');
});

test("the node's own addresses talk over lo under deny-all, as trace says; a peer does not", async (t) => {
  const lab = await Lab.create(t, 'lo');
  const m = b.model({ ingress: b.enforced([]), egress: b.enforced([]) });
  await lab.load(renderRuleset(m, { table, mode: 'enforce' }));
  for (const direction of ['ingress', 'egress'] as const) {
    const v = evaluate(m, { direction, peer: nodeV4, proto: 'tcp', port: 7100 });
    t.is(v.verdict, 'allow');
    t.is(v.decidedBy, 'datapath');
    t.is(evaluate(m, { direction, peer: '198.51.100.5', proto: 'tcp', port: 7100 }).verdict, 'deny');
  }
  // One TCP connection from the node to its own address (both hooks see it on lo).
  const py = `import socket\ns=socket.socket(); s.bind(('${nodeV4}',7100)); s.listen(1)\nc=socket.create_connection(('${nodeV4}',7100),timeout=2)\nprint('connected')`;
  t.regex(await lab.exec('node', 'python3', ['-c', py]), /connected/);
  t.regex(await lab.exec('node', 'ping', ['-n', '-c1', '-W2', '-I', nodeV4, nodeV4]), /1 received/);
  t.regex(await lab.exec('node', 'ping', ['-6', '-n', '-c1', '-W2', nodeV6]), /1 received/);
  // Control: the same deny-all drops a real peer's ping.
  await lab.addPeerAddress('198.51.100.5');
  await t.throwsAsync(lab.exec('peer', 'ping', ['-n', '-c1', '-W1', '-I', '198.51.100.5', nodeV4]));
});
