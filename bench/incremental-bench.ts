// Incremental model (issue 9): CPU per event applied to IncrementalModel against a full
// rebuild (buildHostModel), at a tenth of the pods and at all of them (10k and 100k at the
// issue's size) with the same policies and nodes, plus
// the heap after the first model. Rows: pod add / IP change / label change / delete, node
// label change, CCNP change, and the snapshot path (inventoryEvents over two inventories).
// Run with --expose-gc for exact heap figures (npm run bench does not; see the README).

import { performance } from 'node:perf_hooks';
import type { KubeObject, PolicyDocument } from '../src/api/types.js';
import type { Inventory, PodInfo } from '../src/inventory/types.js';
import { buildHostModel } from '../src/policy/build-model.js';
import { IncrementalModel, type ModelEvent } from '../src/policy/incremental-model.js';
import { inventoryEvents } from '../src/policy/inventory-events.js';
import { buildState, StateBuilder, type StateInput } from '../src/pipeline.js';
import { loadSynthetic, type SyntheticSize } from './synthetic.js';

const gc = (globalThis as { gc?: () => void }).gc;

function heapMB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

/** Wall time per call (p50/p99) and CPU per call (user+system), in ms. */
function measure(count: number, one: (i: number) => void): { p50: number; p99: number; cpu: number } {
  const times: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    one(i);
    times.push(performance.now() - t0);
  }
  const c = process.cpuUsage(c0);
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), cpu: (c.user + c.system) / 1000 / count };
}

// Synthetic pods hold 100.65.x.y for x.y < pods; these are free at every size.
const freeV4 = (i: number): string => `100.66.${(i >> 8) & 255}.${i & 255}`;

async function oneSize(size: SyntheticSize, out: Record<string, number>): Promise<void> {
  const tag = `pods${size.pods}_`;
  const { cluster, objects, policies, config, state } = loadSynthetic(size);
  const inv = state.inventory;
  const valid = [...state.valid];

  const heap0 = heapMB();
  const t0 = performance.now();
  const inc = new IncrementalModel(valid, inv, config, config.mode);
  out[`${tag}FirstIncrementalModelMs`] = performance.now() - t0;
  const heap1 = heapMB();
  out[`${tag}HeapAfterFirstModelMB`] = heap1;
  out[`${tag}HeapOfIncrementalModelMB`] = heap1 - heap0;

  // A fresh inventory object each time: the pools and pod identities are cached per inventory object.
  const full = measure(3, () => buildHostModel(valid, { ...inv }, config, config.mode));
  out[`${tag}FullRebuildMs`] = full.p50;

  const pods = inv.pods;
  const n = 200;
  const added: PodInfo[] = [];
  const podAdd = measure(n, (i) => {
    const base = pods[(i * 7919) % pods.length] as PodInfo;
    const pod: PodInfo = { ...base, name: `bench-${i}`, addresses: [freeV4(i)] };
    added.push(pod);
    inc.applyEvent({ kind: 'pod', pod });
  });
  const ipChange = measure(n, (i) => {
    const pod = added[i] as PodInfo;
    inc.applyEvent({ kind: 'pod', pod: { ...pod, addresses: [freeV4(i + 1000)] } });
  });
  const labelChange = measure(n, (i) => {
    const pod = added[i] as PodInfo;
    inc.applyEvent({ kind: 'pod', pod: { ...pod, addresses: [freeV4(i + 1000)], labels: { ...pod.labels, app: i % 2 === 0 ? 'web' : 'db', shard: `s${i % 50}` } } });
  });
  const podDelete = measure(n, (i) => {
    const pod = added[i] as PodInfo;
    inc.applyEvent({ kind: 'pod-deleted', namespace: pod.namespace, name: pod.name });
  });
  const nodes = inv.remoteNodes;
  const nodeLabel = measure(n, (i) => {
    const node = nodes[i % nodes.length];
    if (node === undefined) return;
    inc.applyEvent({ kind: 'node', node: { ...node, labels: { ...node.labels, pool: `p${(i + 3) % 10}` } } });
  });
  const selected = valid.filter((p) => inc.model.selectedPolicies.includes(p.name));
  const policyChange = measure(Math.min(50, selected.length), (i) => {
    const p = selected[i] as PolicyDocument;
    // The same rules under a new hash: the policy is resolved again and its sets re-registered.
    const ev: ModelEvent = { kind: 'policy', policy: { ...p, hash: `${p.hash}-bench-${i}` } };
    inc.applyEvent(ev);
  });
  // The agent's path (reconcile.ts): a whole state from the snapshot's objects, one pod's address changed.
  const podIndex = objects.objects.findIndex((o) => o.kind === 'Pod');
  const stateInput = (i: number): StateInput => {
    const changed = [...objects.objects];
    const o = changed[podIndex] as KubeObject;
    changed[podIndex] = { ...o, status: { phase: 'Running', podIPs: [{ ip: freeV4(3000 + i) }] } };
    return { config, load: { policies: policies.policies, objects: changed, problems: [] }, nodeName: cluster.nodeName };
  };
  const builder = new StateBuilder();
  builder.build(stateInput(0));
  const viaBuilder = measure(3, (i) => builder.build(stateInput(i + 1)));
  const viaBuildState = measure(3, (i) => buildState(stateInput(i + 10)));
  out[`${tag}StateBuilderPodChangeMs`] = viaBuilder.p50;
  out[`${tag}BuildStatePodChangeMs`] = viaBuildState.p50;
  // A remote node relabelled, and one CCNP changed, through the same builder.
  const nodeIndex = objects.objects.findIndex((o) => o.kind === 'Node' && o.metadata.name !== cluster.nodeName);
  const settled = stateInput(99);
  const nodeInput = (i: number): StateInput => {
    const changed = [...settled.load.objects];
    const o = changed[nodeIndex] as KubeObject;
    changed[nodeIndex] = { ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, bench: `b${i}` } } };
    return { ...settled, load: { policies: policies.policies, objects: changed, problems: [] } };
  };
  builder.build(settled);
  out[`${tag}StateBuilderNodeLabelMs`] = measure(3, (i) => builder.build(nodeInput(i))).p50;
  const lastNode = nodeInput(2);
  const policyInput = (i: number): StateInput => {
    const base = lastNode;
    const docs = [...policies.policies];
    const d = docs[0] as PolicyDocument;
    docs[0] = { ...d, hash: `${d.hash}-b${i}` };
    return { ...base, load: { ...base.load, policies: docs } };
  };
  out[`${tag}StateBuilderPolicyChangeMs`] = measure(3, (i) => builder.build(policyInput(i))).p50;

  const next: Inventory = { ...inv, pods: [...inv.pods.slice(1), { ...(inv.pods[0] as PodInfo), addresses: [freeV4(5000)] }] };
  const diff = measure(5, () => inventoryEvents(inv, next));

  for (const [name, m] of Object.entries({ podAdd, ipChange, labelChange, podDelete, nodeLabel, policyChange, snapshotDiff: diff })) {
    out[`${tag}${name[0]?.toUpperCase()}${name.slice(1)}CpuMs`] = m.cpu;
    out[`${tag}${name[0]?.toUpperCase()}${name.slice(1)}P99Ms`] = m.p99;
  }
}

export async function runIncrementalBench(size: SyntheticSize): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const small = { ...size, pods: Math.round(size.pods / 10) };
  await oneSize(small, out);
  await oneSize(size, out);
  // CPU of the four pod events at the large size over the same at the small one (target <= 1.5).
  const podCpu = (n: number): number =>
    ['PodAdd', 'IpChange', 'LabelChange', 'PodDelete'].reduce((sum, k) => sum + (out[`pods${n}_${k}CpuMs`] ?? 0), 0);
  out['podEventCpuRatio'] = podCpu(size.pods) / podCpu(small.pods);
  out['rssMB'] = process.memoryUsage().rss / 1e6;
  return out;
}
