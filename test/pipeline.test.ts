// StateBuilder (the agent's builder with memory) against buildState: the same State for every input,
// the model taken forward incrementally only when config and this node are unchanged.

import test from 'ava';
import type { LoadResult } from '../src/api/load-manifests.js';
import { loadManifestText } from '../src/api/load-manifests.js';
import type { KubeObject } from '../src/api/types.js';
import { buildState, StateBuilder, type StateInput } from '../src/pipeline.js';
import { objectChanges } from '../src/inventory/build-inventory.js';
import { ObjectChangeLog, type ObjectFeed } from '../src/inventory/object-feed.js';
import { caseConfig, CONFORMANCE_NODE, loadBaseCluster, loadConformanceCases } from './helpers/conformance.js';

const pod = (name: string, ns: string, labels: Record<string, string>, ip: string): KubeObject => ({
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  spec: { nodeName: 'node-b' },
  status: { phase: 'Running', podIPs: [{ ip }] },
});

test('for every conformance case and a sequence of cluster, policy and config changes, StateBuilder.build equals buildState (changed objects found by comparing lists, or told by an object feed)', (t) => {
  const cluster = loadBaseCluster();
  let incremental = 0;
  let fedBuilds = 0;
  for (const c of loadConformanceCases()) {
    if (c.cluster !== 'base') continue;
    const own = loadManifestText(c.manifests, `${c.file}:${c.line}`);
    const config = caseConfig(c);
    const load = (objects: readonly KubeObject[], policies = own.policies): LoadResult => ({
      policies: [...cluster.policies, ...policies],
      objects: [...objects, ...own.objects],
      problems: [...cluster.problems, ...own.problems],
    });
    const base = cluster.objects;
    const withPod = [...base, pod('extra', 'default', { app: 'web' }, '198.51.100.99')];
    const relabelled = [...base, pod('extra', 'default', { app: 'server', zgroup: 'testServer' }, '198.51.100.100')];
    const cep: KubeObject = {
      kind: 'CiliumEndpoint',
      metadata: { name: 'cep-only', namespace: 'team-a' },
      status: { identity: { labels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=team-a'] }, networking: { node: '192.0.2.3', addressing: [{ ipv4: '198.51.100.101' }] } },
    };
    const withCep = [...relabelled, cep];
    // Warnings about a pod: an address that does not parse, an address of a node.
    const badPods = [...withCep, pod('bad-ip', 'default', { app: 'web' }, '198.51.100.300'), pod('node-ip', 'default', { app: 'web' }, '192.0.2.2')];
    const badGone = withCep;
    // A Pod and a CiliumEndpoint of the same pod: not a pod-only update.
    const tangled = [...withCep, { ...cep, kind: 'Pod', spec: {}, status: { phase: 'Running', podIPs: [{ ip: '198.51.100.102' }] } } as KubeObject];
    const replaceObject = (objects: readonly KubeObject[], kind: string, name: string, f: (o: KubeObject) => KubeObject): KubeObject[] =>
      objects.map((o) => (o.kind === kind && o.metadata.name === name ? f(o) : o));
    const relabelNode = (o: KubeObject): KubeObject => ({ ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, tier: 'edge', zone: 'z9' } } });
    const nodeBRelabelled = replaceObject(badGone, 'Node', 'node-b', relabelNode);
    const ciliumNodeBRelabelled = replaceObject(nodeBRelabelled, 'CiliumNode', 'node-b', relabelNode);
    const nodeBReaddressed = replaceObject(ciliumNodeBRelabelled, 'Node', 'node-b', (o) => ({ ...o, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.12' }] } }));
    const selfRelabelled = replaceObject(nodeBReaddressed, 'Node', 'node-a', relabelNode);
    const noNodeC = relabelled.filter((o) => !((o.kind === 'Node' || o.kind === 'CiliumNode') && o.metadata.name === 'node-c'));
    type Step = { what: string; input: StateInput; model: 'full' | 'incremental'; inventory: 'full' | 'objects' };
    const at = (objects: readonly KubeObject[], policies = own.policies, extra: Partial<StateInput> = {}): StateInput => ({ config, load: load(objects, policies), nodeName: CONFORMANCE_NODE, ...extra });
    const steps: Step[] = [
      { what: 'first build', input: at(base), model: 'full', inventory: 'full' },
      { what: 'pod added', input: at(withPod), model: 'incremental', inventory: 'objects' },
      { what: 'pod relabelled and readdressed', input: at(relabelled), model: 'incremental', inventory: 'objects' },
      { what: 'CiliumEndpoint of a pod without a Pod object', input: at(withCep), model: 'incremental', inventory: 'objects' },
      { what: 'pods with warnings', input: at(badPods), model: 'incremental', inventory: 'objects' },
      { what: 'pods with warnings gone', input: at(badGone), model: 'incremental', inventory: 'objects' },
      { what: 'node-b relabelled', input: at(nodeBRelabelled), model: 'incremental', inventory: 'objects' },
      { what: 'the CiliumNode of node-b relabelled', input: at(ciliumNodeBRelabelled), model: 'incremental', inventory: 'objects' },
      { what: 'node-b readdressed', input: at(nodeBReaddressed), model: 'incremental', inventory: 'full' },
      // Its labels alone: the inventory and the model follow incrementally (issue 9; was a full build).
      { what: 'this node relabelled', input: at(selfRelabelled), model: 'incremental', inventory: 'objects' },
      { what: 'this node relabelled back', input: at(nodeBReaddressed), model: 'incremental', inventory: 'objects' },
      { what: 'this node relabelled again', input: at(selfRelabelled), model: 'incremental', inventory: 'objects' },
      // Inventory in full (one pod, two objects); the model by events, this node's labels back among them.
      { what: 'a Pod and a CiliumEndpoint of one pod', input: at(tangled), model: 'incremental', inventory: 'full' },
      { what: 'node-c gone', input: at(noNodeC), model: 'incremental', inventory: 'full' },
      { what: 'config re-read, same content', input: { ...at(noNodeC), config: { ...config } }, model: 'incremental', inventory: 'objects' },
      { what: 'policies removed', input: at(noNodeC, own.policies.slice(1)), model: 'incremental', inventory: 'objects' },
      { what: 'policies back', input: at(noNodeC), model: 'incremental', inventory: 'objects' },
      { what: 'own labels changed', input: at(noNodeC, own.policies, { nodeLabels: { type: 'infra' } }), model: 'full', inventory: 'full' },
      { what: 'config changed', input: { ...at(noNodeC, own.policies, { nodeLabels: { type: 'infra' } }), config: { ...config, mode: 'audit' } }, model: 'full', inventory: 'full' },
    ];
    for (const fed of [false, true]) {
      const builder = new StateBuilder();
      // As the Kubernetes source does: each list's step from the one before, by identity, in a change log.
      const log = new ObjectChangeLog();
      let before: readonly KubeObject[] | undefined;
      for (const [i, step] of steps.entries()) {
        const objects = step.input.load.objects;
        const feed = log.commit(i + 1, before === undefined ? undefined : objectChanges(before, objects, Infinity));
        before = objects;
        const s = fed ? { ...step, input: { ...step.input, load: { ...step.input.load, objectFeed: feed } } } : step;
        const got = builder.build(s.input);
        if (fed && builder.lastObjectChanges !== undefined) {
          t.is(builder.lastObjectChanges, 'feed', `${c.name}: ${s.what}: the feed was used`);
          fedBuilds++;
        }
        if (!fed) t.not(builder.lastObjectChanges, 'feed');
        t.deepEqual(got, buildState(s.input), `${c.name}: ${s.what}`);
        t.is(builder.lastModel, s.model, `${c.name}: ${s.what}`);
        t.is(builder.lastInventory, s.inventory, `${c.name}: ${s.what}`);
        if (s.what === 'pods with warnings') {
          // So that the next step tests their removal.
          t.true(got.problems.some((p) => p.code === 'inventory/pod-ip-is-node-ip' && p.message.includes('Pod default/node-ip')));
          t.true(got.problems.some((p) => p.code === 'inventory/bad-address' && p.message.includes('Pod default/bad-ip')));
        }
        if (builder.lastModel === 'incremental') incremental++;
      }
    }
  }
  t.true(incremental > 100, `${incremental} incremental builds`);
  t.true(fedBuilds > 100, `${fedBuilds} builds from the feed`);
});

test('an object feed is used only from the list the last build read: another lineage, a skipped or unknown step, or counts that do not add up fall back to comparing the lists', (t) => {
  const cluster = loadBaseCluster();
  const config = caseConfig(loadConformanceCases()[0]!);
  const input = (objects: readonly KubeObject[], objectFeed?: ObjectFeed): StateInput => ({ config, load: { ...cluster, objects: [...objects], ...(objectFeed === undefined ? {} : { objectFeed }) }, nodeName: CONFORMANCE_NODE });
  const a = pod('a', 'default', { app: 'web' }, '198.51.100.91');
  const b = pod('b', 'default', { app: 'web' }, '198.51.100.92');
  const lists = [cluster.objects, [...cluster.objects, a], [...cluster.objects, a, b], [...cluster.objects, b]];
  const check = (builder: StateBuilder, i: StateInput, want: 'feed' | 'walk', what: string): void => {
    t.deepEqual(builder.build(i), buildState(i), what);
    t.is(builder.lastObjectChanges, want, what);
    t.is(builder.lastInventory, 'objects', what);
  };
  const log = new ObjectChangeLog();
  const feeds = [log.commit(1, undefined), log.commit(2, { gone: [], come: [a] }), log.commit(3, { gone: [], come: [b] }), log.commit(4, { gone: [a], come: [] })];
  const builder = new StateBuilder();
  builder.build(input(lists[0]!, feeds[0]));
  check(builder, input(lists[1]!, feeds[1]), 'feed', 'one step');
  check(builder, input(lists[3]!, feeds[3]), 'feed', 'a snapshot skipped: the steps composed');
  // A feed of another source: its revisions mean nothing here.
  const other = new ObjectChangeLog();
  other.commit(3, undefined);
  check(builder, input(lists[2]!, other.commit(4, { gone: [], come: [] })), 'walk', 'another lineage');
  // The next one reaches back over an unknown step.
  const unknown = new ObjectChangeLog();
  const u1 = unknown.commit(1, undefined);
  check(builder, input(lists[1]!, u1), 'walk', 'first list of a lineage');
  unknown.commit(2, undefined);
  check(builder, input(lists[3]!, unknown.commit(3, { gone: [a], come: [b] })), 'walk', 'over an unknown step');
  // A feed that claims nothing changed while the list grew: not trusted.
  const liar = new ObjectChangeLog();
  check(builder, input(lists[3]!, liar.commit(1, undefined)), 'walk', 'liar lineage starts');
  check(builder, input(lists[2]!, liar.commit(2, { gone: [], come: [] })), 'walk', 'counts do not add up');
});

test('after reset the next build is a full one', (t) => {
  const cluster = loadBaseCluster();
  const input: StateInput = { config: caseConfig(loadConformanceCases()[0]!), load: cluster, nodeName: CONFORMANCE_NODE };
  const builder = new StateBuilder();
  builder.build(input);
  builder.build(input);
  t.is(builder.lastModel, 'incremental');
  builder.reset();
  t.deepEqual(builder.build(input), buildState(input));
  t.is(builder.lastModel, 'full');
});

test('madeIncrementally names the models of incremental builds only (the agent keys those by identity)', (t) => {
  const cluster = loadBaseCluster();
  const input: StateInput = { config: caseConfig(loadConformanceCases()[0]!), load: cluster, nodeName: CONFORMANCE_NODE };
  const builder = new StateBuilder();
  const first = builder.build(input).model;
  t.false(builder.madeIncrementally(first));
  const more: StateInput = { ...input, load: { ...cluster, objects: [...cluster.objects, pod('extra', 'default', { app: 'extra' }, '192.0.2.77')] } };
  const second = builder.build(more).model;
  t.is(builder.lastModel, 'incremental');
  t.true(builder.madeIncrementally(second));
  builder.reset();
  const third = builder.build(more).model;
  t.is(builder.lastModel, 'full');
  t.false(builder.madeIncrementally(third), 'a full rebuild is a new object, hashed by content');
  t.deepEqual(third, second);
});

test('with a feed that counts its list, pod events the feed explains never read the list (a source may make it only when read); a count that does not add up reads it', (t) => {
  const cluster = loadBaseCluster();
  const config = caseConfig(loadConformanceCases()[0]!);
  let reads = 0;
  // The load as the Kubernetes source hands it out: the list behind a getter, the feed with its size.
  const lazy = (objects: readonly KubeObject[], objectFeed: ObjectFeed): StateInput => ({
    config,
    load: {
      policies: cluster.policies,
      problems: cluster.problems,
      get objects() {
        reads++;
        return [...objects];
      },
      objectFeed,
    },
    nodeName: CONFORMANCE_NODE,
  });
  const plain = (objects: readonly KubeObject[]): StateInput => ({ config, load: { ...cluster, objects: [...objects] }, nodeName: CONFORMANCE_NODE });
  const pods = Array.from({ length: 12 }, (_, i) => pod(`p${i}`, i % 2 === 0 ? 'default' : 'kube-system', { app: i % 3 === 0 ? 'web' : 'db' }, `198.51.100.${100 + i}`));
  const log = new ObjectChangeLog();
  const builder = new StateBuilder();
  let list: readonly KubeObject[] = cluster.objects;
  builder.build(lazy(list, log.commit(1, undefined, list.length)));
  t.is(builder.lastInventory, 'full');
  let revision = 1;
  const step = (next: readonly KubeObject[], what: string): void => {
    const change = objectChanges(list, next, Infinity);
    list = next;
    reads = 0;
    const input = lazy(list, log.commit(++revision, change, list.length));
    const got = builder.build(input);
    t.is(reads, 0, `${what}: the list was not read`);
    t.is(builder.lastObjectChanges, 'feed', what);
    t.is(builder.lastInventory, 'objects', what);
    const want = buildState(plain(list));
    t.deepEqual(got, want, what);
    // Inventory.pods of an update is made when read: compared as a plain array too.
    t.deepEqual([...got.inventory.pods], [...want.inventory.pods], `${what}: pods`);
  };
  for (const [i, p] of pods.entries()) step([...list, p], `pod ${i} added`);
  step(list.map((o) => (o === pods[3] ? pod('p3', 'kube-system', { app: 'web' }, '198.51.100.200') : o)), 'p3 readdressed and relabelled');
  step(list.filter((o) => o !== pods[4] && o !== pods[5]), 'two pods deleted');
  // A feed whose count disagrees with the changes it reports: not trusted, the lists are compared.
  reads = 0;
  const liar = lazy([...list, pods[4]!], log.commit(++revision, { gone: [], come: [] }, list.length + 1));
  const got = builder.build(liar);
  t.true(reads > 0);
  t.is(builder.lastObjectChanges, 'walk');
  t.deepEqual(got, buildState(plain([...list, pods[4]!])));
});
