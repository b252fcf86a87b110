// Kubernetes source at cluster scale (issue 5): initial list of 5k nodes / 100k
// pods / 1k policies from the fake API server (in a child process) through the
// real client library, then the first model; RSS of this process (the agent
// side); and the latency from one pod IP change in the API to the rebuilt model.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/inventory/config.js';
import { KubernetesSource, type KubernetesSnapshot } from '../src/inventory/sources/kubernetes.js';
import { applyModel } from '../src/nft/apply.js';
import type { PreviousState } from '../src/nft/set-delta.js';
import { buildState } from '../src/pipeline.js';
import { ApiServerChild, createNetns, median, writeKubeconfig } from './k8s-harness.js';
import type { SyntheticSize } from './synthetic.js';

function defaultSize(): SyntheticSize {
  const scale = Number(process.env['NODEWALL_BENCH_SCALE'] ?? '1');
  return { policies: Math.round(1000 * scale), nodes: Math.round(5000 * scale), pods: Math.round(100000 * scale) };
}

/**
 * `kernel: true` (default when running as root) also loads the rulesets with nft into a
 * private network namespace: first apply, then one element delta per pod change.
 */
export async function runK8sBench(size: SyntheticSize = defaultSize(), opts: { kernel?: boolean } = {}): Promise<Record<string, number>> {
  const kernel = opts.kernel ?? process.getuid?.() === 0;
  const ns = kernel ? await createNetns('nwt-k8s-bench') : undefined;
  const netns = ns?.name ?? '';
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-bench-'));
  let child: ApiServerChild | undefined;
  let source: KubernetesSource | undefined;
  try {
    const tSeed0 = performance.now();
    const seeded = await ApiServerChild.seed(size);
    child = seeded.child;
    const ready = seeded.server;
    const tSeed = performance.now();
    const kubeconfig = await writeKubeconfig(dir, ready);
    const config = parseConfig('mode: enforce\nclusterPodCIDRs: [100.65.0.0/16, "2001:db8:1::/48"]\n', 'bench.yaml');
    const nodeName = ready.nodeName;
    const rss0 = process.memoryUsage().rss;

    let snap: KubernetesSnapshot | undefined;
    let notify: (() => void) | undefined;
    const nextSnapshot = async (): Promise<KubernetesSnapshot> => {
      snap = undefined;
      while (snap === undefined) await new Promise<void>((r) => (notify = r));
      return snap;
    };
    const src = new KubernetesSource({ kubeconfig, stateDir: dir });
    source = src;
    const t0 = performance.now();
    const first = nextSnapshot();
    await src.start((s) => {
      snap = s;
      notify?.();
    });
    const s1 = await first;
    const tList = performance.now();
    const rssListed = process.memoryUsage().rss;
    const state = buildState({ config, load: { objects: s1.objects, policies: s1.policies, problems: s1.problems }, nodeName });
    const tModel = performance.now();
    const rssModel = process.memoryUsage().rss;
    let previous: PreviousState | undefined;
    let firstApplyMs = NaN;
    let firstApplyElements = NaN;
    if (kernel) {
      const r = await applyModel(state.model, { nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce', netns });
      previous = r.state;
      firstApplyMs = r.durationsMs.total;
      firstApplyElements = r.elements;
    }
    const tApply = performance.now();

    // One pod IP change, API write to rebuilt model; the source's coalescing (an isolated change goes out at once) is included.
    const latencies: number[] = [];
    const snapshotLatencies: number[] = [];
    const rebuilds: number[] = [];
    const kernelLatencies: number[] = [];
    const deltaApplies: number[] = [];
    let deltas = 0;
    let fulls = 0;
    let noops = 0;
    for (let i = 0; i < 5; i++) {
      const pending = nextSnapshot();
      const a = performance.now();
      // pod-12 (namespace monitoring, app db, shard s12) is a peer of policy host-12, which
      // selects every node (bench/synthetic.ts), so its address is a set element here.
      await child.request({ cmd: 'pod-ip', name: 'pod-12', namespace: 'monitoring', ip: `100.66.250.${i + 1}` }); // an address no synthetic pod has
      const s = await pending;
      const b = performance.now();
      const st = buildState({ config, load: { objects: s.objects, policies: s.policies, problems: s.problems }, nodeName });
      const c = performance.now();
      if (kernel) {
        const r = await applyModel(st.model, { nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce', netns, ...(previous === undefined ? {} : { previous }) });
        previous = r.state;
        if (r.kind === 'delta') deltas++;
        else if (r.kind === 'full') fulls++;
        else noops++;
        if (r.kind !== 'delta' && process.env['NODEWALL_BENCH_VERBOSE'] !== undefined) process.stderr.write(`k8s bench: pod change applied as ${r.kind}: ${r.reason}\n`);
        deltaApplies.push(r.durationsMs.total);
        kernelLatencies.push(performance.now() - a);
      }
      snapshotLatencies.push(b - a);
      rebuilds.push(c - b);
      latencies.push(c - a);
    }
    return {
      nodes: size.nodes,
      pods: ready.pods,
      policies: ready.policies,
      fakeServerSeedMs: tSeed - tSeed0,
      initialListToSnapshotMs: tList - t0,
      firstModelMs: tModel - tList,
      listPlusFirstModelMs: tModel - t0,
      rssBeforeMB: rss0 / 1e6,
      rssAfterListMB: rssListed / 1e6,
      rssAfterModelMB: rssModel / 1e6,
      heapUsedMB: process.memoryUsage().heapUsed / 1e6,
      selectedPolicies: state.model.selectedPolicies.length,
      podEventToSnapshotMedianMs: median(snapshotLatencies),
      podModelRebuildMedianMs: median(rebuilds),
      podEventToModelMedianMs: median(latencies),
      coalesceWindowMs: 200,
      firstApplyMs,
      listPlusFirstApplyMs: kernel ? tApply - t0 : NaN,
      firstApplyElements,
      podDeltaApplyMedianMs: median(deltaApplies),
      podEventToKernelMedianMs: median(kernelLatencies),
      podChangesAppliedAsDelta: kernel ? deltas : NaN,
      podChangesAppliedAsFull: kernel ? fulls : NaN,
      podChangesNoop: kernel ? noops : NaN,
    };
  } finally {
    await source?.stop();
    await child?.stop();
    await rm(dir, { recursive: true, force: true });
    await ns?.remove();
  }
}

// `node dist-x/bench/k8s-bench.js` runs it alone.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const r = await runK8sBench();
  process.stdout.write(`${JSON.stringify({ bench: 'k8s', ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v * 100) / 100])) })}\n`);
}
