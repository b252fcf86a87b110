// buildInventory shares two things it used to copy (memory at cluster scale): a node's labels are the
// Kubernetes source's frozen label map itself when they are that map unchanged, and the map of node
// addresses to owners is nodeByAddress when both hold the same pairs. Neither may change a result:
// objects whose label maps are frozen shared ones build the same inventory as plain copies, and every
// pod address that is some node's is left out with a warning naming the node that owns it last in
// [this node, other nodes by name], whether or not the two maps agree (local addresses, shared addresses).

import test from 'ava';
import fc from 'fast-check';
import type { KubeObject } from '../../src/api/types.js';
import { buildInventory, updateChangedObjects } from '../../src/inventory/build-inventory.js';
import { parseConfig } from '../../src/inventory/config.js';

const cfg = parseConfig('clusterName: prod\n', 'c.yaml');
const addrArb = fc.constantFrom('192.0.2.1', '192.0.2.2', '192.0.2.3', '2001:db8::1', '198.51.100.9');
const labelsArb = fc.dictionary(fc.constantFrom('zone', 'pool', '__proto__', 'role'), fc.oneof(fc.constantFrom('a', 'b'), fc.integer({ min: 0, max: 3 })), { maxKeys: 3 });

const nodeArb = fc.record({
  name: fc.constantFrom('node-a', 'node-b', 'node-c'),
  kind: fc.constantFrom('Node', 'CiliumNode'),
  labels: fc.option(labelsArb, { nil: undefined }),
  addresses: fc.array(addrArb, { maxLength: 2 }),
});
const podArb = fc.record({ name: fc.constantFrom('p1', 'p2', 'p3'), addresses: fc.array(addrArb, { minLength: 1, maxLength: 2 }) });

function nodeObject(n: { name: string; kind: string; labels: Record<string, unknown> | undefined; addresses: string[] }, freeze: boolean): KubeObject {
  const labels = n.labels === undefined ? undefined : freeze ? Object.freeze(Object.fromEntries(Object.entries(n.labels))) : Object.fromEntries(Object.entries(n.labels));
  const metadata = { name: n.name, ...(labels === undefined ? {} : { labels }) };
  return (
    n.kind === 'Node'
      ? { apiVersion: 'v1', kind: 'Node', metadata, status: { addresses: n.addresses.map((address) => ({ type: 'InternalIP', address })) } }
      : { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata, spec: { addresses: n.addresses.map((ip) => ({ type: 'InternalIP', ip })) } }
  ) as unknown as KubeObject;
}

const podObject = (p: { name: string; addresses: string[] }, i: number): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${p.name}-${i}`, namespace: 'ns' }, status: { podIPs: p.addresses.map((ip) => ({ ip })) } }) as unknown as KubeObject;

test('property: frozen shared label maps build the same inventory as plain copies; pod addresses of nodes go to the last owner', (t) => {
  fc.assert(
    fc.property(fc.array(nodeArb, { maxLength: 5 }), fc.array(podArb, { maxLength: 4 }), fc.array(addrArb, { maxLength: 2 }), (nodes, pods, local) => {
      const opts = { nodeName: 'node-a', localAddresses: local };
      const build = (freeze: boolean) => buildInventory([...nodes.map((n) => nodeObject(n, freeze)), ...pods.map(podObject)], cfg, opts);
      const frozen = build(true);
      const plain = build(false);
      t.deepEqual(frozen.inventory, plain.inventory);
      t.deepEqual(frozen.problems, plain.problems);
      // The owner of each node address, as documented: the last of [self, ...remote nodes by name] that has it.
      const owner = new Map<string, string>();
      for (const n of [frozen.inventory.self, ...frozen.inventory.remoteNodes]) for (const a of n.addresses) owner.set(a, n.name);
      pods.forEach((p, i) => {
        const info = frozen.inventory.pods.find((x) => x.name === `${p.name}-${i}`);
        const kept = [...new Set(p.addresses)].filter((a) => !owner.has(a));
        t.deepEqual(info === undefined ? [] : [...info.addresses].sort(), kept.sort());
        for (const a of new Set(p.addresses)) {
          const o = owner.get(a);
          if (o === undefined) continue;
          t.true(
            frozen.problems.some((x) => x.code === 'inventory/pod-ip-is-node-ip' && x.message.includes(`Pod ns/${p.name}-${i}: address ${a} is also an address of node ${o};`)),
            `warning for ${a} owned by ${o}`,
          );
        }
      });
      // A pod event after the build resolves against the same owners.
      if (pods.length > 0) {
        const p = pods[0] as { name: string; addresses: string[] };
        const moved = podObject({ name: p.name, addresses: [...p.addresses].reverse() }, 0);
        const objs = [...nodes.map((n) => nodeObject(n, true)), ...pods.map(podObject)];
        const next = [...objs];
        next[nodes.length] = moved;
        const upd = updateChangedObjects(frozen, { objects: next }, { gone: [objs[nodes.length] as KubeObject], come: [moved] });
        const full = buildInventory(next, cfg, opts);
        if (upd !== undefined) t.deepEqual([...upd.inventory.pods], [...full.inventory.pods]);
      }
    }),
    { numRuns: 300 },
  );
});

test("a node's labels are the source's frozen label map itself when taken unchanged; a copy when layered or not all strings", (t) => {
  const shared = Object.freeze({ zone: 'a', pool: 'p1' });
  const node = (name: string, labels: unknown, kind = 'Node'): KubeObject => ({ apiVersion: 'v1', kind, metadata: { name, labels }, status: { addresses: [] } }) as unknown as KubeObject;
  const inv = buildInventory([node('node-a', shared), node('node-b', shared), node('node-c', Object.freeze({ zone: 1 })), node('node-d', { zone: 'a' })], cfg, { nodeName: 'node-x' }).inventory;
  const byName = new Map(inv.remoteNodes.map((n) => [n.name, n]));
  t.is(byName.get('node-a')?.labels, shared);
  t.is(byName.get('node-b')?.labels, shared);
  t.deepEqual(byName.get('node-c')?.labels, { zone: '1' }, 'a number value: converted in a copy');
  t.deepEqual(byName.get('node-d')?.labels, { zone: 'a' });
  t.not(byName.get('node-d')?.labels as object, shared);
  // Two Node objects of one name: the second layered over a copy of the first, the shared map unchanged.
  const twice = buildInventory([node('node-a', shared), node('node-a', Object.freeze({ zone: 'b', extra: 'x' }))], cfg, { nodeName: 'node-x' }).inventory;
  t.deepEqual(twice.remoteNodes[0]?.labels, { zone: 'b', pool: 'p1', extra: 'x' });
  t.deepEqual(shared, { zone: 'a', pool: 'p1' });
});

test("the index keeps the caller's source holder when given one (a source that makes its list only when read), else the array", (t) => {
  const objs = [nodeObject({ name: 'node-a', kind: 'Node', labels: undefined, addresses: ['192.0.2.1'] }, false)];
  let reads = 0;
  const holder = {
    get objects() {
      reads++;
      return objs;
    },
  };
  const withHolder = buildInventory(objs, cfg, { nodeName: 'node-a', source: holder });
  t.is(withHolder.index.source, holder);
  t.is(reads, 0, 'building does not read the holder');
  t.is(buildInventory(objs, cfg, { nodeName: 'node-a' }).index.source.objects, objs);
});
