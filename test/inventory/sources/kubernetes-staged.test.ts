// A CCNP annotated nodewall.io/stage from the Kubernetes API (the loopback fake) is staged like a file's;
// a bad value is an error naming k8s:ccnp/NAME, its line and the annotation path.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { formatProblem } from '../../../src/api/problem.js';
import { readKubernetesOnce } from '../../../src/inventory/sources/kubernetes.js';
import { parseConfig } from '../../../src/inventory/config.js';
import { buildState } from '../../../src/pipeline.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { node, seedBaseCluster } from '../../helpers/fake-apiserver-cluster.js';

test('the stage annotation of a CCNP from the API stages it; an unknown value is an error at the annotation', async (t) => {
  const server = await FakeApiServer.start();
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-staged-'));
  t.teardown(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  seedBaseCluster(server);
  server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'edge' }));
  const spec = { nodeSelector: {}, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] };
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'enforced' }, spec: { ...spec, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }] } });
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'staged', annotations: { 'nodewall.io/stage': 'audit', other: 'x' } }, spec });
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'typo', annotations: { 'nodewall.io/stage': 'audti' } }, spec });

  const snap = await readKubernetesOnce({ kubeconfig: server.writeKubeconfig(dir) });
  const config = parseConfig('nodeName: node-a\nmode: enforce\n', join(dir, 'nodewall.yaml'));
  const state = buildState({ config, nodeName: 'node-a', load: { policies: snap.policies, objects: snap.objects, problems: snap.problems } });
  t.deepEqual([...state.model.selectedPolicies], ['enforced']);
  t.deepEqual(state.model.staged?.policies, ['staged']);
  const err = state.problems.find((p) => p.code === 'stage/unknown');
  t.is(err?.pos.file, 'k8s:ccnp/typo');
  t.regex(formatProblem(err!), /^k8s:ccnp\/typo:\d+:\d+: error: policy typo: metadata\.annotations\["nodewall\.io\/stage"\]: unknown stage "audti"/);
});
