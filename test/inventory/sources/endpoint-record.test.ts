// EndpointRecord (pod-record.ts): the Kubernetes source's compact CiliumEndpoints (its pods where
// Cilium runs) must read, serialise, compare and build the inventory exactly as the slim objects they
// replace (slimCiliumEndpoint, kept as the reference).

import test from 'ava';
import fc from 'fast-check';
import type { KubeObject } from '../../../src/api/types.js';
import { buildInventory, updateChangedObjects } from '../../../src/inventory/build-inventory.js';
import { parseConfig } from '../../../src/inventory/config.js';
import { kindSpecs, slimCiliumEndpoint, stripObject } from '../../../src/inventory/sources/kube-kinds.js';
import { sameContent } from '../../../src/inventory/sources/kubernetes.js';
import { EndpointRecord, objectName, objectNamespace, objectResourceVersion } from '../../../src/inventory/sources/pod-record.js';

type Json = Record<string, unknown>;

const ipArb = fc.constantFrom('192.0.2.1', '192.0.2.2', '198.51.100.7', '2001:db8::1', '2001:db8:0:0:0:0:0:2', '192.0.2.300', 'bad', '');
const oddValue = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant({}), fc.constant([]), fc.constant('x'));
const identityLabelArb = fc.array(fc.oneof(fc.constantFrom('k8s:app=web', 'k8s:app=db', 'k8s:io.kubernetes.pod.namespace=ns1', 'reserved:init', 'k8s:tier', 'k8s:=x'), fc.integer()), { maxLength: 4 });

/** A raw CiliumEndpoint: regular ones and odd ones (ids of every type, missing parts, wrong types). */
const rawEndpointArb: fc.Arbitrary<Json> = fc
  .record(
    {
      metadata: fc.oneof(
        fc.record(
          {
            name: fc.oneof(fc.constantFrom('p1', 'p2', 'web-0'), oddValue),
            namespace: fc.oneof(fc.constantFrom('ns1', 'ns2'), oddValue),
            labels: fc.oneof(fc.dictionary(fc.constantFrom('app', 'tier'), fc.oneof(fc.constantFrom('web', 'db'), fc.integer())), oddValue),
            resourceVersion: fc.oneof(fc.constantFrom('1', '2', '0', '01', '999999999', '1000000000', 'x1'), oddValue),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
      status: fc.oneof(
        fc.record(
          {
            id: fc.constant(1234),
            identity: fc.oneof(fc.record({ id: fc.oneof(fc.integer(), fc.constant(null), oddValue), labels: fc.oneof(identityLabelArb, oddValue) }, { requiredKeys: [] }), oddValue),
            networking: fc.oneof(
              fc.record(
                {
                  node: fc.oneof(ipArb, oddValue),
                  addressing: fc.oneof(fc.array(fc.oneof(fc.record({ ipv4: fc.oneof(ipArb, oddValue), ipv6: fc.oneof(ipArb, oddValue) }, { requiredKeys: [] }), oddValue), { maxLength: 3 }), oddValue),
                },
                { requiredKeys: [] },
              ),
              oddValue,
            ),
            state: fc.constant('ready'),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
    },
    { requiredKeys: [] },
  )
  .map((o) => o as Json);

const slim = (raw: Json): Json => slimCiliumEndpoint(kindSpecs.ciliumendpoint, raw);

test('property: a CiliumEndpoint from stripObject serialises and reads exactly as the slim object (odd ones included)', (t) => {
  let records = 0;
  let total = 0;
  fc.assert(
    fc.property(rawEndpointArb, (raw) => {
      total++;
      const o = stripObject('ciliumendpoint', raw);
      if (o instanceof EndpointRecord) records++;
      const want = slim(raw);
      if (JSON.stringify(o) !== JSON.stringify(want)) throw new Error(`JSON ${JSON.stringify(o)} != ${JSON.stringify(want)}`);
      for (const k of ['apiVersion', 'kind', 'metadata', 'pos', 'spec', 'status']) {
        t.deepEqual(o[k], want[k], k);
      }
      if (objectName(o) !== o.metadata.name || objectNamespace(o) !== o.metadata.namespace) throw new Error('objectName/objectNamespace');
      const rv = o.metadata['resourceVersion'];
      if (objectResourceVersion(o) !== (typeof rv === 'string' ? rv : '')) throw new Error('objectResourceVersion');
      // A reader that changes what it got cannot change the record (its label list is shared).
      const st = (o instanceof EndpointRecord ? o['status'] : undefined) as { identity?: { labels?: unknown } } | undefined;
      if (Array.isArray(st?.identity?.labels)) (st.identity.labels as unknown[]).push('k8s:changed=yes');
      if (JSON.stringify(o) !== JSON.stringify(want)) throw new Error('record changed through a getter');
    }),
    { numRuns: 3000 },
  );
  t.true(records > total / 3, `${records} records of ${total}`);
  t.true(records < total, 'odd endpoints stay slim objects');
});

test('endpoints of one identity share one label list; an id that is no number keeps the slim object', (t) => {
  const ep = (name: string, id: unknown, labels: string[]): KubeObject =>
    stripObject('ciliumendpoint', { metadata: { name, namespace: 'ns1' }, status: { identity: { id, labels }, networking: { addressing: [{ ipv4: '192.0.2.1' }] } } });
  const a = ep('a', 5, ['k8s:app=web']);
  const b = ep('b', 5, ['k8s:app=web']);
  if (!(a instanceof EndpointRecord) || !(b instanceof EndpointRecord)) return t.fail('records expected');
  t.is(a.identityLabels, b.identityLabels);
  t.true(Object.isFrozen(a.identityLabels));
  t.false(ep('c', '5', ['k8s:app=web']) instanceof EndpointRecord);
  t.false(ep('d', { n: 5 }, ['k8s:app=web']) instanceof EndpointRecord);
  t.true(ep('e', null, ['k8s:app=web']) instanceof EndpointRecord);
  return undefined;
});

function sameContentReference(a: Json, b: Json): boolean {
  const withoutRv = (o: Json): string => JSON.stringify({ ...o, metadata: { ...(o['metadata'] as Json), resourceVersion: undefined } });
  return withoutRv(a) === withoutRv(b);
}

test('property: sameContent of endpoint records says what it says of their slim objects', (t) => {
  let same = 0;
  fc.assert(
    fc.property(
      rawEndpointArb.chain((a) => {
        const md = (a['metadata'] !== null && typeof a['metadata'] === 'object' && !Array.isArray(a['metadata']) ? a['metadata'] : {}) as Json;
        return fc.tuple(fc.constant(a), fc.oneof(fc.constant({ ...a, metadata: { ...md, resourceVersion: '99' } }), rawEndpointArb));
      }),
      ([a, b]) => {
        const want = sameContentReference(slim(a), slim(b));
        if (want) same++;
        const ra = stripObject('ciliumendpoint', a);
        const rb = stripObject('ciliumendpoint', b);
        if (sameContent(ra, rb) !== want) throw new Error(`records: ${JSON.stringify([a, b])}`);
        if (sameContent(ra, slim(b) as unknown as KubeObject) !== want) throw new Error(`record and slim: ${JSON.stringify([a, b])}`);
      },
    ),
    { numRuns: 2000 },
  );
  t.true(same > 100, `${same} equal pairs`);
});

const cfg = parseConfig('clusterName: prod\n', 'nodewall.yaml');
const nodeObj = (name: string, ip: string): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { pool: 'a' } }, status: { addresses: [{ type: 'InternalIP', address: ip }] } }) as unknown as KubeObject;
const nsObj = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { team: name } } }) as unknown as KubeObject;
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const sorted = <T>(xs: readonly T[]): T[] => [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

const clusterEndpointArb = fc.tuple(rawEndpointArb, fc.constantFrom('ns1', 'ns2'), fc.nat(4)).map(([raw, ns, i]) => {
  const md = (raw['metadata'] !== null && typeof raw['metadata'] === 'object' && !Array.isArray(raw['metadata']) ? raw['metadata'] : {}) as Json;
  return { ...raw, metadata: { ...md, name: `pod-${i}`, namespace: ns } } as Json;
});
// A Pod of the same name now and then: the endpoint then only adds addresses (or none: a skipped pod).
const podArb = fc.tuple(fc.constantFrom('ns1', 'ns2'), fc.nat(4), ipArb, fc.boolean()).map(
  ([ns, i, ip, hostNetwork]) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod-${i}`, namespace: ns }, spec: { hostNetwork }, status: { podIPs: [{ ip }] } }) as unknown as KubeObject,
);

test('property: buildInventory of endpoint records equals buildInventory of their slim objects (node names, warnings, pods of the same name)', (t) => {
  fc.assert(
    fc.property(fc.array(clusterEndpointArb, { maxLength: 10 }), fc.array(podArb, { maxLength: 3 }), (raws, pods) => {
      const cluster = [nsObj('ns1'), nsObj('ns2'), nodeObj('n1', '192.0.2.1'), nodeObj('n2', '198.51.100.7'), ...pods];
      const a = buildInventory([...cluster, ...raws.map((r) => stripObject('ciliumendpoint', r))], cfg, { nodeName: 'n1' });
      const b = buildInventory([...cluster, ...raws.map((r) => slim(r) as unknown as KubeObject)], cfg, { nodeName: 'n1' });
      t.deepEqual(plain(a.inventory), plain(b.inventory));
      t.deepEqual(plain(a.problems), plain(b.problems));
    }),
    { numRuns: 600 },
  );
});

test('property: updateChangedObjects with endpoint records equals a full build of the slim objects', (t) => {
  fc.assert(
    fc.property(fc.array(clusterEndpointArb, { minLength: 1, maxLength: 6 }), clusterEndpointArb, fc.nat(5), (raws, replacement, at) => {
      const cluster = [nsObj('ns1'), nsObj('ns2'), nodeObj('n1', '192.0.2.1')];
      const byKey = new Map<string, Json>();
      for (const r of raws) byKey.set(JSON.stringify([(r['metadata'] as Json)['namespace'], (r['metadata'] as Json)['name']]), r);
      const list = [...byKey.values()];
      const records = list.map((r) => stripObject('ciliumendpoint', r));
      const before = buildInventory([...cluster, ...records], cfg, { nodeName: 'n1' });
      const i = at % records.length;
      const repl = { ...replacement, metadata: { ...(replacement['metadata'] as Json), name: (list[i]?.['metadata'] as Json)['name'], namespace: (list[i]?.['metadata'] as Json)['namespace'] } };
      const come = stripObject('ciliumendpoint', repl);
      const updated = updateChangedObjects(before, { objects: [] }, { gone: [records[i] as KubeObject], come: [come] });
      if (updated === undefined) throw new Error('a one-endpoint change must be incremental');
      const fresh = buildInventory([...cluster, ...list.map((r, j) => slim(j === i ? repl : r) as unknown as KubeObject)], cfg, { nodeName: 'n1' });
      t.deepEqual(plain(updated.inventory), plain(fresh.inventory));
      t.deepEqual(plain(sorted(updated.problems)), plain(sorted(fresh.problems)));
    }),
    { numRuns: 400 },
  );
});

test('endpoints of one identity get one Labels object, with the identity labels; without labels, the namespace-derived ones', (t) => {
  const ep = (name: string, labels: string[] | undefined): KubeObject =>
    stripObject('ciliumendpoint', { metadata: { name, namespace: 'ns1' }, status: { identity: { id: 7, ...(labels === undefined ? {} : { labels }) }, networking: { addressing: [{ ipv4: `192.0.2.${name.length + 10}` }] } } });
  const inv = buildInventory([nsObj('ns1'), ep('a', ['k8s:app=web', 'reserved:init']), ep('bb', ['k8s:app=web', 'reserved:init']), ep('ccc', ['k8s:app=db']), ep('dddd', undefined)], cfg, { nodeName: 'n1' }).inventory;
  const by = new Map(inv.pods.map((p) => [p.name, p.labels]));
  t.is(by.get('a'), by.get('bb'));
  t.deepEqual(by.get('a'), { app: 'web', 'reserved:init': '' });
  t.deepEqual(by.get('ccc'), { app: 'db' });
  t.is(by.get('dddd')?.['io.kubernetes.pod.namespace'], 'ns1');
  t.is(by.get('dddd')?.['io.cilium.k8s.namespace.labels.team'], 'ns1');
});

test.serial('a first build of endpoint records reads no getter of a record (no slim object is made)', (t) => {
  const ownerOf = (k: string): object => {
    for (let p: object | null = EndpointRecord.prototype; p !== null; p = Object.getPrototypeOf(p) as object | null) if (Object.hasOwn(p, k)) return p;
    throw new Error(`no ${k}`);
  };
  const saved = ['metadata', 'status', 'pos', 'apiVersion', 'toJSON'].map((k) => [k, Object.getOwnPropertyDescriptor(ownerOf(k), k), ownerOf(k)] as const);
  const reads: string[] = [];
  try {
    for (const [k, d, proto] of saved) {
      if (d === undefined) throw new Error(`no ${k}`);
      if (d.get !== undefined) {
        const get = d.get;
        Object.defineProperty(proto, k, { ...d, get(this: unknown) { reads.push(k); return get.call(this); } });
      } else {
        const fn = d.value as (...a: unknown[]) => unknown;
        Object.defineProperty(proto, k, { ...d, value(this: unknown, ...a: unknown[]) { reads.push(k); return fn.apply(this, a); } });
      }
    }
    const records = Array.from({ length: 100 }, (_, i) =>
      stripObject('ciliumendpoint', { metadata: { name: `p${i}`, namespace: 'ns1', resourceVersion: String(i + 1) }, status: { identity: { id: i % 3, labels: [`k8s:app=a${i % 3}`] }, networking: { node: '192.0.2.1', addressing: [{ ipv4: `192.0.2.${i + 10}`, ipv6: `2001:db8::${i.toString(16)}` }] } } }),
    );
    t.true(records.every((o) => o instanceof EndpointRecord));
    const built = buildInventory([nsObj('ns1'), nodeObj('n1', '192.0.2.1'), ...records], cfg, { nodeName: 'n1' });
    t.is(built.inventory.pods.length, 100);
    t.true(built.inventory.pods.every((p) => p.nodeName === 'n1'));
    t.deepEqual(built.problems, []);
    t.deepEqual(reads, []);
    void records[0]?.pos;
    t.deepEqual(reads, ['pos']);
  } finally {
    for (const [k, d, proto] of saved) if (d !== undefined) Object.defineProperty(proto, k, d);
  }
});
