// The `kube-apiserver` rollout probe with the Kubernetes source: the fake API server is reached at a peer
// namespace address (198.51.100.30), so a CCNP denying egress to it really cuts the node off the API. The
// agent rolls that change back, names the probe and the policy, and tries a later version of the policy.

import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeApiServer, type JsonObject } from '../helpers/fake-apiserver.js';
import { seedBaseCluster } from '../helpers/fake-apiserver-cluster.js';
import { AgentProcess, agentDirs, isApplied, writeConfig } from './agent-harness.js';
import { Lab } from './lab.js';
import { forwardIntoNetns } from './netns-api-proxy.js';

// Outside the fake cluster's pod CIDR (198.51.100.0/26): CIDR rules never match cluster addresses.
const apiAddress = '198.51.100.200';

function lockApi(port?: number): JsonObject {
  return {
    metadata: { name: 'lock-api' },
    spec: {
      nodeSelector: {},
      enableDefaultDeny: { egress: false },
      egressDeny: [{ toCIDR: [`${apiAddress}/32`], ...(port === undefined ? {} : { toPorts: [{ ports: [{ port: String(port), protocol: 'TCP' }] }] }) }],
    },
  };
}

/**
 * A TCP connect from the node namespace (the forwarder already listens there, so not lab.probe). Every use
 * expects it to connect: the bound is generous for a busy machine (15 s, under lab.exec's 20 s kill).
 */
async function reachable(lab: Lab, port: number): Promise<boolean> {
  const script = `const s=require('node:net').connect(${port},'${apiAddress}');const t=setTimeout(()=>{console.log('timeout');process.exit(0)},15000);`
    + `s.on('connect',()=>{console.log('connected');s.destroy();clearTimeout(t)});s.on('error',(e)=>{console.log(e.code);clearTimeout(t)});`;
  return (await lab.exec('node', process.execPath, ['-e', script])).trim() === 'connected';
}

test('kube-apiserver probe: a CCNP cutting the node off the API server is rolled back and refused', async (t) => {
  const lab = await Lab.create(t, 'prbk');
  const server = await FakeApiServer.start();
  t.teardown(() => server.close());
  seedBaseCluster(server);
  // No ingress policy: a default-deny ingress would cut the source's watches opened before the first table
  // (conntrack picks them up mid-stream, the server's packets as the original direction), stalling the test.
  await lab.addPeerAddress(apiAddress);
  await forwardIntoNetns(t, lab.peerNs, server.port, apiAddress);
  const dirs = await agentDirs(t, {});
  // The API server at the peer's address: its test certificate names 127.0.0.1, so TLS verification is off.
  const kc = JSON.parse(await readFile(server.writeKubeconfig(dirs.root), 'utf8')) as { clusters: { cluster: Record<string, unknown> }[] };
  for (const c of kc.clusters) c.cluster = { server: `https://${apiAddress}:${server.port}`, 'insecure-skip-tls-verify': true };
  const kubeconfig = join(dirs.root, 'kubeconfig-peer');
  await writeFile(kubeconfig, JSON.stringify(kc));
  await writeConfig(dirs, {
    mode: 'enforce', lockoutGuard: 'off', resyncSeconds: 0,
    sources: [{ kubernetes: { kubeconfig } }],
    rollout: { probes: ['kube-apiserver'], probeSeconds: 3 },
  });
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  t.true(await reachable(lab, server.port));

  let mark = agent.lines.length;
  server.apply('ciliumclusterwidenetworkpolicies', lockApi());
  const rb = await agent.waitFor((l) => l['rollback'] === true && l.level === 50, 60_000, mark, 'rollback');
  t.is(rb['probe'], 'kube-apiserver');
  t.deepEqual(rb['policies'], ['lock-api']);
  await agent.waitFor((l) => l.msg === 'rollback: previous ruleset restored', 30_000, mark, 'restored');
  t.true(await reachable(lab, server.port), 'the node reaches the API server again');
  t.notRegex((await lab.nft(['list', 'table', 'inet', 'nodewall'])).stdout, /lock-api/);
  const st = JSON.parse(await readFile(join(dirs.state, 'status.json'), 'utf8')) as { refused?: { by: string; policies: { policy: string }[] }[]; lastApply?: { outcome: string } };
  t.deepEqual(st.refused?.map((r) => [r.by, r.policies.map((p) => p.policy)]), [['probe kube-apiserver', ['lock-api']]]);

  // A later version of the policy (another port) is tried again and stays.
  mark = agent.lines.length;
  server.apply('ciliumclusterwidenetworkpolicies', lockApi(1));
  await agent.waitFor((l) => /refused change of lock-api changed since: trying it again/.test(l.msg), 60_000, mark, 'retry');
  await agent.waitFor((l) => l.msg === 'rollout probes pass after the change', 60_000, mark, 'probes pass');
  t.regex((await lab.nft(['list', 'table', 'inet', 'nodewall'])).stdout, /lock-api spec\.egressDeny\[0\]/);
  t.true(await reachable(lab, server.port));
  t.is(await agent.stop(), 0);
});
