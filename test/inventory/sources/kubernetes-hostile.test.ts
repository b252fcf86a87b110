// Objects from the Kubernetes API get the same checks as files (issue 8 defects 4, 5): a CCNP
// whose name holds a NUL is invalid with a printable error, a Node with an escape in a label is
// skipped with a warning, and a label named `constructor` selects as any other label. The API
// here is the loopback fake, which (unlike a real API server) stores whatever it is given.
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { formatProblem } from '../../../src/api/problem.js';
import { readKubernetesOnce } from '../../../src/inventory/sources/kubernetes.js';
import { parseConfig } from '../../../src/inventory/config.js';
import { buildState } from '../../../src/pipeline.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { node, seededFakeApi } from '../../helpers/fake-apiserver-cluster.js';

/** The loopback fake with the base cluster, a temporary directory, both removed at the end. */
function seededApi(t: ExecutionContext): Promise<{ server: FakeApiServer; dir: string }> {
  return seededFakeApi(t, 'nw-k8s-hostile-');
}

/** node-a's state from one read of the API. */
async function nodeAState(server: FakeApiServer, dir: string) {
  const snap = await readKubernetesOnce({ kubeconfig: server.writeKubeconfig(dir) });
  const config = parseConfig('nodeName: node-a\nmode: enforce\n', join(dir, 'nodewall.yaml'));
  return buildState({ config, nodeName: 'node-a', load: { policies: snap.policies, objects: snap.objects, problems: snap.problems } });
}

test('API objects with control characters are refused like file objects; a constructor label works', async (t) => {
  const { server, dir } = await seededApi(t);
  server.apply('nodes', node('node-z', '192.0.2.9', '2001:db8::9', { zone: 'a\u001b[2J' }));
  server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'edge', constructor: 'yes' }));
  server.apply('ciliumclusterwidenetworkpolicies', {
    metadata: { name: 'evil\u0000open' },
    spec: { nodeSelector: {}, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] },
  });
  server.apply('ciliumclusterwidenetworkpolicies', {
    metadata: { name: 'by-constructor' },
    spec: { nodeSelector: { matchLabels: { constructor: 'yes' } }, ingress: [{ fromEntities: ['world'] }] },
  });

  const state = await nodeAState(server, dir);

  const nameError = state.problems.find((p) => p.code === 'metadata-name');
  t.is(nameError?.severity, 'error');
  t.is(nameError?.pos.file, 'k8s:ccnp/evil\u0000open');
  t.is(formatProblem(nameError!).split(': error:')[0], 'k8s:ccnp/evil\\u0000open:5:5');
  t.regex(formatProblem(nameError!), /metadata\.name: Invalid value: "evil\\u0000open": contains the control character U\+0000/);
  const nodeWarning = state.problems.find((p) => p.code === 'inventory/bad-metadata');
  t.is(nodeWarning?.field, 'metadata.labels.zone');
  t.is(nodeWarning?.pos.file, 'k8s:node/node-z');
  for (const p of state.problems) t.notRegex(formatProblem(p), /[\u0000-\u001f]/);

  t.deepEqual([...state.model.selectedPolicies], ['by-constructor']);
  t.false(state.inventory.remoteNodes.some((n) => n.name === 'node-z'));
  t.is(state.inventory.self.labels['constructor'], 'yes');
});

// A CCNP annotated nodewall.io/stage from the API is staged like a file's; a bad value is an error naming
// k8s:ccnp/NAME, its line and the annotation path.
test('the stage annotation of a CCNP from the API stages it; an unknown value is an error at the annotation', async (t) => {
  const { server, dir } = await seededApi(t);
  server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'edge' }));
  const spec = { nodeSelector: {}, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] };
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'enforced' }, spec: { ...spec, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }] } });
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'staged', annotations: { 'nodewall.io/stage': 'audit', other: 'x' } }, spec });
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'typo', annotations: { 'nodewall.io/stage': 'audti' } }, spec });

  const state = await nodeAState(server, dir);
  t.deepEqual([...state.model.selectedPolicies], ['enforced']);
  t.deepEqual(state.model.staged?.policies, ['staged']);
  const err = state.problems.find((p) => p.code === 'stage/unknown');
  t.is(err?.pos.file, 'k8s:ccnp/typo');
  t.regex(formatProblem(err!), /^k8s:ccnp\/typo:\d+:\d+: error: policy typo: metadata\.annotations\["nodewall\.io\/stage"\]: unknown stage "audti"/);
});
