// `evaluate` throughput (trace / dry-run / audit in process) at cluster scale (issue 9): the model of
// the synthetic cluster, the bench flows (model-bench.ts) evaluated in rounds. Reported: the first
// round (it pays the compilation: address ranges, entry indexes, the membership index once enough
// flows have been seen) and the best of the later rounds (steady state), in flows per second of CPU
// time, which a loaded machine disturbs less than wall time.
import { performance } from 'node:perf_hooks';
import type { HostModel } from '../src/policy/model.js';
import { evaluate } from '../src/verdict/evaluate.js';
import type { Flow } from '../src/verdict/types.js';
import { benchFlows } from './model-bench.js';
import { loadSynthetic, type SyntheticSize } from './synthetic.js';

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Flows per CPU second and per wall second of one pass over `flows`. */
function round(model: HostModel, flows: readonly Flow[]): { cpu: number; wall: number; allowed: number } {
  let allowed = 0;
  const c0 = cpuMs();
  const w0 = performance.now();
  for (const f of flows) if (evaluate(model, f).verdict === 'allow') allowed++;
  const cpu = cpuMs() - c0;
  const wall = performance.now() - w0;
  return { cpu: flows.length / (cpu / 1000), wall: flows.length / (wall / 1000), allowed };
}

export function evaluateThroughput(model: HostModel, flows: readonly Flow[], rounds = 5): Record<string, number> {
  const first = round(model, flows);
  let best = { cpu: 0, wall: 0, allowed: 0 };
  for (let i = 1; i < rounds; i++) {
    const r = round(model, flows);
    if (r.cpu > best.cpu) best = r;
  }
  return {
    evaluateFlows: flows.length,
    evaluateFirstRoundFlowsPerCpuSec: first.cpu,
    evaluateFlowsPerCpuSec: best.cpu,
    evaluateFlowsPerSec: best.wall,
    evaluateAllowedShare: best.allowed / flows.length,
  };
}

export function runEvaluateBench(size: SyntheticSize): Promise<Record<string, number>> {
  const { state } = loadSynthetic(size);
  const model = state.model;
  return Promise.resolve({
    identitySets: Object.keys(model.sets).length,
    setElements: Object.values(model.sets).reduce((n, s) => n + s.v4.length + s.v6.length, 0),
    entries: model.ingress.entries.length + model.egress.entries.length,
    ...evaluateThroughput(model, benchFlows(size)),
  });
}
