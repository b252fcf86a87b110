// readDesired with the Kubernetes source's snapshots: CCNPs from the API take
// part in per-policy last-good like manifest files, and nothing is to be applied
// while the source is configured but has handed out no snapshot.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { readDesired, type Memory } from '../../src/agent/reconcile.js';
import { sha256 } from '../../src/inventory/read-manifest-files.js';
import type { KubernetesSnapshot, PolicyFile } from '../../src/inventory/sources/kubernetes.js';

const nodeA = loadManifestText(JSON.stringify({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name: 'node-a', labels: { role: 'edge' } },
  status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] },
}), 'k8s:cluster-objects').objects;

function ccnp(name: string, port: string): PolicyFile {
  const file = `k8s:ccnp/${name}`;
  const text = JSON.stringify({
    apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name },
    spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }] },
  }, null, 2);
  return { file, text, hash: sha256(text), load: loadManifestText(text, file) };
}

function snapshot(revision: number, files: PolicyFile[], origin: KubernetesSnapshot['origin'] = 'api'): KubernetesSnapshot {
  return {
    objects: [...nodeA],
    policies: files.flatMap((f) => f.load.policies),
    problems: files.flatMap((f) => f.load.problems),
    origin,
    revision,
    policyFiles: files,
  };
}

async function configFile(t: ExecutionContext, kubernetes: boolean): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-int-rd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'nodewall.yaml');
  const sources = kubernetes ? '  - kubernetes: {kubeconfig: /nonexistent/kubeconfig}\n' : `  - ${join(dir, 'policies')}\n`;
  await writeFile(file, `nodeName: node-a\nmode: enforce\nstateDir: ${join(dir, 'state')}\nsources:\n${sources}`);
  return file;
}

const memory = (): Memory => ({ lastGood: new Map(), texts: new Map() });
const ports = (d: Awaited<ReturnType<typeof readDesired>>): string[] =>
  d.state.model.ingress.entries
    .flatMap((e) => e.l4.flatMap((m) => (m.kind === 'ports' ? m.ranges.map(([lo]) => `${e.policy}:${lo}`) : [])))
    .sort();

test('configured but no snapshot yet: waiting, no policy from the API', async (t) => {
  const configFileName = await configFile(t, true);
  const d = await readDesired({ configFile: configFileName, overrides: {}, kubernetes: { snapshot: undefined, generation: 1 } }, memory());
  t.true(d.waitingForKubernetes);
  t.deepEqual(d.state.policies, []);
  const none = await readDesired({ configFile: configFileName, overrides: {} }, memory());
  t.true(none.waitingForKubernetes);
});

test('a snapshot feeds policies and objects; texts are kept for the last-good store; the hash follows the revision', async (t) => {
  const file = await configFile(t, true);
  const mem = memory();
  const web = ccnp('web', '8080');
  const d1 = await readDesired({ configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(1, [web]), generation: 1 } }, mem);
  t.false(d1.waitingForKubernetes);
  t.deepEqual(d1.state.valid.map((p) => p.name), ['web']);
  t.deepEqual(ports(d1), ['web:8080']);
  t.is(d1.state.inventory.self.labels['role'], 'edge', 'the Node object came through');
  t.is(mem.texts.get(web.hash), web.text);
  t.like(d1.merge.lastGood.get('web'), { file: 'k8s:ccnp/web', textHash: web.hash });

  const same = await readDesired({ configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(1, [web]), generation: 1 } }, mem);
  t.is(same.inputHash, d1.inputHash);
  const next = await readDesired({ configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(2, [web]), generation: 1 } }, mem);
  t.not(next.inputHash, d1.inputHash);
  const otherSource = await readDesired({ configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(1, [web]), generation: 2 } }, mem);
  t.not(otherSource.inputHash, d1.inputHash);
});

test('an invalid CCNP from the API keeps its last good version; a new invalid one is rejected', async (t) => {
  const file = await configFile(t, true);
  const mem = memory();
  const good = await readDesired({ configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(1, [ccnp('web', '8080')]), generation: 1 } }, mem);
  mem.lastGood = good.merge.lastGood;
  const bad = await readDesired({
    configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(2, [ccnp('web', '99999'), ccnp('new', '70000')]), generation: 1 },
  }, mem);
  t.deepEqual(bad.merge.kept, [{ policy: 'web', file: 'k8s:ccnp/web', reason: 'invalid' }]);
  t.deepEqual(bad.merge.rejected, [{ policy: 'new', file: 'k8s:ccnp/new' }]);
  t.deepEqual(ports(bad), ['web:8080']);
  const replaced = bad.merge.replacedProblems.find((p) => p.policy === 'web');
  t.regex(replaced?.field ?? '', /^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]/);
});

test('without a kubernetes source in the config, a snapshot is ignored', async (t) => {
  const file = await configFile(t, false);
  const d = await readDesired({ configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(1, [ccnp('web', '8080')]), generation: 1 } }, memory());
  t.false(d.waitingForKubernetes);
  t.deepEqual(d.state.policies, []);
});

test('files and the API combine; while the API has no snapshot the file policies wait too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-int-rd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const policies = join(dir, 'policies');
  await mkdir(policies);
  await writeFile(join(policies, 'ssh.yaml'), [
    'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata: {name: ssh}',
    'spec: {nodeSelector: {}, ingress: [{fromCIDR: [203.0.113.0/24], toPorts: [{ports: [{port: "22", protocol: TCP}]}]}]}', '',
  ].join('\n'));
  const file = join(dir, 'nodewall.yaml');
  await writeFile(file, `nodeName: node-a\nstateDir: ${join(dir, 'state')}\nsources:\n  - ${policies}\n  - kubernetes: {}\n`);
  const waiting = await readDesired({ configFile: file, overrides: {} }, memory());
  t.true(waiting.waitingForKubernetes);
  const both = await readDesired({ configFile: file, overrides: {}, kubernetes: { snapshot: snapshot(1, [ccnp('web', '8080')]), generation: 1 } }, memory());
  t.false(both.waitingForKubernetes);
  t.deepEqual(ports(both), ['ssh:22', 'web:8080']);
  t.deepEqual([...both.merge.lastGood.values()].map((g) => g.file).sort(), ['k8s:ccnp/web', join(policies, 'ssh.yaml')].sort());
});
