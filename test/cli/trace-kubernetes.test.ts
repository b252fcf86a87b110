// `nodewall trace` with the Kubernetes API as a source (src/pipeline.ts
// loadState -> readKubernetesOnce): the CLI child process reads the fake API
// server on loopback.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { node, seedBaseCluster, sshPolicy } from '../helpers/fake-apiserver-cluster.js';
import { runCli } from '../helpers/run-cli.js';

interface TraceJson {
  verdict: 'allow' | 'deny';
  enforced: boolean;
  matched: { policy: string; rule: string; action: string }[];
}

interface Setup {
  readonly server: FakeApiServer;
  readonly dir: string;
  readonly config: string;
}

async function setup(t: ExecutionContext): Promise<Setup> {
  const server = await FakeApiServer.start();
  const dir = await mkdtemp(join(tmpdir(), 'nwt-int-cli-'));
  t.teardown(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  seedBaseCluster(server);
  server.apply('ciliumclusterwidenetworkpolicies', sshPolicy('ssh-from-api'));
  server.writeKubeconfig(dir);
  const config = join(dir, 'nodewall.yaml');
  // Relative kubeconfig: resolved against the config file's directory. The only source is the API.
  await writeFile(config, 'nodeName: node-a\nmode: dry-run\nsources:\n  - kubernetes: {kubeconfig: kubeconfig}\n');
  return { server, dir, config };
}

async function trace(s: Setup, extra: readonly string[], port: number): Promise<{ code: number; json: TraceJson; stderr: string }> {
  const r = await runCli(['trace', '--config', s.config, '--output', 'json', ...extra, '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', String(port)], { timeoutMs: 60_000 });
  return { code: r.code, json: JSON.parse(r.stdout || '{}') as TraceJson, stderr: r.stderr };
}

test('trace with only the kubernetes source reads policies and cluster state from the API', async (t) => {
  const s = await setup(t);
  const ssh = await trace(s, [], 22);
  t.is(ssh.code, 0, ssh.stderr);
  t.is(ssh.json.verdict, 'allow');
  t.true(ssh.json.enforced);
  t.is(ssh.json.matched[0]?.policy, 'ssh-from-api');
  const other = await trace(s, [], 8080);
  t.is(other.json.verdict, 'deny');
  t.deepEqual(other.json.matched, []);
  t.true(s.server.requests.some((r) => r.resource === 'ciliumclusterwidenetworkpolicies' && r.method === 'GET'));
});

test('node labels come from the Node object in the API', async (t) => {
  const s = await setup(t);
  s.server.apply('ciliumclusterwidenetworkpolicies', {
    metadata: { name: 'edge-only' },
    spec: { nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '8443', protocol: 'TCP' }] }] }] },
  });
  t.is((await trace(s, [], 8443)).json.verdict, 'allow');
  s.server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'core' }));
  t.is((await trace(s, [], 8443)).json.verdict, 'deny');
});

test('--source adds manifest files and keeps the kubernetes source', async (t) => {
  const s = await setup(t);
  const file = join(s.dir, 'web.yaml');
  await writeFile(file, [
    'apiVersion: cilium.io/v2',
    'kind: CiliumClusterwideNetworkPolicy',
    'metadata: {name: web-from-file}',
    'spec:',
    '  nodeSelector: {}',
    '  ingress: [{fromCIDR: [203.0.113.0/24], toPorts: [{ports: [{port: "8080", protocol: TCP}]}]}]',
    '',
  ].join('\n'));
  const web = await trace(s, ['--source', file], 8080);
  t.is(web.code, 0, web.stderr);
  t.is(web.json.matched[0]?.policy, 'web-from-file');
  const ssh = await trace(s, ['--source', file], 22);
  t.is(ssh.json.matched[0]?.policy, 'ssh-from-api');
});
