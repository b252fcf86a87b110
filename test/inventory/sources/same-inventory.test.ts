// The API source feeds the inventory builder exactly what the file source would:
// the same cluster, once as a manifest file and once through the fake API, gives
// the same Inventory.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadManifestText } from '../../../src/api/load-manifests.js';
import { buildInventory } from '../../../src/inventory/build-inventory.js';
import { defaultConfig } from '../../../src/inventory/config.js';
import { KubernetesSource, type KubernetesSnapshot } from '../../../src/inventory/sources/kubernetes.js';
import { FakeApiServer, type ResourceName, type StoredObject } from '../../helpers/fake-apiserver.js';
import { ciliumEndpoint, pod, podPeerPolicy, seedBaseCluster } from '../../helpers/fake-apiserver-cluster.js';

const resources: ResourceName[] = ['nodes', 'namespaces', 'endpointslices', 'ciliumnodes', 'ciliumendpoints', 'pods'];

test('same cluster from a file and from the API: same inventory, same policies', async (t) => {
  const server = await FakeApiServer.start();
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-same-'));
  const source = new KubernetesSource({ kubeconfig: server.writeKubeconfig(dir), debounceMs: 20 });
  t.teardown(async () => {
    await source.stop();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  seedBaseCluster(server);
  server.apply('pods', pod('default', 'web-1', '198.51.100.10', { app: 'web' }));
  server.apply('pods', { ...pod('default', 'host-1', '192.0.2.2', { app: 'agent' }), spec: { hostNetwork: true, nodeName: 'node-b' } });
  server.apply('ciliumendpoints', ciliumEndpoint('kube-system', 'dns-1', '198.51.100.20', { 'k8s-app': 'kube-dns' }));
  server.apply('ciliumclusterwidenetworkpolicies', podPeerPolicy('from-web'));

  // The file source: every object as the API holds it, in one List manifest.
  const items = resources.flatMap((r) => {
    const out: StoredObject[] = [];
    for (const name of ['node-a', 'node-b', 'node-c', 'default', 'kube-system', 'kubernetes', 'web-1', 'host-1', 'dns-1']) {
      for (const ns of [undefined, 'default', 'kube-system']) {
        const o = server.get(r, name, ns);
        if (o !== undefined && !out.includes(o)) out.push(o);
      }
    }
    return out;
  });
  const fromFile = loadManifestText(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), 'cluster.json');
  t.deepEqual(fromFile.problems, []);

  let snap: KubernetesSnapshot | undefined;
  await source.start((s) => (snap = s));
  const end = Date.now() + 60_000;
  while (snap === undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  if (snap === undefined) return t.fail('no snapshot');
  t.is(snap.policies[0]?.name, 'from-web');

  // With needPods auto, the policy's fromEndpoints made the source read CiliumEndpoints (Cilium runs here), not Pods.
  const fileObjects = fromFile.objects.filter((o) => o.kind !== 'Pod');
  t.is(snap.objects.length, fileObjects.length);
  const opts = { nodeName: 'node-a' };
  const a = buildInventory(fileObjects, defaultConfig, opts);
  const b = buildInventory(snap.objects, defaultConfig, opts);
  t.deepEqual(b.inventory, a.inventory);
  t.deepEqual(b.problems.map((p) => p.code), a.problems.map((p) => p.code));
  t.deepEqual(b.inventory.apiServerAddresses, ['192.0.2.2', '192.0.2.50']);
  t.deepEqual(b.inventory.self.healthAddresses, ['192.0.2.101']);
  t.is(b.inventory.pods.length, 1);
  t.is(b.inventory.pods[0]?.labels['k8s-app'], 'kube-dns');

  // And with Pods instead of CiliumEndpoints (no Cilium): host-network pods left out in both.
  source.setNeedPods(false);
  await source.stop();
  const podSource = new KubernetesSource({ kubeconfig: server.writeKubeconfig(dir), debounceMs: 20, needPods: true });
  server.setAbsent('ciliumendpoints', true);
  let snap2: KubernetesSnapshot | undefined;
  await podSource.start((s) => (snap2 = s));
  t.teardown(() => podSource.stop());
  const end2 = Date.now() + 60_000;
  while (snap2 === undefined && Date.now() < end2) await new Promise((r) => setTimeout(r, 10));
  if (snap2 === undefined) return t.fail('no snapshot');
  const filePods = fromFile.objects.filter((o) => o.kind !== 'CiliumEndpoint');
  t.deepEqual(buildInventory(snap2.objects, defaultConfig, opts).inventory, buildInventory(filePods, defaultConfig, opts).inventory);
  t.deepEqual(buildInventory(snap2.objects, defaultConfig, opts).inventory.pods.map((p) => p.name), ['web-1']);
});
