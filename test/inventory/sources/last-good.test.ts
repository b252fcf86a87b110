// An invalid CCNP from the API behaves as an invalid file does: through the
// agent's per-policy last-good merge (src/agent/last-good.ts), fed with
// snapshotFiles(), its last good version stays in force with its problems named.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { mergeWithLastGood, type GoodEntry } from '../../../src/agent/last-good.js';
import { parseConfig } from '../../../src/inventory/config.js';
import { snapshotFiles } from '../../../src/inventory/sources/kubernetes-files.js';
import { KubernetesSource, type KubernetesSnapshot } from '../../../src/inventory/sources/kubernetes.js';
import { buildState } from '../../../src/pipeline.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { seedBaseCluster, sshPolicy } from '../../helpers/fake-apiserver-cluster.js';

const config = parseConfig('mode: enforce\nnodeName: node-a\n', 'k8s.yaml');

test('an invalid new version of a CCNP keeps its last good version in force', async (t) => {
  const server = await FakeApiServer.start();
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-lastgood-'));
  const snaps: KubernetesSnapshot[] = [];
  const source = new KubernetesSource({ kubeconfig: server.writeKubeconfig(dir), debounceMs: 20 });
  t.teardown(async () => {
    await source.stop();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  seedBaseCluster(server);
  server.apply('ciliumclusterwidenetworkpolicies', sshPolicy('ssh'));
  await source.start((s) => snaps.push(s));
  const until = async (n: number) => {
    const end = Date.now() + 60_000;
    while (snaps.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    const s = snaps[n - 1];
    if (s === undefined) throw new Error(`no snapshot ${n}`);
    return s;
  };
  const build = (load: Parameters<typeof buildState>[0]['load']) => buildState({ config, load, nodeName: 'node-a' });

  const good = mergeWithLastGood(snapshotFiles(await until(1)), [], new Map<string, GoodEntry>(), build);
  t.deepEqual(good.kept, []);
  t.deepEqual(good.state.valid.map((p) => p.name), ['ssh']);
  t.is(good.lastGood.get('ssh')?.file, 'k8s:ccnp/ssh');

  // An edit that Cilium would reject: an invalid CIDR.
  server.apply('ciliumclusterwidenetworkpolicies', { ...sshPolicy('ssh'), spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['203.0.113.0/33'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }] } });
  const bad = mergeWithLastGood(snapshotFiles(await until(2)), [], good.lastGood, build);
  t.deepEqual(bad.kept, [{ policy: 'ssh', file: 'k8s:ccnp/ssh', reason: 'invalid' }]);
  t.deepEqual(bad.state.valid.map((p) => p.rules[0]?.ingress?.[0]?.cidr?.[0]), ['203.0.113.0/24']);
  t.true(bad.replacedProblems.some((p) => p.severity === 'error' && p.policy === 'ssh' && p.pos.file === 'k8s:ccnp/ssh' && p.field.startsWith('spec.ingress[0].fromCIDR[0]')));
  t.deepEqual(bad.state.model.ingress.entries.length, good.state.model.ingress.entries.length);

  // A brand-new invalid CCNP is simply not applied.
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'new-bad' }, spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['nope'] }] } });
  const fresh = mergeWithLastGood(snapshotFiles(await until(3)), [], bad.lastGood, build);
  t.deepEqual(fresh.rejected, [{ policy: 'new-bad', file: 'k8s:ccnp/new-bad' }]);
  t.deepEqual(fresh.state.valid.map((p) => p.name), ['ssh']);
});
