// Model build and trace throughput at cluster scale (issue 2).
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadManifestText } from '../src/api/load-manifests.js';
import { parseConfig } from '../src/inventory/config.js';
import { buildState, StateBuilder } from '../src/pipeline.js';
import { evaluate } from '../src/verdict/evaluate.js';
import type { Flow } from '../src/verdict/types.js';
import { generateCluster, type SyntheticSize } from './synthetic.js';

/** A full GC (node --expose-gc, or the flag set at run time), so heapUsed counts live objects only. */
function collectGarbage(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

function memoryMB(): { heap: number; rss: number } {
  collectGarbage();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 1e6, rss: m.rss / 1e6 };
}

/** 20k flows for trace throughput: half of them to ports that world-ingress policies allow (also used by the scale bench). */
export function benchFlows(size: SyntheticSize): Flow[] {
  const flows: Flow[] = [];
  for (let i = 0; i < 20000; i++) {
    if (i % 2 === 0) {
      // Policies host-K with K % 20 == 0 select every node and allow world ingress to port 1000 + K % 5000.
      const k = (i * 10) % size.policies - (((i * 10) % size.policies) % 20);
      flows.push({ direction: 'ingress', peer: `203.0.113.${i & 255}`, proto: 'tcp', port: 1000 + (k % 5000) });
      continue;
    }
    const peer = i % 3 === 0 ? `100.65.${(i >> 8) & 255}.${i & 255}` : i % 3 === 1 ? `198.18.${i & 255}.${(i * 7) & 255}` : `203.0.113.${i & 255}`;
    flows.push({ direction: i % 2 === 0 ? 'ingress' : 'egress', peer, proto: i % 4 === 0 ? 'udp' : 'tcp', port: 1000 + (i % 5000) });
  }
  return flows;
}

/** CPU milliseconds (user + system) of this process since `since`. */
function cpuMs(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
}

export async function runModelBench(size: SyntheticSize): Promise<Record<string, number>> {
  const t0 = performance.now();
  const cluster = generateCluster(size);
  const tGen = performance.now();
  const memBefore = memoryMB();
  const tParse0 = performance.now();
  const cParse0 = process.cpuUsage();
  const objects = loadManifestText(cluster.clusterYaml, 'cluster.yaml');
  const policies = loadManifestText(cluster.policiesYaml, 'policies.yaml');
  const parseCpuMs = cpuMs(cParse0);
  const tParse = performance.now();
  const memParsed = memoryMB();
  const maxRssParse = process.resourceUsage().maxRSS / 1e3;
  const tModel0 = performance.now();
  const cModel0 = process.cpuUsage();
  const config = parseConfig('mode: enforce\nclusterPodCIDRs: [100.65.0.0/16, "2001:db8:1::/48"]\n', 'bench.yaml');
  const load = {
    policies: policies.policies,
    objects: objects.objects,
    problems: [...objects.problems, ...policies.problems],
  };
  const state = buildState({ config, load, nodeName: cluster.nodeName });
  const firstModelCpuMs = cpuMs(cModel0);
  const tModel = performance.now();
  const memModel = memoryMB();
  // What the agent runs for its first model (src/pipeline.ts StateBuilder: inventory with its object
  // index, the incremental model, lint), and the heap it keeps: measured with the reference model above
  // already collected, so the heap difference is the agent's inventory + model.
  const agentMem0 = memoryMB();
  const cAgent0 = process.cpuUsage();
  const agentBuilder = new StateBuilder();
  const agentState = agentBuilder.build({ config, load, nodeName: cluster.nodeName });
  const agentFirstBuildCpuMs = cpuMs(cAgent0);
  const agentMem = memoryMB();
  if (agentState.model.ingress.entries.length !== state.model.ingress.entries.length) throw new Error('model bench: the agent build and the reference differ');
  // Warm-up model rebuild: the second build is what the agent pays on each change.
  buildState({ config, load, nodeName: cluster.nodeName });
  const tModel2 = performance.now();

  const flows = benchFlows(size);
  const tTrace0 = performance.now();
  let allowed = 0;
  for (const f of flows) if (evaluate(state.model, f).verdict === 'allow') allowed++;
  const tTrace = performance.now();
  const setElements = Object.values(state.model.sets).reduce((n, s) => n + s.v4.length + s.v6.length, 0);
  return {
    generateMs: tGen - t0,
    manifestMB: (cluster.clusterYaml.length + cluster.policiesYaml.length) / 1e6,
    parseMs: tParse - tParse0,
    firstModelMs: tModel - tModel0,
    parseAndFirstModelMs: tParse - tParse0 + (tModel - tModel0),
    // CPU time (the machine may be busy with other work; wall figures above then overstate).
    parseCpuMs,
    firstModelCpuMs,
    parseAndFirstModelCpuMs: parseCpuMs + firstModelCpuMs,
    agentFirstBuildCpuMs,
    agentInventoryAndModelHeapMB: agentMem.heap - agentMem0.heap,
    // Live heap (after a full GC) and RSS: before parsing (generated text only), after parsing, after the first model.
    heapBeforeMB: memBefore.heap,
    heapAfterParseMB: memParsed.heap,
    heapAfterModelMB: memModel.heap,
    rssBeforeMB: memBefore.rss,
    rssAfterParseMB: memParsed.rss,
    rssAfterModelMB: memModel.rss,
    maxRssParseMB: maxRssParse,
    rebuildModelMs: tModel2 - tModel,
    selectedPolicies: state.model.selectedPolicies.length,
    ingressEntries: state.model.ingress.entries.length,
    egressEntries: state.model.egress.entries.length,
    identitySets: Object.keys(state.model.sets).length,
    setElements,
    traceFlowsPerSec: Math.round(flows.length / ((tTrace - tTrace0) / 1000)),
    traceAllowedShare: allowed / flows.length,
    rssMB: process.memoryUsage().rss / 1e6,
    maxRssMB: process.resourceUsage().maxRSS / 1e3,
  };
}
