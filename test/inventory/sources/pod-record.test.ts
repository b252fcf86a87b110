// PodRecord (pod-record.ts): the Kubernetes source's compact pods must read, serialise, compare and
// build the inventory exactly as the slim objects they replace (slimPod, kept as the reference):
// k8s-cache.json byte for byte, every getter, sameContent, and buildInventory / updateChangedObjects.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import type { KubeObject } from '../../../src/api/types.js';
import { buildInventory, updateChangedObjects } from '../../../src/inventory/build-inventory.js';
import { parseConfig } from '../../../src/inventory/config.js';
import { kindSpecs, slimPod, stripObject } from '../../../src/inventory/sources/kube-kinds.js';
import { cachePath, readCache, writeCache } from '../../../src/inventory/sources/cache.js';
import { sameContent } from '../../../src/inventory/sources/kubernetes.js';
import { EndpointRecord, objectName, objectNamespace, objectResourceVersion, PodRecord, podShape, recordGroupCacheSize } from '../../../src/inventory/sources/pod-record.js';

type Json = Record<string, unknown>;

// Addresses from a small pool (so podIP and podIPs[0] often agree), canonical or not, some invalid.
const ipArb = fc.constantFrom('192.0.2.1', '192.0.2.2', '198.51.100.7', '2001:db8::1', '2001:db8:0:0:0:0:0:2', '2001:DB8::3', '192.0.2.300', 'not-an-ip', '', '192.0.2.10');
const oddValue = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant({}), fc.constant([]), fc.constant('x'));
const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined, freq: 3 });
const labelsArb = fc.oneof(
  fc.dictionary(fc.constantFrom('app', 'tier', 'a.b/c', '__proto__', 'constructor', 'k'), fc.oneof(fc.constantFrom('web', 'db', ''), fc.integer())),
  // Huge label sets (not shared by sharedStringMap): records still keep them as they are.
  fc.integer({ min: 1, max: 3 }).map((n) => Object.fromEntries(Array.from({ length: 40 * n }, (_, i) => [`key-${i}`, 'v'.repeat(60)]))),
  oddValue,
);

/** A raw API Pod: regular ones, and odd ones (missing parts, wrong types, podIPs without podIP ...). */
const rawPodArb: fc.Arbitrary<Json> = fc
  .record(
    {
      metadata: fc.oneof(
        fc.record(
          {
            name: fc.oneof(fc.constantFrom('p1', 'p2', 'web-0'), oddValue),
            namespace: fc.oneof(fc.constantFrom('ns1', 'default', 'kube-system'), oddValue),
            labels: labelsArb,
            resourceVersion: fc.oneof(fc.constantFrom('1', '2', '17', '0', '007', '999999999', '1000000000', '98765432109876543210', '1e3', '-1', ' 5', ''), oddValue),
            managedFields: fc.constant([{ manager: 'kubelet' }]),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
      spec: fc.oneof(
        fc.record(
          {
            nodeName: fc.oneof(fc.constantFrom('node-a', 'node-b', ''), oddValue),
            hostNetwork: fc.oneof(fc.boolean(), oddValue),
            serviceAccountName: fc.oneof(fc.constantFrom('default', 'robot', ''), oddValue),
            serviceAccount: fc.constantFrom('legacy'),
            containers: fc.constant([{ name: 'c', image: 'nginx' }]),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
      status: fc.oneof(
        fc.record(
          {
            podIP: fc.oneof(ipArb, oddValue),
            podIPs: fc.oneof(fc.array(fc.oneof(fc.record({ ip: ipArb }), fc.record({ ip: oddValue }, { requiredKeys: [] }), oddValue), { maxLength: 3 }), oddValue),
            phase: fc.oneof(fc.constantFrom('Running', 'Pending', 'Succeeded', 'Failed'), oddValue),
            hostIP: fc.constant('192.0.2.99'),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
    },
    { requiredKeys: [] },
  )
  .map((o) => o as Json);

/** Regular pods as the API gives them: every one must become a PodRecord. */
const regularPodArb: fc.Arbitrary<Json> = fc
  .record({
    name: fc.constantFrom('p1', 'p2', 'web-0', 'db-1'),
    namespace: maybe(fc.constantFrom('ns1', 'ns2', 'default')),
    labels: maybe(fc.dictionary(fc.constantFrom('app', 'tier', 'pod-template-hash'), fc.constantFrom('web', 'db', 'abc'))),
    rv: maybe(fc.constantFrom('1', '2', '3', '0', '042', '123456789', '1234567890', 'abc')),
    spec: maybe(fc.record({ nodeName: fc.constantFrom('node-a', 'node-b', ''), hostNetwork: fc.boolean(), serviceAccountName: fc.constantFrom('default', 'robot', '') }, { requiredKeys: [] })),
    ips: maybe(fc.array(ipArb, { maxLength: 2 })),
    withPodIP: fc.boolean(),
    phase: maybe(fc.constantFrom('Running', 'Pending', 'Succeeded', 'Failed')),
    statusPresent: fc.boolean(),
  })
  .map((p) => {
    const md: Json = { name: p.name };
    if (p.namespace !== undefined) md['namespace'] = p.namespace;
    if (p.labels !== undefined) md['labels'] = p.labels;
    if (p.rv !== undefined) md['resourceVersion'] = p.rv;
    const out: Json = { metadata: md };
    if (p.spec !== undefined) out['spec'] = p.spec;
    if (p.statusPresent || p.ips !== undefined || p.phase !== undefined) {
      const st: Json = {};
      if (p.ips !== undefined) {
        st['podIPs'] = p.ips.map((ip) => ({ ip }));
        if (p.withPodIP && p.ips.length > 0) st['podIP'] = p.ips[0];
      }
      if (p.phase !== undefined) st['phase'] = p.phase;
      out['status'] = st;
    }
    return out;
  });

const slim = (raw: Json): Json => slimPod(kindSpecs.pod, raw);

function sameAsSlim(o: KubeObject, want: Json): string | undefined {
  // Byte for byte what k8s-cache.json holds of it.
  if (JSON.stringify(o) !== JSON.stringify(want)) return `JSON ${JSON.stringify(o)} != ${JSON.stringify(want)}`;
  for (const k of ['apiVersion', 'kind', 'metadata', 'pos', 'spec', 'status']) {
    if (JSON.stringify(o[k]) !== JSON.stringify(want[k])) return `${k}: ${JSON.stringify(o[k])} != ${JSON.stringify(want[k])}`;
    if ((o[k] === undefined) !== (want[k] === undefined)) return `${k} presence`;
  }
  if (objectName(o) !== o.metadata.name || objectNamespace(o) !== o.metadata.namespace) return 'objectName/objectNamespace';
  const rv = o.metadata['resourceVersion'];
  if (objectResourceVersion(o) !== (typeof rv === 'string' ? rv : '')) return 'objectResourceVersion';
  return undefined;
}

test('property: a pod from stripObject serialises and reads exactly as the slim object (odd pods included)', (t) => {
  let records = 0;
  let total = 0;
  fc.assert(
    fc.property(fc.oneof(rawPodArb, regularPodArb), (raw) => {
      total++;
      const o = stripObject('pod', raw);
      if (o instanceof PodRecord) records++;
      const problem = sameAsSlim(o, slim(raw));
      if (problem !== undefined) throw new Error(problem);
    }),
    { numRuns: 3000 },
  );
  // Both paths were exercised.
  t.true(records > total / 10, `${records} records of ${total}`);
  t.true(records < total, 'odd pods stay slim objects');
});

test('property: every regular pod becomes a record, and its getters give fresh objects equal to the slim ones', (t) => {
  fc.assert(
    fc.property(regularPodArb, (raw) => {
      const o = stripObject('pod', raw);
      if (!(o instanceof PodRecord)) throw new Error(`not a record: ${JSON.stringify(raw)}`);
      t.deepEqual(o.toJSON(), slim(raw));
      t.deepEqual({ metadata: o.metadata, spec: o['spec'], status: o['status'], pos: o.pos }, { metadata: slim(raw)['metadata'], spec: slim(raw)['spec'], status: slim(raw)['status'], pos: slim(raw)['pos'] });
      // A reader that changes what it got cannot change the record.
      const st = o['status'] as { podIPs?: { ip: string }[] } | undefined;
      st?.podIPs?.push({ ip: '203.0.113.1' });
      if (JSON.stringify(o) !== JSON.stringify(slim(raw))) throw new Error('record changed through a getter');
    }),
    { numRuns: 1000 },
  );
});

test('odd pods named in the brief: missing status, podIPs without podIP, non-string fields, hostNetwork, huge labels', (t) => {
  const cases: Json[] = [
    { metadata: { name: 'a', namespace: 'n' } },
    { metadata: { name: 'a', namespace: 'n' }, status: {} },
    { metadata: { name: 'a', namespace: 'n' }, status: { podIPs: [{ ip: '192.0.2.1' }, { ip: '2001:db8::1' }] } },
    { metadata: { name: 'a', namespace: 'n' }, status: { podIP: '192.0.2.1' } },
    { metadata: { name: 'a', namespace: 'n' }, status: { podIP: '192.0.2.1', podIPs: [] } },
    { metadata: { name: 'a', namespace: 'n' }, status: { podIP: '192.0.2.2', podIPs: [{ ip: '192.0.2.1' }] } },
    { metadata: { name: 'a', namespace: 'n' }, status: { podIPs: [{ ip: 7 }, {}] } },
    { metadata: { name: 'a', namespace: 'n' }, spec: { nodeName: 5, hostNetwork: 'true' } },
    { metadata: { name: 'a', namespace: 'n' }, spec: { hostNetwork: true, serviceAccountName: null } },
    { metadata: { name: 7, namespace: ['n'], labels: { a: 1, b: 'x' }, resourceVersion: 3 } },
    { metadata: { name: 'a', labels: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, 'x'.repeat(63)])) }, status: { podIPs: [{ ip: '192.0.2.1' }] } },
    {},
  ];
  const kinds: string[] = [];
  for (const raw of cases) {
    const o = stripObject('pod', raw);
    kinds.push(o instanceof PodRecord ? 'record' : 'slim');
    t.is(sameAsSlim(o, slim(raw)), undefined, JSON.stringify(raw));
  }
  t.deepEqual(kinds, ['record', 'record', 'record', 'record', 'slim', 'slim', 'slim', 'slim', 'record', 'record', 'record', 'record']);
});

// The old sameContent, on slim objects: the reference for records.
function sameContentReference(a: Json | undefined, b: Json): boolean {
  if (a === undefined) return false;
  const withoutRv = (o: Json): string => JSON.stringify({ ...o, metadata: { ...(o['metadata'] as Json), resourceVersion: undefined } });
  return withoutRv(a) === withoutRv(b);
}

/** A second version of a pod: the same but for the resourceVersion (a heartbeat), or one thing changed. */
const variantArb = (raw: Json): fc.Arbitrary<Json> => {
  const md = (raw['metadata'] !== null && typeof raw['metadata'] === 'object' && !Array.isArray(raw['metadata']) ? raw['metadata'] : {}) as Json;
  const labels = (md['labels'] !== null && typeof md['labels'] === 'object' ? md['labels'] : {}) as Json;
  return fc.oneof(
    fc.constant({ ...raw, metadata: { ...md, resourceVersion: '99' } }),
    fc.constant({ ...raw, metadata: { ...md, resourceVersion: '99', labels: { ...labels, extra: 'x' } } }),
    // The same labels in another key order: a change for the slim objects' JSON, so for records too.
    fc.constant({ ...raw, metadata: { ...md, labels: Object.fromEntries(Object.entries(labels).reverse()) } }),
    regularPodArb,
    rawPodArb,
  );
};

test('property: sameContent of records (and of a record and a slim object) says what it says of their slim objects', (t) => {
  let same = 0;
  fc.assert(
    fc.property(
      fc.oneof(regularPodArb, rawPodArb).chain((a) => fc.tuple(fc.constant(a), variantArb(a))),
      ([a, b]) => {
        const want = sameContentReference(slim(a), slim(b));
        if (want) same++;
        const ra = stripObject('pod', a);
        const rb = stripObject('pod', b);
        if (sameContent(ra, rb) !== want) throw new Error(`records: ${JSON.stringify([a, b])}`);
        if (sameContent(ra, slim(b) as unknown as KubeObject) !== want) throw new Error(`record and slim: ${JSON.stringify([a, b])}`);
        if (sameContent(slim(a) as unknown as KubeObject, rb) !== want) throw new Error(`slim and record: ${JSON.stringify([a, b])}`);
      },
    ),
    { numRuns: 2000 },
  );
  t.true(same > 100, `${same} equal pairs`);
});

test('sameContent: a heartbeat of a record is the same; a new address, phase or label is not', (t) => {
  const raw = (rv: string, ip: string, phase = 'Running', app = 'web'): KubeObject =>
    stripObject('pod', { metadata: { name: 'p', namespace: 'n', labels: { app }, resourceVersion: rv }, spec: { nodeName: 'a' }, status: { podIP: ip, podIPs: [{ ip }], phase } });
  t.true(raw('1', '192.0.2.1') instanceof PodRecord);
  t.true(sameContent(raw('1', '192.0.2.1'), raw('2', '192.0.2.1')));
  t.false(sameContent(raw('1', '192.0.2.1'), raw('2', '192.0.2.2')));
  t.false(sameContent(raw('1', '192.0.2.1'), raw('2', '192.0.2.1', 'Succeeded')));
  t.false(sameContent(raw('1', '192.0.2.1'), raw('2', '192.0.2.1', 'Running', 'db')));
  t.false(sameContent(undefined, raw('2', '192.0.2.1')));
});

const cfg = parseConfig('clusterName: prod\n', 'nodewall.yaml');
const nodeObj = (name: string, ip: string): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { pool: 'a' } }, status: { addresses: [{ type: 'InternalIP', address: ip }] } }) as unknown as KubeObject;
const nsObj = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { team: name } } }) as unknown as KubeObject;

/** Inventory and problems as plain data (records in problems' positions read as their slim pos). */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

// Pods of a cluster: names from a small pool so that keys repeat (a later object of a key wins or merges).
const clusterPodArb = fc.tuple(fc.oneof(regularPodArb, rawPodArb), fc.constantFrom('ns1', 'ns2', 'default'), fc.nat(5)).map(([raw, ns, i]) => {
  const md = (raw['metadata'] !== null && typeof raw['metadata'] === 'object' && !Array.isArray(raw['metadata']) ? raw['metadata'] : {}) as Json;
  return { ...raw, metadata: { ...md, name: `pod-${i}`, namespace: ns } } as Json;
});

test('property: buildInventory of records equals buildInventory of their slim objects (pods, warnings, shared node IPs)', (t) => {
  fc.assert(
    fc.property(fc.array(clusterPodArb, { maxLength: 12 }), (raws) => {
      const cluster = [nsObj('ns1'), nsObj('ns2'), nodeObj('n1', '192.0.2.1'), nodeObj('n2', '192.0.2.10')];
      const records = raws.map((r) => stripObject('pod', r));
      const slims = raws.map((r) => slim(r) as unknown as KubeObject);
      const a = buildInventory([...cluster, ...records], cfg, { nodeName: 'n1' });
      const b = buildInventory([...cluster, ...slims], cfg, { nodeName: 'n1' });
      t.deepEqual(plain(a.inventory), plain(b.inventory));
      t.deepEqual(plain(a.problems), plain(b.problems));
    }),
    { numRuns: 600 },
  );
});

test('property: updateChangedObjects with records equals a full build of the slim objects', (t) => {
  fc.assert(
    fc.property(fc.array(clusterPodArb, { minLength: 1, maxLength: 8 }), clusterPodArb, fc.nat(7), (raws, replacement, at) => {
      const cluster = [nsObj('ns1'), nsObj('ns2'), nodeObj('n1', '192.0.2.1')];
      // One object per key, as the Kubernetes source's store holds them.
      const byKey = new Map<string, Json>();
      for (const r of raws) byKey.set(JSON.stringify([(r['metadata'] as Json)['namespace'], (r['metadata'] as Json)['name']]), r);
      const list = [...byKey.values()];
      const records = list.map((r) => stripObject('pod', r));
      const before = buildInventory([...cluster, ...records], cfg, { nodeName: 'n1' });
      const i = at % records.length;
      const gone = records[i] as KubeObject;
      const repl = { ...replacement, metadata: { ...(replacement['metadata'] as Json), name: (list[i]?.['metadata'] as Json)['name'], namespace: (list[i]?.['metadata'] as Json)['namespace'] } };
      const come = stripObject('pod', repl);
      const nextRecords = records.map((o, j) => (j === i ? come : o));
      const objects = [...cluster, ...nextRecords];
      const updated = updateChangedObjects(before, { objects }, { gone: [gone], come: [come] });
      if (updated === undefined) throw new Error('a one-pod change must be incremental');
      const fresh = buildInventory([...cluster, ...list.map((r, j) => slim(j === i ? repl : r) as unknown as KubeObject)], cfg, { nodeName: 'n1' });
      t.deepEqual(plain(updated.inventory), plain(fresh.inventory));
      t.deepEqual(plain([...updated.problems].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))), plain([...fresh.problems].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))));
    }),
    { numRuns: 400 },
  );
});

test("the PodInfo keeps the record's own address list when it is canonical and in order; otherwise a list of its own", (t) => {
  const rec = (name: string, ips: string[]): PodRecord => {
    const o = stripObject('pod', { metadata: { name, namespace: 'ns1' }, status: { podIPs: ips.map((ip) => ({ ip })) } });
    if (!(o instanceof PodRecord)) throw new Error('not a record');
    return o;
  };
  const dual = rec('dual', ['192.0.2.5', '2001:db8::5']);
  const single = rec('single', ['192.0.2.6']);
  const swapped = rec('swapped', ['2001:db8::7', '192.0.2.7']);
  const longV6 = rec('long', ['192.0.2.8', '2001:db8:0:0:0:0:0:8']);
  const twice = rec('twice', ['192.0.2.9', '192.0.2.9']);
  const inv = buildInventory([nsObj('ns1'), dual, single, swapped, longV6, twice], cfg, { nodeName: 'n1' }).inventory;
  const by = new Map(inv.pods.map((p) => [p.name, p.addresses]));
  t.is(by.get('dual'), dual.ips);
  t.is(by.get('single'), single.ips);
  t.deepEqual(by.get('swapped'), ['192.0.2.7', '2001:db8::7']);
  t.not(by.get('swapped'), swapped.ips);
  t.deepEqual(by.get('long'), ['192.0.2.8', '2001:db8::8']);
  t.deepEqual(by.get('twice'), ['192.0.2.9']);
  // The records are what they were (nothing was sorted or rewritten in place).
  t.deepEqual([...swapped.ips], ['2001:db8::7', '192.0.2.7']);
  t.deepEqual([...longV6.ips], ['192.0.2.8', '2001:db8:0:0:0:0:0:8']);
  t.deepEqual([...twice.ips], ['192.0.2.9', '192.0.2.9']);
});

test('a warning about a record names it as the slim object did: k8s:pod/NS/NAME and the field path', (t) => {
  const bad = stripObject('pod', { metadata: { name: 'web-0', namespace: 'ns1' }, status: { podIPs: [{ ip: '192.0.2.1' }, { ip: 'not-an-ip' }] } });
  t.true(bad instanceof PodRecord);
  const { problems } = buildInventory([nsObj('ns1'), bad], cfg, { nodeName: 'n1' });
  const p = problems.find((x) => x.code === 'inventory/bad-address');
  t.deepEqual(p?.pos, { file: 'k8s:pod/ns1/web-0', line: 1, col: 1 });
  t.is(p?.field, 'status.podIPs[1].ip');
  t.true(p?.message.startsWith('Pod ns1/web-0: '));
});

test("records' identity labels (found by their shared label map): right per namespace and service account, and anew when namespace labels change", (t) => {
  const rec = (name: string, ns: string, sa: string | undefined, app: string): KubeObject =>
    stripObject('pod', { metadata: { name, namespace: ns, labels: { app } }, spec: sa === undefined ? {} : { serviceAccountName: sa }, status: { podIPs: [{ ip: `192.0.2.${name.length + ns.length}` }] } });
  const pods = [rec('a', 'ns1', undefined, 'web'), rec('bb', 'ns1', 'robot', 'web'), rec('ccc', 'ns2', undefined, 'web'), rec('dddd', 'ns1', '', 'web'), rec('eeeee', 'ns1', undefined, 'db')];
  // One shared label map for the four 'web' pods.
  t.is(pods[0]?.metadata.labels, pods[2]?.metadata.labels);
  const build = (team: string) => buildInventory([{ ...nsObj('ns1'), metadata: { name: 'ns1', labels: { team } } } as KubeObject, nsObj('ns2'), ...pods], cfg, { nodeName: 'n1' });
  const slimBuild = (team: string) =>
    buildInventory([{ ...nsObj('ns1'), metadata: { name: 'ns1', labels: { team } } } as KubeObject, nsObj('ns2'), ...pods.map((p) => JSON.parse(JSON.stringify(p)) as KubeObject)], cfg, { nodeName: 'n1' });
  const x = build('x');
  t.deepEqual(plain(x.inventory), plain(slimBuild('x').inventory));
  const by = new Map(x.inventory.pods.map((p) => [p.name, p.labels]));
  t.is(by.get('bb')?.['io.cilium.k8s.policy.serviceaccount'], 'robot');
  t.is(by.get('a')?.['io.cilium.k8s.policy.serviceaccount'], 'default');
  t.is(by.get('ccc')?.['io.kubernetes.pod.namespace'], 'ns2');
  t.is(by.get('a'), by.get('dddd'), "no service account and '' are the same identity, one Labels object");
  t.is(by.get('eeeee')?.['app'], 'db');
  // Namespace labels changed: the next build must not reuse the earlier Labels.
  const y = build('y');
  t.deepEqual(plain(y.inventory), plain(slimBuild('y').inventory));
  t.is(y.inventory.pods.find((p) => p.name === 'a')?.labels['io.cilium.k8s.namespace.labels.team'], 'y');
  // A pod event after that build: its labels from that build's namespace labels.
  const moved = rec('a', 'ns1', 'robot', 'web');
  const step = updateChangedObjects(y, { objects: [] }, { gone: [pods[0] as KubeObject], come: [moved] });
  const a = step?.pods.get('ns1/a');
  t.is(a?.labels['io.cilium.k8s.policy.serviceaccount'], 'robot');
  t.is(a?.labels['io.cilium.k8s.namespace.labels.team'], 'y');
});

test.serial('a first build of records and their list in the store read no getter of a record (no slim object is made)', async (t) => {
  // Each getter on the prototype that defines it (metadata and pos: the shared base class).
  const ownerOf = (k: string): object => {
    for (let p: object | null = PodRecord.prototype; p !== null; p = Object.getPrototypeOf(p) as object | null) if (Object.hasOwn(p, k)) return p;
    throw new Error(`no ${k}`);
  };
  const counted = ['metadata', 'spec', 'status', 'pos', 'apiVersion', 'toJSON'];
  const saved = counted.map((k) => [k, Object.getOwnPropertyDescriptor(ownerOf(k), k), ownerOf(k)] as const);
  const reads = new Map<string, number>();
  try {
    for (const [k, d, proto] of saved) {
      if (d === undefined) throw new Error(`no ${k}`);
      const count = (): void => void reads.set(k, (reads.get(k) ?? 0) + 1);
      if (d.get !== undefined) {
        const get = d.get;
        Object.defineProperty(proto, k, { ...d, get(this: unknown) { count(); return get.call(this); } });
      } else {
        const fn = d.value as (...a: unknown[]) => unknown;
        Object.defineProperty(proto, k, { ...d, value(this: unknown, ...a: unknown[]) { count(); return fn.apply(this, a); } });
      }
    }
    const records = Array.from({ length: 200 }, (_, i) =>
      stripObject('pod', { metadata: { name: `p${i}`, namespace: `ns${i % 2 + 1}`, labels: { app: 'web' }, resourceVersion: String(i) }, spec: { nodeName: 'n1', serviceAccountName: 'default' }, status: { podIP: `192.0.2.${i % 250}`, podIPs: [{ ip: `192.0.2.${i % 250}` }, { ip: `2001:db8::${i.toString(16)}` }], phase: 'Running' } }),
    );
    t.true(records.every((o) => o instanceof PodRecord));
    const { KindListWatch } = await import('../../../src/inventory/sources/kube-list-watch.js');
    const lw = new KindListWatch(async () => new AbortController(), async () => ({ items: records, resourceVersion: '1000' }));
    await lw.start();
    t.is(lw.list().length, 200);
    const built = buildInventory([nsObj('ns1'), nsObj('ns2'), nodeObj('n1', '192.0.2.251'), ...lw.list()], cfg, { nodeName: 'n1' });
    t.is(built.inventory.pods.length, 200);
    t.deepEqual(built.problems, []);
    t.deepEqual([...reads], []);
    // The counting works: a read is seen.
    void records[0]?.metadata;
    t.is(reads.get('metadata'), 1);
  } finally {
    for (const [k, d, proto] of saved) if (d !== undefined) Object.defineProperty(proto, k, d);
  }
});

test('k8s-cache.json written from records is byte for byte the file written from the slim objects; read back, it builds the same inventory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nw-pod-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const raws = fc.sample(fc.array(clusterPodArb, { maxLength: 30 }), { numRuns: 20, seed: 15 });
  let records = 0;
  for (const list of raws) {
    const objs = list.map((r) => stripObject('pod', r));
    records += objs.filter((o) => o instanceof PodRecord).length;
    const state = { syncedAt: '2026-12-06T19:00:00.000Z', resourceVersions: { Pod: '77' }, objects: [nsObj('ns1'), ...objs], policies: [] };
    await writeCache(dir, state);
    const fromRecords = await readFile(cachePath(dir), 'utf8');
    await writeCache(dir, { ...state, objects: [nsObj('ns1'), ...list.map((r) => slim(r) as unknown as KubeObject)] });
    t.is(fromRecords, await readFile(cachePath(dir), 'utf8'));
    const back = await readCache(dir);
    if (back === undefined) return t.fail('cache not read back');
    const a = buildInventory(state.objects, cfg, { nodeName: 'n1' });
    const b = buildInventory(back.objects, cfg, { nodeName: 'n1' });
    t.deepEqual(plain(a.inventory), plain(b.inventory));
    t.deepEqual(plain(a.problems), plain(b.problems));
  }
  t.true(records > 50, `${records} records`);
  return undefined;
});

// Records share their namespace, service account, phase and shape through one group object per distinct
// combination (memory): each record must still read its own values, alike records share the object and
// records that differ in any of the four never do.
const groupOf = (r: PodRecord | EndpointRecord): object => (r as unknown as { group: object }).group;

const recordFieldsArb = fc.record({
  name: fc.constantFrom('p1', 'p2'),
  namespace: fc.option(fc.constantFrom('ns1', 'ns2', ''), { nil: undefined }),
  labels: fc.option(fc.constant({ app: 'web' }), { nil: undefined }),
  resourceVersion: fc.option(fc.constantFrom('1', '042'), { nil: undefined }),
  nodeName: fc.option(fc.constantFrom('node-a'), { nil: undefined }),
  serviceAccountName: fc.option(fc.constantFrom('default', 'robot', ''), { nil: undefined }),
  ips: fc.constantFrom([], ['192.0.2.1']),
  phase: fc.option(fc.constantFrom('Running', 'Pending', 'odd phase'), { nil: undefined }),
  shape: fc.constantFrom(0, podShape.spec, podShape.spec | podShape.status | podShape.podIPs, podShape.status | podShape.podIP),
});

test('property: a pod record reads back every field it was made of; alike records share their group, others never', (t) => {
  fc.assert(
    fc.property(recordFieldsArb, recordFieldsArb, (fa, fb) => {
      const a = new PodRecord(fa);
      const b = new PodRecord(fb);
      for (const [r, f] of [[a, fa], [b, fb]] as const) {
        t.is(r.namespace, f.namespace);
        t.is(r.serviceAccountName, f.serviceAccountName);
        t.is(r.phase, f.phase);
        t.is(r.shape, f.shape);
        t.is(r.name, f.name);
        t.is(r.labels, f.labels);
        t.is(r.resourceVersion, f.resourceVersion);
      }
      const alike = fa.namespace === fb.namespace && fa.serviceAccountName === fb.serviceAccountName && fa.phase === fb.phase && fa.shape === fb.shape;
      if (!alike) t.not(groupOf(a), groupOf(b));
      // Few combinations here: the cache never starts over in this test, so alike records share.
      else t.is(groupOf(a), groupOf(b));
    }),
    { numRuns: 300 },
  );
});

test('an endpoint record reads its namespace and shape through the group; pods and endpoints of one namespace do not mix shapes', (t) => {
  const e = new EndpointRecord({ name: 'e', namespace: 'ns1', labels: undefined, resourceVersion: '5', identityId: 7, identityLabels: undefined, node: undefined, addressing: undefined, shape: 3 });
  t.is(e.namespace, 'ns1');
  t.is(e.shape, 3);
  const p = new PodRecord({ name: 'e', namespace: 'ns1', labels: undefined, resourceVersion: '5', nodeName: undefined, serviceAccountName: undefined, ips: [], phase: undefined, shape: 3 });
  t.is(groupOf(p), groupOf(e), 'the same four values: one group, whatever the kind');
  const q = new PodRecord({ name: 'e', namespace: 'ns1', labels: undefined, resourceVersion: '5', nodeName: undefined, serviceAccountName: undefined, ips: [], phase: undefined, shape: 1 });
  t.not(groupOf(q), groupOf(e));
  t.true(Object.isFrozen(groupOf(p)), 'a shared group cannot be changed through one record');
});

test('the group cache stays bounded when every pod has a service account of its own; each record keeps its values', (t) => {
  const records: PodRecord[] = [];
  for (let i = 0; i < 25_000; i++) {
    records.push(new PodRecord({ name: `p${i}`, namespace: 'ns', labels: undefined, resourceVersion: String(i + 1), nodeName: 'n', serviceAccountName: `sa-${i}`, ips: ['192.0.2.1'], phase: 'Running', shape: podShape.spec | podShape.status | podShape.podIPs }));
  }
  t.true(recordGroupCacheSize() <= 10_000, `${recordGroupCacheSize()} groups cached`);
  for (let i = 0; i < records.length; i += 997) {
    const r = records[i] as PodRecord;
    t.is(r.serviceAccountName, `sa-${i}`);
    t.is(r.namespace, 'ns');
    t.is(r.phase, 'Running');
    t.is(JSON.stringify(r.toJSON()), JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'ns', resourceVersion: String(i + 1) }, pos: { file: `k8s:pod/ns/p${i}`, line: 1, col: 1 }, spec: { nodeName: 'n', serviceAccountName: `sa-${i}` }, status: { podIPs: [{ ip: '192.0.2.1' }], phase: 'Running' } }));
  }
  // After the cache started over, alike records share again.
  const f = { name: 'x', namespace: 'ns', labels: undefined, resourceVersion: '1', nodeName: 'n', serviceAccountName: 'late', ips: [], phase: 'Running', shape: 0 };
  t.is(groupOf(new PodRecord(f)), groupOf(new PodRecord({ ...f, name: 'y' })));
});
