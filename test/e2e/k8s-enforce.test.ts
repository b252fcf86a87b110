// The Kubernetes source through the kernel: fake API server (loopback, this
// process) -> KubernetesSource -> buildState -> applyModel inside the lab's node
// namespace -> real packets from the peer namespace. The loop below is the
// minimal version of what the agent does with the source's snapshots.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { parseConfig } from '../../src/inventory/config.js';
import { cachePath } from '../../src/inventory/sources/cache.js';
import { KubernetesSource, type KubernetesSnapshot } from '../../src/inventory/sources/kubernetes.js';
import { applyModel, type ApplyResult } from '../../src/nft/apply.js';
import type { PreviousState } from '../../src/nft/set-delta.js';
import { buildState } from '../../src/pipeline.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { ciliumEndpoint, node, podPeerPolicy, seedBaseCluster, sshPolicy } from '../helpers/fake-apiserver-cluster.js';
import { Lab, nftPath } from './lab.js';

const table = 'nodewall';
const config = parseConfig('mode: enforce\nnodeName: node-a\nclusterPodCIDRs: [198.51.100.0/24, "2001:db8:100::/64"]\n', 'e2e.yaml');

interface Applied {
  readonly at: number;
  readonly origin: KubernetesSnapshot['origin'];
  readonly result: ApplyResult;
}

/** Snapshots -> model -> kernel, one apply at a time, the latest snapshot wins. */
class Enforcer {
  readonly applied: Applied[] = [];
  readonly errors: unknown[] = [];
  private pending: KubernetesSnapshot | undefined;
  private running: Promise<void> | undefined;
  private previous: PreviousState | undefined;
  private readonly lab: Lab;

  constructor(lab: Lab) {
    this.lab = lab;
  }

  onSnapshot = (s: KubernetesSnapshot): void => {
    this.pending = s;
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  };

  private async drain(): Promise<void> {
    while (this.pending !== undefined) {
      const s = this.pending;
      this.pending = undefined;
      try {
        const state = buildState({ config, load: { objects: s.objects, policies: s.policies, problems: s.problems }, nodeName: 'node-a' });
        const result = await applyModel(state.model, {
          nftPath,
          table,
          mode: 'enforce',
          netns: this.lab.nodeNs,
          ...(this.previous === undefined ? {} : { previous: this.previous }),
        });
        this.previous = result.state;
        this.applied.push({ at: performance.now(), origin: s.origin, result });
      } catch (err) {
        this.errors.push(err);
      }
    }
  }
}

interface Rig {
  readonly lab: Lab;
  readonly server: FakeApiServer;
  readonly dir: string;
  readonly kubeconfig: string;
  source: KubernetesSource;
  enforcer: Enforcer;
  start(opts?: { stateDir?: string }): Promise<void>;
}

async function rig(t: ExecutionContext, tag: string): Promise<Rig> {
  const lab = await Lab.create(t, tag);
  const server = await FakeApiServer.start();
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-e2e-'));
  const r: Rig = {
    lab,
    server,
    dir,
    kubeconfig: server.writeKubeconfig(dir),
    source: new KubernetesSource(),
    enforcer: new Enforcer(lab),
    async start(opts = {}) {
      r.enforcer = new Enforcer(lab);
      r.source = new KubernetesSource({ kubeconfig: r.kubeconfig, backoff: { initialMs: 100, maxMs: 1000 }, ...opts });
      await r.source.start(r.enforcer.onSnapshot);
    },
  };
  t.teardown(async () => {
    await r.source.stop();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  seedBaseCluster(server);
  server.apply('ciliumclusterwidenetworkpolicies', sshPolicy('ssh'));
  return r;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function appliedAfter(r: Rig, n: number): Promise<Applied> {
  await waitFor(`apply #${n + 1}`, () => r.enforcer.applied.length > n || r.enforcer.errors.length > 0);
  if (r.enforcer.errors.length > 0) throw r.enforcer.errors[0];
  const a = r.enforcer.applied[n];
  if (a === undefined) throw new Error('no apply');
  return a;
}

const tcpFrom = (peer: string, port: number) => ({ direction: 'ingress', peer, proto: 'tcp', port }) as const;

test('a CCNP created in the API is enforced by the kernel (latency logged)', async (t) => {
  const r = await rig(t, 'k8sccnp');
  await r.start();
  await appliedAfter(r, 0);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'deny'), 'deny');
  const n = r.enforcer.applied.length;
  const t0 = performance.now();
  r.server.apply('ciliumclusterwidenetworkpolicies', {
    metadata: { name: 'web' },
    spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] },
  });
  const a = await appliedAfter(r, n);
  const ms = a.at - t0;
  // Logged, not asserted: no wall-clock margins in tests (timings are in `npm run bench`).
  t.log(`API write -> kernel: ${ms.toFixed(0)} ms (${a.result.kind}: ${a.result.reason})`);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8081), 'deny'), 'deny');
});

test('a node label change moves this node into and out of a policy', async (t) => {
  const r = await rig(t, 'k8slbl');
  r.server.apply('ciliumclusterwidenetworkpolicies', {
    metadata: { name: 'edge-https' },
    spec: { nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '8443', protocol: 'TCP' }] }] }] },
  });
  await r.start();
  await appliedAfter(r, 0);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 8443), 'allow'), 'allow');
  let n = r.enforcer.applied.length;
  r.server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'core' }));
  await appliedAfter(r, n);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 8443), 'deny'), 'deny');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 22), 'allow'), 'allow');
  n = r.enforcer.applied.length;
  r.server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'edge' }));
  await appliedAfter(r, n);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 8443), 'allow'), 'allow');
});

test('a pod IP change is an element delta, and packets follow it', async (t) => {
  const r = await rig(t, 'k8spod');
  r.server.apply('ciliumclusterwidenetworkpolicies', podPeerPolicy('from-web'));
  r.server.apply('ciliumendpoints', ciliumEndpoint('default', 'web-1', '198.51.100.10', { app: 'web' }));
  await r.start();
  const first = await appliedAfter(r, 0);
  t.is(first.result.kind, 'full');
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.10', 9100), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.11', 9100), 'deny'), 'deny');
  const n = r.enforcer.applied.length;
  r.server.apply('ciliumendpoints', ciliumEndpoint('default', 'web-1', '198.51.100.11', { app: 'web' }));
  const a = await appliedAfter(r, n);
  t.is(a.result.kind, 'delta', a.result.reason);
  t.true(a.result.added >= 1 && a.result.removed >= 1);
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.11', 9100), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.10', 9100), 'deny'), 'deny');
});

test('the API going away leaves enforcement untouched; a restart with the API down enforces from the cache', async (t) => {
  const r = await rig(t, 'k8sdown');
  await r.start({ stateDir: r.dir });
  await appliedAfter(r, 0);
  await waitFor('cache written', () => existsSync(cachePath(r.dir)));
  // The table without its packet counters.
  const ruleset = async () => (await r.lab.nft(['list', 'table', 'inet', table])).stdout.replace(/counter packets \d+ bytes \d+/g, 'counter');
  const before = await ruleset();
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');

  await r.server.close();
  await waitFor('disconnected', () => !r.source.status().connected && r.source.status().lastError !== undefined);
  await new Promise((res) => setTimeout(res, 1000));
  t.is(r.enforcer.applied.length, 1, 'nothing applied while the API is away');
  t.is(await ruleset(), before);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 23), 'deny'), 'deny');

  // "Reboot": agent gone, kernel ruleset gone, API still down.
  await r.source.stop();
  await r.lab.nft(['delete', 'table', 'inet', table]);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 23), 'allow'), 'allow');
  await r.start({ stateDir: r.dir });
  const fromCache = await appliedAfter(r, 0);
  t.is(fromCache.origin, 'cache');
  t.true(r.source.status().stale);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 23), 'deny'), 'deny');

  // The API comes back: live state again.
  await r.server.listen();
  await waitFor('live', () => r.enforcer.applied.some((a) => a.origin === 'api'));
  t.false(r.source.status().stale);
});
