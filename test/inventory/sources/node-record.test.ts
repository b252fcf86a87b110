// NodeRecord (pod-record.ts): the Kubernetes source's compact Nodes must read, serialise, compare and
// build the inventory exactly as the slim objects they replace (slimNode, kept as the reference).

import test from 'ava';
import fc from 'fast-check';
import type { KubeObject } from '../../../src/api/types.js';
import { buildInventory, updateChangedObjects } from '../../../src/inventory/build-inventory.js';
import { parseConfig } from '../../../src/inventory/config.js';
import { kindSpecs, slimNode, stripObject } from '../../../src/inventory/sources/kube-kinds.js';
import { sameContent } from '../../../src/inventory/sources/kubernetes.js';
import { NodeRecord, objectName, objectNamespace, objectResourceVersion } from '../../../src/inventory/sources/pod-record.js';

type Json = Record<string, unknown>;

const ipArb = fc.constantFrom('192.0.2.1', '192.0.2.2', '2001:db8::1', '2001:DB8::2', '192.0.2.300', 'node-a', '');
const oddValue = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant({}), fc.constant([]), fc.constant('x'));
const cidrArb = fc.constantFrom('198.51.100.0/26', '2001:db8:100::/80', 'bad', '198.51.100.64/26');

/** A raw Node: regular ones and odd ones (wrong types, missing parts, annotations of every kind). */
const rawNodeArb: fc.Arbitrary<Json> = fc
  .record(
    {
      metadata: fc.oneof(
        fc.record(
          {
            name: fc.oneof(fc.constantFrom('node-a', 'node-b', 'node-c'), oddValue),
            namespace: fc.oneof(fc.constant('odd-ns'), oddValue),
            labels: fc.oneof(fc.dictionary(fc.constantFrom('zone', 'pool', '__proto__'), fc.oneof(fc.constantFrom('a', 'b'), fc.integer())), oddValue),
            resourceVersion: fc.oneof(fc.constantFrom('1', '2', '01', '999999999', '1000000000', 'x1'), oddValue),
            annotations: fc.oneof(
              fc.dictionary(fc.constantFrom('network.cilium.io/ipv4-cilium-host', 'io.cilium.network.ipv4-health-ip', 'node.alpha.kubernetes.io/ttl', 'other'), fc.oneof(ipArb, fc.integer())),
              oddValue,
            ),
            uid: fc.constant('u-1'),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
      spec: fc.oneof(
        fc.record({ podCIDR: fc.oneof(cidrArb, oddValue), podCIDRs: fc.oneof(fc.array(fc.oneof(cidrArb, oddValue), { maxLength: 2 }), oddValue), taints: fc.constant([]) }, { requiredKeys: [] }),
        oddValue,
      ),
      status: fc.oneof(
        fc.record(
          {
            addresses: fc.oneof(
              fc.array(fc.oneof(fc.record({ type: fc.oneof(fc.constantFrom('InternalIP', 'ExternalIP', 'Hostname'), oddValue), address: fc.oneof(ipArb, oddValue) }, { requiredKeys: [] }), oddValue), { maxLength: 3 }),
              oddValue,
            ),
            conditions: fc.constant([{ type: 'Ready', status: 'True' }]),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
    },
    { requiredKeys: [] },
  )
  .map((o) => o as Json);

const slim = (raw: Json): Json => slimNode(kindSpecs.node, raw);

test('property: a Node from stripObject is a NodeRecord that serialises and reads exactly as the slim object (odd ones included)', (t) => {
  fc.assert(
    fc.property(rawNodeArb, (raw) => {
      const o = stripObject('node', raw);
      if (!(o instanceof NodeRecord)) throw new Error('every Node becomes a record');
      const want = slim(raw);
      if (JSON.stringify(o) !== JSON.stringify(want)) throw new Error(`JSON ${JSON.stringify(o)} != ${JSON.stringify(want)}`);
      for (const k of ['apiVersion', 'kind', 'metadata', 'pos', 'spec', 'status']) {
        if (JSON.stringify(o[k]) !== JSON.stringify(want[k]) || (o[k] === undefined) !== (want[k] === undefined)) throw new Error(`${k}: ${JSON.stringify(o[k])} != ${JSON.stringify(want[k])}`);
      }
      t.deepEqual(o.metadata, want['metadata'] as Json);
      if (objectName(o) !== o.metadata.name || objectNamespace(o) !== o.metadata.namespace) throw new Error('objectName/objectNamespace');
      const rv = o.metadata['resourceVersion'];
      if (objectResourceVersion(o) !== (typeof rv === 'string' ? rv : '')) throw new Error('objectResourceVersion');
      // A reader that changes what a getter gave cannot change the record.
      const st = o['status'] as { addresses?: Json[] } | undefined;
      st?.addresses?.push({ type: 'InternalIP', address: '203.0.113.1' });
      const md = o.metadata as Json;
      md['name'] = 'changed';
      if (JSON.stringify(o) !== JSON.stringify(want)) throw new Error('record changed through a getter');
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

function sameContentReference(a: Json, b: Json): boolean {
  const withoutRv = (o: Json): string => JSON.stringify({ ...o, metadata: { ...(o['metadata'] as Json), resourceVersion: undefined } });
  return withoutRv(a) === withoutRv(b);
}

test('property: sameContent of node records says what it says of their slim objects', (t) => {
  let same = 0;
  fc.assert(
    fc.property(
      rawNodeArb.chain((a) => {
        const md = (a['metadata'] !== null && typeof a['metadata'] === 'object' && !Array.isArray(a['metadata']) ? a['metadata'] : {}) as Json;
        return fc.tuple(fc.constant(a), fc.oneof(fc.constant({ ...a, metadata: { ...md, resourceVersion: '99' } }), rawNodeArb));
      }),
      ([a, b]) => {
        const want = sameContentReference(slim(a), slim(b));
        if (want) same++;
        const ra = stripObject('node', a);
        const rb = stripObject('node', b);
        if (sameContent(ra, rb) !== want) throw new Error(`records: ${JSON.stringify([a, b])}`);
        if (sameContent(ra, slim(b) as unknown as KubeObject) !== want) throw new Error(`record and slim: ${JSON.stringify([a, b])}`);
      },
    ),
    { numRuns: 2000 },
  );
  t.true(same > 100, `${same} equal pairs`);
});

const cfg = parseConfig('clusterName: prod\nclusterPodCIDRs: [198.51.100.0/24]\n', 'c.yaml');
const podArb = fc.record({ name: fc.constantFrom('p1', 'p2'), ip: ipArb });

test('property: buildInventory and updateChangedObjects give the same for node records as for the slim objects', (t) => {
  fc.assert(
    fc.property(fc.array(rawNodeArb, { maxLength: 4 }), fc.array(podArb, { maxLength: 3 }), fc.constantFrom('node-a', 'node-b'), fc.array(ipArb, { maxLength: 1 }), (raws, pods, nodeName, local) => {
      const podObjs = pods.map((p, i) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${p.name}-${i}`, namespace: 'ns' }, status: { podIPs: [{ ip: p.ip }] } }) as unknown as KubeObject);
      const opts = { nodeName, localAddresses: local };
      const records = raws.map((r) => stripObject('node', r));
      const slims = raws.map((r) => slim(r) as unknown as KubeObject);
      const a = buildInventory([...records, ...podObjs], cfg, opts);
      const b = buildInventory([...slims, ...podObjs], cfg, opts);
      t.deepEqual(a.inventory, b.inventory);
      // Problems name the same positions, fields and messages.
      t.deepEqual(JSON.parse(JSON.stringify(a.problems)), JSON.parse(JSON.stringify(b.problems)));
      // A relabelled node (same addresses): the update path reads the record as it read the slim object.
      if (raws.length > 0) {
        const r0 = raws[0] as Json;
        const md = (r0['metadata'] !== null && typeof r0['metadata'] === 'object' && !Array.isArray(r0['metadata']) ? r0['metadata'] : {}) as Json;
        const relabelled = { ...r0, metadata: { ...md, labels: { zone: 'new' }, resourceVersion: '77' } };
        const nextRecords = [stripObject('node', relabelled), ...records.slice(1), ...podObjs];
        const nextSlims = [slim(relabelled) as unknown as KubeObject, ...slims.slice(1), ...podObjs];
        const ua = updateChangedObjects(a, { objects: nextRecords }, { gone: [records[0] as KubeObject], come: [nextRecords[0] as KubeObject] });
        const ub = updateChangedObjects(b, { objects: nextSlims }, { gone: [slims[0] as KubeObject], come: [nextSlims[0] as KubeObject] });
        t.is(ua === undefined, ub === undefined);
        if (ua !== undefined && ub !== undefined) {
          t.deepEqual(ua.inventory.self, ub.inventory.self);
          t.deepEqual(ua.inventory.remoteNodes, ub.inventory.remoteNodes);
          t.deepEqual(JSON.parse(JSON.stringify(ua.problems)), JSON.parse(JSON.stringify(ub.problems)));
        }
      }
    }),
    { numRuns: 500 },
  );
});

test('a node record shares its label map and interned address types; its getters give the slim shape', (t) => {
  const raw = (name: string): Json => ({
    metadata: { name, labels: { pool: 'p1', zone: 'a' }, resourceVersion: '12', annotations: { 'network.cilium.io/ipv4-cilium-host': '192.0.2.9', other: 'x' } },
    spec: { podCIDR: '198.51.100.0/26', podCIDRs: ['198.51.100.0/26'] },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }, { type: 'Hostname', address: name }] },
  });
  const a = stripObject('node', raw('node-a'));
  const b = stripObject('node', raw('node-b'));
  if (!(a instanceof NodeRecord) || !(b instanceof NodeRecord)) return t.fail('records expected');
  t.is(a.labels, b.labels);
  t.is(a.addresses?.[0], b.addresses?.[0]);
  t.deepEqual(a.metadata['annotations'], { 'network.cilium.io/ipv4-cilium-host': '192.0.2.9' });
  t.deepEqual(a.status, { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }, { type: 'Hostname', address: 'node-a' }] });
  t.is(a.pos?.file, 'k8s:node/node-a');
  return undefined;
});
