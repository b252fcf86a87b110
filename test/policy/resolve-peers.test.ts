import test from 'ava';
import type { Inventory } from '../../src/inventory/types.js';
import { AddressMatcher, parseAddress, type Prefix } from '../../src/policy/cidr.js';
import type { PeerRule } from '../../src/api/types.js';
import type { IdentitySet } from '../../src/policy/model.js';
import { addressPools, effectiveEndpointSelector, hashedSetName, resolveContext, resolvePeers, shortHash, type ResolveContext } from '../../src/policy/resolve-peers.js';
import { baseInventory, config, node, pod } from '../helpers/policy-builders.js';

function resolve(rule: PeerRule, ctx: ResolveContext = resolveContext(baseInventory(), config())): { sets: IdentitySet[]; kind: string; notes: readonly string[] } {
  const r = resolvePeers(rule, 'ingress', ctx);
  return { kind: r.kind, notes: r.notes, sets: r.sets.map((n) => ctx.sets.get(n)!) };
}
const one = (rule: PeerRule, ctx?: ResolveContext): IdentitySet => {
  const r = resolve(rule, ctx);
  if (r.sets.length !== 1) throw new Error(`expected one set, got ${r.sets.length}`);
  return r.sets[0]!;
};

test('no peer field = any peer; empty list = nothing, even next to another peer', (t) => {
  t.is(resolve({ toPorts: [] }).kind, 'any');
  t.is(resolve({}).kind, 'any');
  for (const r of [{ entities: [] }, { cidr: [] }, { endpoints: [] }, { cidrSet: [] }, { nodes: [] }, { entities: ['world'], cidr: [] }] as PeerRule[]) {
    const got = resolve(r);
    t.is(got.kind, 'none');
    t.regex(got.notes.join(), /empty peer list/);
  }
});

test('entities: host, remote-node, health, kube-apiserver', (t) => {
  const host = one({ entities: ['host'] });
  t.is(host.name, 'host');
  t.is(host.label, 'entity:host');
  t.deepEqual([host.v4, host.v6], [['192.0.2.1/32'], ['2001:db8::1/128']]);
  t.deepEqual(one({ entities: ['remote-node'] }).v4, ['192.0.2.2/31']);
  t.is(one({ entities: ['remote-node'] }).name, 'remote_node');
  t.deepEqual(one({ entities: ['health'] }).v4, ['192.0.2.101/32', '192.0.2.102/31']);
  const api = one({ entities: ['kube-apiserver'] });
  t.is(api.name, 'kube_apiserver');
  t.deepEqual(api.v4, ['192.0.2.2/32', '192.0.2.50/32']);
});

test('entities: world excludes cluster, all does not, none/init/unmanaged are empty', (t) => {
  const world = one({ entities: ['world'] });
  t.deepEqual([world.v4, world.v6, world.exclude], [['0.0.0.0/0'], ['::/0'], 'cluster']);
  const all = one({ entities: ['all'] });
  t.deepEqual([all.v4, all.v6, all.exclude], [['0.0.0.0/0'], ['::/0'], undefined]);
  for (const e of ['none', 'init', 'unmanaged']) {
    const s = one({ entities: [e] });
    t.deepEqual([s.v4, s.v6], [[], []]);
  }
  t.regex(resolve({ entities: ['init'] }).notes.join(), /init/);
  const w4 = one({ entities: ['world-ipv4'] });
  t.deepEqual([w4.name, w4.v4, w4.v6, w4.exclude], ['world_ipv4', ['0.0.0.0/0'], [], 'cluster']);
});

test('cluster and cluster-mesh: nodes, health, pods and kube-apiserver', (t) => {
  const c = one({ entities: ['cluster'] });
  t.deepEqual(c.v4, ['192.0.2.1/32', '192.0.2.2/31', '192.0.2.50/32', '192.0.2.101/32', '192.0.2.102/31', '198.51.100.0/24']);
  t.deepEqual(c.v6, ['2001:db8::1/128', '2001:db8::2/127', '2001:db8:100::/64']);
  const mesh = one({ entities: ['cluster-mesh'] });
  t.is(mesh.name, 'cluster_mesh');
  t.deepEqual([mesh.v4, mesh.v6], [c.v4, c.v6]);
});

test('exclusion pools: pod CIDRs are cluster; external apiserver is not; nodes mode keeps node IPs matchable', (t) => {
  const pools = addressPools(baseInventory());
  const has = (ps: readonly Prefix[], s: string): boolean => new AddressMatcher(ps).has(parseAddress(s));
  t.true(has(pools.cluster, '192.0.2.1'));
  t.false(has(pools.cluster, '192.0.2.50'), 'external kube-apiserver stays world/CIDR-matchable');
  t.true(has(pools.clusterEntity, '192.0.2.50'));
  t.true(has(pools.cluster, '198.51.100.200'), 'any address of a cluster pod CIDR, not only known pods');
  t.true(has(pools.cluster, '192.0.2.102'), 'health');
  t.false(has(pools.clusterNonNode, '192.0.2.1'));
  t.true(has(pools.clusterNonNode, '198.51.100.200'));
  t.false(has(pools.clusterNonNode, '192.0.2.2'));
  t.true(has(pools.clusterNonNode, '192.0.2.101'));
});

test('CIDR peers: canonical, stable names, exclusion by match mode, /0 = family world', (t) => {
  const ctx = resolveContext(baseInventory(), config());
  const a = one({ cidr: ['10.1.2.3/8'] }, ctx);
  t.is(a.label, 'cidr:10.0.0.0/8');
  t.regex(a.name, /^cidr_[0-9a-f]{8}$/);
  t.is(a.exclude, 'cluster');
  t.deepEqual(a.v4, ['10.0.0.0/8']);
  t.is(one({ cidr: ['10.0.0.0/8'] }, ctx).name, a.name, 'same prefix written differently shares the set');
  t.is(one({ cidrSet: [{ cidr: '10.0.0.0/8' }] }, ctx).name, a.name, 'CIDRSet without except = the same peer');
  t.is(one({ cidr: ['10.0.0.0/8'] }, resolveContext(baseInventory({ pods: [] }), config())).name, a.name, 'address churn never renames');
  const nodes = one({ cidr: ['192.0.2.0/24'] }, resolveContext(baseInventory(), config({ policyCIDRMatchMode: 'nodes' })));
  t.is(nodes.exclude, 'cluster_non_node');
  const zero = one({ cidr: ['0.0.0.0/0'] }, resolveContext(baseInventory(), config({ policyCIDRMatchMode: 'nodes' })));
  t.deepEqual([zero.name, zero.v4, zero.v6, zero.exclude], ['world_ipv4', ['0.0.0.0/0'], [], 'cluster']);
  t.is(one({ cidr: ['::/0'] }).name, 'world_ipv6');
});

test('CIDRSet except carves out within the rule', (t) => {
  const s = one({ cidrSet: [{ cidr: '10.0.0.0/8', except: ['10.128.0.0/9', '10.0.0.0/16'] }] });
  t.is(s.label, 'cidr:10.0.0.0/8 except 10.0.0.0/16,10.128.0.0/9');
  t.deepEqual(s.v4, ['10.1.0.0/16', '10.2.0.0/15', '10.4.0.0/14', '10.8.0.0/13', '10.16.0.0/12', '10.32.0.0/11', '10.64.0.0/10']);
  const w = one({ cidrSet: [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }] });
  t.is(w.exclude, 'cluster');
  t.false(w.v4.includes('10.0.0.0/8'));
  const g = resolve({ cidrSet: [{ cidrGroupRef: 'office' }] });
  t.is(g.kind, 'none');
  t.regex(g.notes.join(), /CiliumCIDRGroup/);
});

test('endpoint selectors select only local-cluster pods by default', (t) => {
  const dns = one({ endpoints: [{ matchLabels: { 'k8s-app': 'kube-dns' } }] });
  t.regex(dns.name, /^endpoints_[0-9a-f]{8}$/);
  t.is(dns.kind, 'endpoints');
  t.deepEqual([dns.v4, dns.v6], [['198.51.100.10/32'], ['2001:db8:100::10/128']]);
  const all = one({ endpoints: [{}] });
  t.deepEqual(all.v4, ['198.51.100.10/32', '198.51.100.20/32', '198.51.100.30/32']);
  t.deepEqual(one({ endpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'default' } }] }).v4, ['198.51.100.20/32']);
  t.deepEqual(one({ endpoints: [{ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }] }).v4, ['198.51.100.10/32', '198.51.100.30/32']);
});

test('cluster filter: other clusters excluded unless the selector constrains the key', (t) => {
  const inv: Inventory = baseInventory({
    pods: [pod('default', 'a', {}, ['198.51.100.1']), { ...pod('default', 'b', {}, ['198.51.100.2']), labels: { 'io.kubernetes.pod.namespace': 'default', 'io.cilium.k8s.policy.cluster': 'other' } }],
  });
  const ctx = resolveContext(inv, config());
  t.deepEqual(one({ endpoints: [{}] }, ctx).v4, ['198.51.100.1/32']);
  t.deepEqual(one({ endpoints: [{ matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }] }] }, ctx).v4, ['198.51.100.1/32', '198.51.100.2/32']);
});

test('effectiveEndpointSelector adds namespace and cluster requirements unless mentioned or reserved', (t) => {
  t.deepEqual(effectiveEndpointSelector({}, 'c1').matchExpressions, [
    { key: 'k8s:io.kubernetes.pod.namespace', operator: 'Exists' },
    { key: 'k8s:io.cilium.k8s.policy.cluster', operator: 'In', values: ['c1'] },
  ]);
  t.deepEqual(effectiveEndpointSelector({ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'x' } }, 'c1').matchExpressions, [
    { key: 'k8s:io.cilium.k8s.policy.cluster', operator: 'In', values: ['c1'] },
  ]);
  const reserved = { matchLabels: { 'reserved:host': '' } };
  t.is(effectiveEndpointSelector(reserved, 'c1'), reserved);
});

test('endpoint selectors with reserved: keys select reserved identities', (t) => {
  t.deepEqual(one({ endpoints: [{ matchLabels: { 'reserved:host': '' } }] }).v4, ['192.0.2.1/32']);
  t.deepEqual(one({ endpoints: [{ matchLabels: { 'reserved:remote-node': '' } }] }).v4, ['192.0.2.2/31']);
});

test('host-network pods are not pods (inventory leaves them out) and pod-template-hash is filtered', (t) => {
  const inv = baseInventory({ pods: [pod('kube-system', 'dns', { 'k8s-app': 'kube-dns', 'pod-template-hash': 'abc' }, ['198.51.100.9'])] });
  const ctx = resolveContext(inv, config());
  t.deepEqual(one({ endpoints: [{ matchLabels: { 'pod-template-hash': 'abc' } }] }, ctx).v4, []);
  t.deepEqual(one({ endpoints: [{ matchLabels: { 'k8s-app': 'kube-dns' } }] }, ctx).v4, ['198.51.100.9/32']);
});

test('fromNodes selects remote nodes by node labels, never this node', (t) => {
  const inv = baseInventory({
    self: node('node-a', { labels: { role: 'worker' }, addresses: ['192.0.2.1'] }),
    remoteNodes: [node('node-b', { labels: { role: 'worker' }, addresses: ['192.0.2.2'] }), node('node-c', { labels: { role: 'db' }, addresses: ['192.0.2.3'] })],
  });
  const ctx = resolveContext(inv, config({ enableNodeSelectorLabels: true }));
  const s = one({ nodes: [{ matchLabels: { role: 'worker' } }] }, ctx);
  t.is(s.kind, 'nodes');
  t.deepEqual(s.v4, ['192.0.2.2/32']);
  t.deepEqual(one({ nodes: [{}] }, ctx).v4, ['192.0.2.2/31']);
});

test('several peers of one rule: one set each, duplicates shared', (t) => {
  const r = resolve({ entities: ['remote-node', 'health', 'remote-node'] });
  t.deepEqual(r.sets.map((s) => s.name), ['remote_node', 'health']);
});

test('unsupported peers select nothing with a note', (t) => {
  for (const r of [{ fqdns: [{}] }, { services: [{}] }, { groups: [{}] }] as PeerRule[]) {
    const got = resolve(r);
    t.is(got.kind, 'none');
    t.regex(got.notes.join(), /not supported/);
  }
});

test('hashed set names: kind + 8 hex digits of the label; a colliding label gets 16 digits', (t) => {
  const ctx = resolveContext(baseInventory(), config());
  const label = 'cidr:10.0.0.0/8';
  const name = hashedSetName(ctx, 'cidr', label);
  t.is(name, `cidr_${shortHash(label)}`);
  ctx.sets.set(name, { name, label: 'cidr:something-else', kind: 'cidr', v4: [], v6: [] });
  t.is(hashedSetName(ctx, 'cidr', label), `cidr_${shortHash(label, 16)}`);
});
