// The Kubernetes source on its own client (issue 9): in-cluster credentials with a rotating
// token, the client library's fallback (an exec plugin) for a whole source run, a watch event
// over the line bound (an error, retried, the last state kept), a list page over the page
// bound.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { KubernetesSource, type KubernetesSnapshot, type KubernetesSourceOptions } from '../../../src/inventory/sources/kubernetes.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { node, seededFakeApi } from '../../helpers/fake-apiserver-cluster.js';

async function waitFor(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function run(t: ExecutionContext, opts: KubernetesSourceOptions): Promise<{ source: KubernetesSource; snaps: KubernetesSnapshot[] }> {
  const snaps: KubernetesSnapshot[] = [];
  const source = new KubernetesSource({ debounceMs: 20, backoff: { initialMs: 50, maxMs: 400 }, ...opts });
  t.teardown(() => source.stop());
  await source.start((s) => snaps.push(s));
  return { source, snaps };
}

function setup(t: ExecutionContext): Promise<{ server: FakeApiServer; dir: string }> {
  return seededFakeApi(t, 'nw-kclient-');
}

const nodeNames = (s: KubernetesSnapshot | undefined): string[] => (s?.objects ?? []).filter((o) => o.kind === 'Node').map((o) => o.metadata.name).sort();

test('in-cluster: lists and watches with the ServiceAccount token; a rotated token is picked up on reconnect', async (t) => {
  const { server, dir } = await setup(t);
  const sa = join(dir, 'sa');
  await mkdir(sa);
  await writeFile(join(sa, 'ca.crt'), server.cert.cert);
  await writeFile(join(sa, 'token'), 'nodewall-test-token');
  const { source, snaps } = await run(t, {
    inCluster: true,
    env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(server.port) },
    serviceAccountDir: sa,
  });
  await waitFor('snapshot', () => snaps.length > 0);
  t.deepEqual(nodeNames(snaps.at(-1)), ['node-a', 'node-b', 'node-c']);
  t.is(source.server, server.url);
  await waitFor('connected', () => source.status().connected);
  // The kubelet writes a new token and the old one stops working: the reconnect uses the new one.
  await writeFile(join(sa, 'token'), 'rotated-token');
  server.setToken('rotated-token');
  server.dropWatches();
  server.apply('nodes', node('node-d', '192.0.2.4', '2001:db8::4'));
  await waitFor('the change after the rotation', () => nodeNames(snaps.at(-1)).includes('node-d'));
  t.is(source.status().lastError, undefined, 'no 401 on the way');
});

test('an exec-plugin kubeconfig runs the whole source through the client library fallback', async (t) => {
  const { server, dir } = await setup(t);
  const file = join(dir, 'kubeconfig');
  const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'nodewall-test-token' } });
  await writeFile(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'x',
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    clusters: [{ name: 'c', cluster: { server: server.url, 'certificate-authority-data': Buffer.from(server.cert.cert).toString('base64') } }],
    users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: '/bin/sh', args: ['-c', `echo '${credential}'`] } } }],
  }));
  const logs: string[] = [];
  const logger = { debug() {}, info(o: object, m: string) { logs.push(`${m} ${JSON.stringify(o)}`); }, warn() {}, error() {} };
  const { snaps } = await run(t, { kubeconfig: file, logger });
  await waitFor('snapshot', () => snaps.length > 0);
  t.deepEqual(nodeNames(snaps.at(-1)), ['node-a', 'node-b', 'node-c']);
  t.true(logs.some((l) => l.includes('"client":"library"')), logs.join('\n'));
  server.apply('nodes', node('node-d', '192.0.2.4', '2001:db8::4'));
  await waitFor('a watch event through the fallback', () => nodeNames(snaps.at(-1)).includes('node-d'));
});

test('a watch event over the line bound is an API error (retried with backoff), the last state stays', async (t) => {
  const { server, dir } = await setup(t);
  const errors: string[] = [];
  const { source, snaps } = await run(t, { kubeconfig: server.writeKubeconfig(dir), limits: { maxLineBytes: 4096 }, onApiError: (e) => errors.push(e.message) });
  await waitFor('snapshot', () => snaps.length > 0);
  await waitFor('connected', () => source.status().connected);
  const good = snaps.at(-1);
  server.apply('nodes', node('node-big', '192.0.2.9', '2001:db8::9', { pad: 'x'.repeat(60), ...Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, 'v'.repeat(60)])) }));
  await waitFor('the error', () => errors.some((m) => m.includes('longer than 4096 characters')));
  t.regex(source.status().lastError ?? '', /Node: .*watch \/api\/v1\/nodes: an event line is longer than 4096 characters/);
  t.is(snaps.at(-1), good);
  t.false(nodeNames(snaps.at(-1)).includes('node-big'));
  // Retried, not given up: the error comes again (the event is replayed on every resume).
  const n = errors.length;
  await waitFor('retried', () => errors.length > n);
  t.pass();
});

test('a list page over the page bound fails the list with a clear error; nothing is handed out', async (t) => {
  const { server, dir } = await setup(t);
  const errors: string[] = [];
  const { source, snaps } = await run(t, { kubeconfig: server.writeKubeconfig(dir), limits: { maxListBytes: 1500 }, onApiError: (e) => errors.push(e.message) });
  await waitFor('the error', () => errors.some((m) => /Node: GET \/api\/v1\/nodes: response larger than 1500 bytes/.test(m)));
  t.false(source.synced());
  t.is(snaps.length, 0);
});

test('CCNPs decoded in the background equal a plain decode of each, and a changed CCNP is decoded again', async (t) => {
  const { server, dir } = await setup(t);
  // More than one background step (20 per step), pods needed by some (the search stops at the first).
  for (let i = 0; i < 65; i++) {
    const spec = i % 3 === 0
      ? { nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: `a${i}` } }] }] }
      : { nodeSelector: {}, ingress: [{ fromCIDR: [`198.51.100.${i}/32`], toPorts: [{ ports: [{ port: String(1000 + i), protocol: 'TCP' }] }] }] };
    server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: `p${String(i).padStart(2, '0')}` }, spec });
  }
  const { source, snaps } = await run(t, { kubeconfig: server.writeKubeconfig(dir), node: { name: 'node-a' } });
  await waitFor('snapshot with pods watched', () => snaps.length > 0 && source.status().pods === 'CiliumEndpoint' && source.synced());
  const s = snaps.at(-1)!;
  t.is(s.policyFiles.length, 65);
  const { loadManifestText } = await import('../../../src/api/load-manifests.js');
  const plain = (f: { file: string; text: string }): unknown => {
    const l = loadManifestText(f.text, f.file);
    return { problems: l.problems, policies: l.policies.map(({ locate: _, ...p }) => p) };
  };
  for (const f of s.policyFiles) {
    const { locate: _, ...got } = f.load.policies[0]!;
    t.deepEqual({ problems: f.load.problems, policies: [got] }, plain(f), f.file);
  }
  const before = s.policyFiles.find((f) => f.file === 'k8s:ccnp/p07')!;
  server.apply('ciliumclusterwidenetworkpolicies', { metadata: { name: 'p07' }, spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['203.0.113.7/32'] }] } });
  await waitFor('p07 changed', () => snaps.at(-1)!.policyFiles.find((f) => f.file === 'k8s:ccnp/p07')?.hash !== before.hash);
  const after = snaps.at(-1)!.policyFiles.find((f) => f.file === 'k8s:ccnp/p07')!;
  t.is(after.load.policies[0]?.rules[0]?.ingress?.[0]?.cidr?.[0], '203.0.113.7/32');
  t.is(snaps.at(-1)!.policyFiles.find((f) => f.file === 'k8s:ccnp/p08')?.load, s.policyFiles.find((f) => f.file === 'k8s:ccnp/p08')?.load, 'unchanged: the same decode');
});

test('a server that repeats its continue token fails the list (no endless paging), over plain http with insecure-skip-tls-verify', async (t) => {
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ items: [{ metadata: { name: `n-${url.searchParams.get('continue') ?? 'first'}` } }], metadata: { resourceVersion: '5', continue: 'again' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const dir = await mkdtemp(join(tmpdir(), 'nw-kclient-'));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'kubeconfig');
  const port = (server.address() as { port: number }).port;
  await writeFile(file, `apiVersion: v1\ncurrent-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\n`);
  const errors: string[] = [];
  const { source, snaps } = await run(t, { kubeconfig: file, onApiError: (e) => errors.push(e.message) });
  await waitFor('the error', () => errors.some((m) => /the server repeated its continue token/.test(m)));
  t.false(source.synced());
  t.is(snaps.length, 0);
});
