// resolve-peers.ts holds pod addresses as numbers (session 15): addressValueOf instead of a Prefix per
// address, pools merged from host lists, pod identities holding their addresses as numbers, endpoint
// sets formatted straight from the merge. Each must equal the old Prefix path (test/helpers/pools-reference.ts).
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import type { LabelSelector } from '../../src/api/types.js';
import type { Inventory, PodInfo } from '../../src/inventory/types.js';
import { formatPrefix } from '../../src/policy/cidr.js';
import { addressOf, addressPools, addressValueOf, resolveContext, resolvePeers } from '../../src/policy/resolve-peers.js';
import { addressOfReference, addressPoolsReference, endpointSetReference } from '../helpers/pools-reference.js';
import { baseInventory, config, node, pod } from '../helpers/policy-builders.js';

// Address texts as inventories and hostile inputs carry them: canonical and not, both families, mapped and
// compatible IPv6, zones, interface lengths ("/24"), upper case, leading zeros, garbage.
const octet = fc.integer({ min: 0, max: 255 });
const v4Text = fc.oneof(
  fc.tuple(fc.constantFrom('198.51.100', '192.0.2', '203.0.113'), octet).map(([n, o]) => `${n}.${o}`),
  fc.tuple(octet, octet, octet, octet).map((os) => os.join('.')),
);
const v6Text = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((n) => `2001:db8:100::${n.toString(16)}`),
  fc.integer({ min: 0, max: 0xffff }).map((n) => `2001:db8:100:0:0:0:0:${n.toString(16)}`),
  fc.integer({ min: 0, max: 0xffff }).map((n) => `2001:DB8:100::${n.toString(16).toUpperCase()}`),
  fc.integer({ min: 0, max: 0xffff }).map((n) => `2001:0db8:0100:0000:0000:0000:0000:${n.toString(16).padStart(4, '0')}`),
  v4Text.map((a) => `::ffff:${a}`),
  v4Text.map((a) => `::${a}`),
  fc.constantFrom('::', '::1', 'fe80::1%eth0', '2001:db8::1%1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'),
);
const addressText = fc.oneof(
  { weight: 4, arbitrary: v4Text },
  { weight: 3, arbitrary: v6Text },
  { weight: 1, arbitrary: fc.tuple(fc.oneof(v4Text, v6Text), fc.constantFrom('/24', '/32', '/64', '/', '/x', '/999')).map(([a, l]) => a + l) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '01.2.3.4', '1.2.3', '1.2.3.4.5', '256.1.1.1', ':::', '1::2::3', 'x', '1.2.3.4 ', '0x1.2.3.4', '::ffff:1.2.3.04') },
);

testProp('addressValueOf and addressOf read what the old addressOf read', [addressText], (t, s) => {
  const want = addressOfReference(s);
  t.deepEqual(addressOf(s), want, s);
  const v = addressValueOf(s);
  if (want === undefined) t.is(v, undefined, s);
  else t.is(v, want.family === 'ipv4' ? Number(want.bits) : want.bits, s);
}, { numRuns: 5000 });

const labelSets = fc.record({ app: fc.constantFrom('web', 'api', 'db'), tier: fc.constantFrom('a', 'b') }, { requiredKeys: ['app'] });
const pods = fc.array(fc.tuple(fc.constantFrom('default', 'prod', 'kube-system'), labelSets, fc.array(addressText, { maxLength: 3 })), { maxLength: 25 })
  .map((ps) => ps.map(([ns, labels, addrs], i): PodInfo => pod(ns, `p-${i}`, labels, addrs)));
const inventories: fc.Arbitrary<Inventory> = fc.record({
  pods,
  podCIDRs: fc.array(fc.constantFrom('198.51.100.0/25', '198.51.100.128/26', '2001:db8:100::/120', '0.0.0.0/0', 'bad/8', '198.51.100.7/24'), { maxLength: 2 }),
  clusterPodCIDRs: fc.array(fc.constantFrom('198.51.100.0/24', '2001:db8:100::/64', '::/0', '203.0.113.0/28'), { maxLength: 2 }),
  remote: fc.array(fc.array(addressText, { maxLength: 2 }), { maxLength: 3 }),
}).map(({ pods: ps, podCIDRs, clusterPodCIDRs, remote }) => baseInventory({
  pods: ps,
  clusterPodCIDRs,
  remoteNodes: remote.map((addresses, i) => node(`node-r${i}`, { addresses, podCIDRs: i === 0 ? podCIDRs : [] })),
}));

const formatted = (pools: ReturnType<typeof addressPools>): Record<string, string[]> =>
  Object.fromEntries(Object.entries(pools).map(([k, v]) => [k, (v as Parameters<typeof formatPrefix>[0][]).map(formatPrefix)]));

testProp('address pools equal the old Prefix-per-address pools', [inventories], (t, inv) => {
  const got = addressPools(inv);
  const want = addressPoolsReference(inv);
  t.deepEqual(formatted(got), formatted(want));
  t.deepEqual(got, want);
}, { numRuns: 400 });

const selectors: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constant({}),
  fc.constantFrom('web', 'api', 'db').map((app) => ({ matchLabels: { app } })),
  fc.constantFrom('default', 'prod').map((ns) => ({ matchLabels: { 'k8s:io.kubernetes.pod.namespace': ns } })),
  fc.constant({ matchExpressions: [{ key: 'tier', operator: 'Exists' as const }] }),
  fc.constant({ matchLabels: { 'reserved:host': '' } }),
  fc.constant({ matchExpressions: [{ key: 'reserved:remote-node', operator: 'DoesNotExist' as const }] }),
);

testProp('endpoint sets equal the old path (candidates as Prefix lists, flattened, merged, formatted)', [inventories, fc.array(selectors, { minLength: 1, maxLength: 4 })], (t, inv, sels) => {
  const cfg = config();
  const ctx = resolveContext(inv, cfg);
  const r = resolvePeers({ endpoints: sels }, 'ingress', ctx);
  for (const sel of sels) {
    // The selector's set, resolved already by the rule above (same context: same name).
    const name = resolvePeers({ endpoints: [sel] }, 'ingress', ctx).sets[0]!;
    t.true(r.sets.includes(name));
    const got = ctx.sets.get(name)!;
    t.deepEqual({ v4: got.v4, v6: got.v6 }, endpointSetReference(inv, cfg, sel), JSON.stringify(sel));
  }
}, { numRuns: 300 });

test('pod identities are cached per inventory: a new inventory with a moved address gives the new set, the old one keeps its own', (t) => {
  const sel: LabelSelector = { matchLabels: { app: 'web' } };
  const before = baseInventory();
  const after = baseInventory({ pods: before.pods.map((p) => (p.name === 'web-1' ? { ...p, addresses: ['198.51.100.21', '2001:db8:100::21'] } : p)) });
  const setOf = (inv: Inventory): { v4: readonly string[]; v6: readonly string[] } => {
    const ctx = resolveContext(inv, config());
    const s = ctx.sets.get(resolvePeers({ endpoints: [sel] }, 'ingress', ctx).sets[0]!)!;
    return { v4: s.v4, v6: s.v6 };
  };
  t.deepEqual(setOf(before), { v4: ['198.51.100.20/32'], v6: [] });
  t.deepEqual(setOf(after), { v4: ['198.51.100.21/32'], v6: ['2001:db8:100::21/128'] });
  t.deepEqual(setOf(before), { v4: ['198.51.100.20/32'], v6: [] });
  t.deepEqual(setOf(after), endpointSetReference(after, config(), sel));
  // The same inventory under another label filter gets its own identities: a label Cilium's filter drops
  // selects the pod only with labelFilter none.
  const hashed = baseInventory({ pods: [pod('default', 'h-1', { app: 'web', 'controller-revision-hash': 'abc' }, ['198.51.100.40'])] });
  const byHash: LabelSelector = { matchLabels: { 'controller-revision-hash': 'abc' } };
  const hashSet = (labelFilter: 'cilium' | 'none'): readonly string[] => {
    const c = resolveContext(hashed, config({ labelFilter }));
    return c.sets.get(resolvePeers({ endpoints: [byHash] }, 'ingress', c).sets[0]!)!.v4;
  };
  t.deepEqual(hashSet('cilium'), []);
  t.deepEqual(hashSet('none'), ['198.51.100.40/32']);
  t.deepEqual(hashSet('cilium'), endpointSetReference(hashed, config({ labelFilter: 'cilium' }), byHash).v4);
  t.deepEqual(hashSet('none'), endpointSetReference(hashed, config({ labelFilter: 'none' }), byHash).v4);
});
