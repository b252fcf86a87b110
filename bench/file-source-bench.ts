// File source at cluster scale (issue 9): the synthetic cluster written to
// files, then read + parsed the way the CLI and the agent read them
// (loadManifestPaths) and the first model built, in a fresh child process so
// its peak RSS is that of parse + first model alone (not of the generator).
// `npm run bench fileparse`; `node dist/bench/file-source-bench.js DIR` runs
// the measuring side alone. NODEWALL_BENCH_CPUPROF=DIR writes V8 CPU profiles of
// it, NODEWALL_BENCH_HEAPPROF=DIR sampling heap profiles (garbage included; with
// NODEWALL_BENCH_HEAPPROF_SURVIVORS=1 only what minor GCs did not collect):
// DIR/fileparse-parse.* and DIR/fileparse-model.*; the figures are then not comparable.
import { fork } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/inventory/config.js';
import { loadManifestPaths } from '../src/inventory/load-manifest-files.js';
import { buildState } from '../src/pipeline.js';
import { generateCluster, type SyntheticSize } from './synthetic.js';

interface Measured { [k: string]: number }

function cpuMs(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

interface Profile { stop(name: string): Promise<void> }

/** A CPU or sampling heap profile of one phase when NODEWALL_BENCH_CPUPROF / NODEWALL_BENCH_HEAPPROF names a directory. */
async function startProfile(): Promise<Profile | undefined> {
  const heapDir = process.env['NODEWALL_BENCH_HEAPPROF'];
  const cpuDir = process.env['NODEWALL_BENCH_CPUPROF'];
  const dir = heapDir !== undefined && heapDir !== '' ? heapDir : cpuDir;
  if (dir === undefined || dir === '') return undefined;
  const heap = dir === heapDir;
  const session = new Session();
  session.connect();
  if (heap) {
    await session.post('HeapProfiler.enable');
    // NODEWALL_BENCH_HEAPPROF_SURVIVORS=1: leave out what minor GCs collected, i.e. count only what was
    // promoted or is still live: what makes up the old generation (and the peak) when no major GC runs.
    const minor = process.env['NODEWALL_BENCH_HEAPPROF_SURVIVORS'] !== '1';
    await session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: minor } as object);
  } else {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  return {
    async stop(name: string): Promise<void> {
      const { profile } = heap ? await session.post('HeapProfiler.stopSampling') : await session.post('Profiler.stop');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `fileparse-${name}.${heap ? 'heapprofile' : 'cpuprofile'}`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

async function measure(dir: string, nodeName: string): Promise<Measured> {
  const rss0 = process.memoryUsage().rss / 1e6;
  let profile = await startProfile();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const load = await loadManifestPaths([dir], { maxFileBytes: 1 << 30, settleMs: 0, settleWaitMs: 1000 });
  const parseWall = performance.now() - t0;
  const parseCpu = cpuMs(c0);
  const heapParsed = process.memoryUsage().heapUsed / 1e6;
  const maxRssParse = process.resourceUsage().maxRSS / 1e3;
  await profile?.stop('parse');
  profile = await startProfile();
  const c1 = process.cpuUsage();
  const t1 = performance.now();
  const config = parseConfig('mode: enforce\nclusterPodCIDRs: [100.65.0.0/16, "2001:db8:1::/48"]\n', 'bench.yaml');
  const state = buildState({ config, load, nodeName });
  const modelWall = performance.now() - t1;
  const modelCpu = cpuMs(c1);
  const heapModel = process.memoryUsage().heapUsed / 1e6;
  await profile?.stop('model');
  return {
    objects: load.objects.length,
    policies: load.policies.length,
    problems: load.problems.length,
    selectedPolicies: state.model.selectedPolicies.length,
    parseMs: parseWall,
    parseCpuMs: parseCpu,
    firstModelMs: modelWall,
    firstModelCpuMs: modelCpu,
    parseAndFirstModelCpuMs: parseCpu + modelCpu,
    rssStartMB: rss0,
    heapAfterParseMB: heapParsed,
    heapAfterModelMB: heapModel,
    maxRssParseMB: maxRssParse,
    maxRssParseAndModelMB: process.resourceUsage().maxRSS / 1e3,
  };
}

export async function runFileSourceBench(size: SyntheticSize): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'nodewall-fileparse-'));
  try {
    const cluster = generateCluster(size);
    await writeFile(join(dir, 'cluster.yaml'), cluster.clusterYaml);
    await writeFile(join(dir, 'policies.yaml'), cluster.policiesYaml);
    const manifestMB = (cluster.clusterYaml.length + cluster.policiesYaml.length) / 1e6;
    const child = fork(fileURLToPath(import.meta.url), [dir, cluster.nodeName], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const result = await new Promise<Measured>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Measured));
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`file source bench child exited with ${code}`)));
    });
    return { manifestMB, ...result };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== undefined) {
  const r = await measure(process.argv[2], process.argv[3] ?? 'node-5');
  if (process.send !== undefined) process.send(r);
  else process.stdout.write(`${JSON.stringify(r)}\n`);
  process.disconnect?.();
}
