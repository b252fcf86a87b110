// `npm run bench`: every benchmark of the project, printed as one JSON
// object per section. Sizes default to the issues' targets; NODEWALL_BENCH_SCALE
// (e.g. 0.1) shrinks them for a quick look.
import { runAgentBench } from './agent-bench.js';
import { runEvaluateBench } from './evaluate-bench.js';
import { runFileSourceBench } from './file-source-bench.js';
import { runIncrementalBench } from './incremental-bench.js';
import { runK8sBench } from './k8s-bench.js';
import { runModelBench } from './model-bench.js';
import { runMonitorBench } from './monitor-bench.js';
import { runColdStartBench, runNftBench } from './nft-bench.js';
import { runScaleBench } from './scale-bench.js';
import { runNftLauncherBench } from './nft-launcher-bench.js';

const scale = Number(process.env['NODEWALL_BENCH_SCALE'] ?? '1');
const size = {
  policies: Math.round(1000 * scale),
  nodes: Math.round(5000 * scale),
  pods: Math.round(100000 * scale),
};

async function section(name: string, run: () => Promise<Record<string, number>>): Promise<void> {
  try {
    const result = await run();
    const rounded = Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Math.round(v * 100) / 100]));
    process.stdout.write(`${JSON.stringify({ bench: name, ...rounded })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ bench: name, error: err instanceof Error ? err.message : String(err) })}\n`);
    process.exitCode = 1;
  }
}

process.stdout.write(`${JSON.stringify({ bench: 'size', ...size })}\n`);
const only = process.argv[2];
const sections: Record<string, () => Promise<Record<string, number>>> = {
  model: () => runModelBench(size),
  // Issue 9: the file source read + parsed from files and the first model, in a fresh process (peak RSS).
  fileparse: () => runFileSourceBench(size),
  // `evaluate` throughput alone (also a row of `scale`).
  evaluate: () => runEvaluateBench(size),
  nft: () => runNftBench(size),
  // Only with `npm run bench nftcold` (part of `nft` too).
  ...(only === 'nftcold' ? { nftcold: () => runColdStartBench() } : {}),
  // Only with `npm run bench nftlaunch`: agent CPU per nft run, direct spawn vs the launcher, small and 400 MB heap.
  ...(only === 'nftlaunch' ? { nftlaunch: () => runNftLauncherBench() } : {}),
  agent: () => runAgentBench(),
  k8s: () => runK8sBench(size),
  incremental: () => runIncrementalBench(size),
  // Issue 11: nft flush ruleset -> table restored by the nft monitor.
  monitor: () => runMonitorBench(),
  // Issue 9: one table at 10k and 100k pods (printed before its JSON line); takes minutes.
  scale: () => runScaleBench(),
};
for (const [name, run] of Object.entries(sections)) {
  if (only === undefined || only === name) await section(name, run);
}
