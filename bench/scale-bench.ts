// `npm run bench scale` (issue 9): what one event costs at 10k and at 100k pods
// (1k policies, 5k nodes; NODEWALL_BENCH_SCALE shrinks all three), printed as
// one aligned table plus the usual JSON line.
//
// Each size is measured in a fresh child process (so heap and RSS are that
// size's alone) running the real agent (src/agent/agent.ts, Kubernetes source)
// against the fake API server (another child, bench/k8s-apiserver-child.ts),
// with nft in a private network namespace: the measuring child runs inside it
// (and with it the fake API server on its loopback), so the agent's nft.path is
// the nft binary itself, as on a node (a wrapper would turn off the predicted
// drift hash, src/agent/predicted-table-hash.ts).
//
// Measures, with p50/p99 over NODEWALL_BENCH_EVENTS events per kind (default 20
// up to 20k pods, 10 above; nearest rank, so p99 of 10-20 samples is the max):
// - event -> kernel (nft monitor): from just before the API write to when the
//   change is seen in the kernel by `nft monitor`, run in the namespace by a
//   child process of its own (bench/nft-monitor-child.ts, which stamps each line
//   with CLOCK_MONOTONIC as it reads it; the measuring process's event loop runs
//   the agent and would stamp late). The figure is the stamp of the first line of
//   the transaction that carries the event's marker (the kernel switches to the
//   new generation before it sends a transaction's notifications, so that line is
//   the earliest sign the ruleset is in force; the marker line's own stamp is in
//   the JSON as ...KernelLine...). Markers (bench/nft-monitor-marks.ts): pod add
//   and IP change, `add element` with the new address; pod delete, `delete
//   element` with it; CCNP, `add rule` with the new port; this node's label, `add
//   chain` of the incoming pool's first policy (host-6 / host-5). An upper bound
//   by the monitor's wake-up and read (a few ms on an idle machine, more when nft
//   monitor has many lines to print: structural applies);
// - event -> agent's "ruleset applied" log line: from the same moment to the line
//   (logged after `nft -f` returned and, for structural changes only, after the
//   table was read back for the drift check, ~90 ms at 10k pods, ~190 ms at 100k:
//   the difference to the kernel figure is mostly that read-back);
//   a label change on another node changes no rule, so it is write -> "ruleset
//   unchanged" (what the pass costs when nothing is to be done; no kernel figure);
// - agent CPU per event: process.cpuUsage() of the agent's process from the API
//   write until that pass has written its status file (the whole pass; the
//   observer's lines are filtered in its child, so only the few lines about the
//   bench's own addresses and the rules of a structural apply reach this process);
// - a burst: 20 pod IP changes 10 ms apart: from just before the last write to
//   the last address seen in the kernel (nft monitor), and from the last write's
//   reply to the last "ruleset applied";
//   (the observer runs from after the start and memory figures to the burst's end);
// - start -> enforced (empty kernel, no cache); heap used (after a GC) and RSS
//   after the first model is enforced;
// - full apply and a one-element delta against a bare `nft -f` of the same
//   script / delta, and the `nft -c` step (bench/nft-bench.ts controlPlane);
// - the table read-back the agent does after every apply (drift check hash);
// - `evaluate` throughput (bench/model-bench.ts flows).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { Session } from 'node:inspector/promises';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import pino from 'pino';
import { loadManifestText } from '../src/api/load-manifests.js';
import { Agent } from '../src/agent/agent.js';
import { tableState } from '../src/agent/drift.js';
import { statusPath } from '../src/agent/status-file.js';
import { parseConfig } from '../src/inventory/config.js';
import { loadScript, runNft } from '../src/nft/nft-exec.js';
import { renderPlan } from '../src/nft/render.js';
import { buildState } from '../src/pipeline.js';
import type { HostModel } from '../src/policy/model.js';
import { ApiServerChild, createNetns, percentile, writeKubeconfig, type ApiObject } from './k8s-harness.js';
import { benchFlows } from './model-bench.js';
import { evaluateThroughput } from './evaluate-bench.js';
import { controlPlane } from './nft-bench.js';
import { generateCluster, type SyntheticSize } from './synthetic.js';
import { rssSplitLine } from './rss-split.js';
import { agentEnv, agentNodeFlags } from '../src/bin/runtime-settings.js';
import { hasSysAdmin } from '../src/agent/predicted-table-hash.js';
import { LineSplitter } from '../src/agent/line-splitter.js';
import { benchKeepPattern, chainMarker, elementMarker, MonitorLog, nanosToMs, ruleWithPortMarker, type ObservedLine } from './nft-monitor-marks.js';

type Line = Record<string, unknown> & { msg: string; time: number };
interface Seen {
  readonly at: number;
  readonly line: Line;
}

/** One size's results, flat (the JSON line uses them as they are). */
export type SizeResult = Record<string, number>;

const kinds = ['podAdd', 'podDelete', 'podIp', 'nodeLabelThis', 'nodeLabelOther', 'ccnp'] as const;
type Kind = (typeof kinds)[number];

const kindLabels: Record<Kind, string> = {
  podAdd: 'pod add',
  podDelete: 'pod delete',
  podIp: 'pod IP change',
  nodeLabelThis: "this node's label (pool)",
  nodeLabelOther: 'other node label',
  ccnp: 'CCNP port change',
};
/** Kinds whose "ruleset applied" comes after the table was read back for the drift check (chain deltas). */
const readBackKinds: ReadonlySet<Kind> = new Set(['nodeLabelThis', 'ccnp']);
/** The table's latency rows of one kind: kernel-observed (if measured), then the log line. */
function latencyRows(k: Kind): [string, (r: SizeResult) => string][] {
  if (k === 'nodeLabelOther') return [[`${kindLabels[k]} -> agent's 'ruleset unchanged' (no change)  p50 / p99`, (r) => pair(r, k, 'ms')]];
  return [
    [`${kindLabels[k]} -> kernel (nft monitor)  p50 / p99`, (r) => pair(r, `${k}Kernel`, 'ms')],
    [`${kindLabels[k]} -> agent's 'ruleset applied'${readBackKinds.has(k) ? ' (after drift read-back)' : ''}  p50 / p99`, (r) => pair(r, k, 'ms')],
  ];
}

/** Collects the agent's JSON log lines with the time each was written. */
class LogTap {
  readonly seen: Seen[] = [];
  #wake: (() => void) | undefined;
  readonly stream = {
    write: (s: string): void => {
      const at = performance.now();
      if (process.env['NODEWALL_BENCH_VERBOSE'] !== undefined && !s.includes('"level":40')) process.stderr.write(s);
      for (const text of s.split('\n')) {
        if (text === '') continue;
        try {
          this.seen.push({ at, line: JSON.parse(text) as Line });
        } catch {
          // not JSON
        }
      }
      this.#wake?.();
    },
  };

  async waitFor(pred: (l: Line) => boolean, from: number, timeoutMs: number): Promise<Seen> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.seen.length; i++) {
        const s = this.seen[i];
        if (s !== undefined && pred(s.line)) return s;
        if (s !== undefined && /apply failed|reconcile failed|no usable config/.test(s.line.msg)) throw new Error(`agent: ${JSON.stringify(s.line).slice(0, 1500)}`);
      }
      from = Math.max(from, this.seen.length);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timeout; last lines: ${JSON.stringify(this.seen.slice(-3).map((s) => s.line)).slice(0, 1500)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }
}

/** A monitor line that says an event's change is in the kernel, and what it is (for the timeout's message). */
interface KernelMarker {
  readonly match: (text: string) => boolean;
  readonly what: string;
}
const addElement = (address: string): KernelMarker => ({ match: elementMarker('add', address), what: `add element ${address}` });
const deleteElement = (address: string): KernelMarker => ({ match: elementMarker('delete', address), what: `delete element ${address}` });

const isApplyLine = (l: Line): boolean => l.msg === 'ruleset applied' || l.msg === 'ruleset unchanged';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The pass that logged `line` has ended: it writes its status file last, with lastApply.at taken
 * just after the line was logged (file mtimes are too coarse to compare with the line's time).
 */
async function passDone(stateDir: string, line: Line, timeoutMs = 300_000): Promise<void> {
  const file = statusPath(stateDir);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const text = await readFile(file, 'utf8').catch(() => '');
    let at = Number.NaN;
    try {
      at = Date.parse(String((JSON.parse(text) as { lastApply?: { at?: unknown } }).lastApply?.at));
    } catch {
      // being replaced
    }
    if (at >= line.time) return;
    await sleep(5);
  }
  throw new Error('timeout waiting for the status file after the pass');
}

/**
 * The kernel-side observer: bench/nft-monitor-child.js (`nft monitor` in this process's network
 * namespace, each line stamped with CLOCK_MONOTONIC when read) as a child process, its lines collected.
 * Element lines are passed on only for the bench's own addresses (100.67.0.0/16), and `delete rule` lines
 * not at all (but the first line of every transaction, whatever it is: the transaction's stamp), so that the
 * churn of structural applies costs this process (whose CPU is measured) little.
 * NODEWALL_BENCH_NFTMON_DUMP=FILE: every line passed on, none filtered, written to FILE at the end.
 */
class KernelObserver {
  readonly log = new MonitorLog();
  readonly #proc: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #dump: string | undefined;

  private constructor(nftPath: string) {
    this.#dump = process.env['NODEWALL_BENCH_NFTMON_DUMP'];
    const keep = this.#dump === undefined ? benchKeepPattern : '';
    const child = fileURLToPath(new URL('./nft-monitor-child.js', import.meta.url));
    this.#proc = spawn(process.execPath, [child, nftPath, keep], { stdio: ['pipe', 'pipe', 'inherit'] });
    const splitter = new LineSplitter(1 << 20, (l) => this.log.push(l));
    this.#proc.stdout?.on('data', (c: Buffer) => splitter.push(c));
    this.#exited = new Promise((r) => {
      this.#proc.on('exit', (code, signal) => {
        this.log.end(`exited (${signal ?? code})`);
        r();
      });
      this.#proc.on('error', (err) => {
        this.log.end(err.message);
        r();
      });
    });
  }

  /** Starts the observer and waits until it reports a probe table of its own (it prints nothing when ready). */
  static async start(nftPath: string): Promise<KernelObserver> {
    const o = new KernelObserver(nftPath);
    try {
      const nft = promisify(execFile);
      for (let attempt = 0; ; attempt++) {
        const from = o.log.lines.length;
        await nft(nftPath, ['add', 'table', 'inet', 'nwbench_probe']);
        await nft(nftPath, ['delete', 'table', 'inet', 'nwbench_probe']);
        try {
          await o.log.waitFor((t) => t === 'add table inet nwbench_probe', from, 1000, 'the probe table');
          return o;
        } catch (err) {
          if (attempt >= 20) throw err;
        }
      }
    } catch (err) {
      await o.stop();
      throw err;
    }
  }

  /** Stops the child (it stops nft when its stdin closes); SIGKILL after 5 s. */
  async stop(): Promise<void> {
    this.#proc.stdin?.end();
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
    if (this.#dump !== undefined) await writeFile(this.#dump, this.log.lines.map((l) => `${l.nanos}\t${l.txNanos}\t${l.text}\n`).join(''));
  }
}

/** Progress on stderr (the table and the JSON line go to stdout). */
const progress = (size: SyntheticSize, msg: string): void => void process.stderr.write(`scale bench, ${size.pods} pods: ${msg}\n`);

const cpuMs = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;
const verbose = process.env['NODEWALL_BENCH_VERBOSE'] !== undefined;
/** Bytes used in V8's old space and large-object space (NODEWALL_BENCH_VERBOSE, per event). */
function oldSpaces(): { old: number; lo: number } {
  let old = 0;
  let lo = 0;
  for (const x of getHeapSpaceStatistics()) {
    if (x.space_name === 'old_space') old = x.space_used_size;
    if (x.space_name === 'large_object_space') lo = x.space_used_size;
  }
  return { old, lo };
}

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
}

/**
 * NODEWALL_BENCH_CPUPROF=DIR: a V8 CPU profile of the agent's process per event kind
 * (DIR/PODS-KIND.cpuprofile), for finding what an event costs; the figures are then not comparable.
 */
async function startProfile(): Promise<{ stop(name: string): Promise<void> } | undefined> {
  const heapDir = process.env['NODEWALL_BENCH_HEAPPROF'];
  if (heapDir !== undefined && heapDir !== '') return startHeapProfile(heapDir);
  const dir = process.env['NODEWALL_BENCH_CPUPROF'];
  if (dir === undefined || dir === '') return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(name: string): Promise<void> {
      const { profile } = await session.post('Profiler.stop');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/**
 * NODEWALL_BENCH_HEAPPROF=DIR: V8's sampling heap profile per event kind (DIR/PODS-KIND.heapprofile),
 * counting objects already collected too: where an event allocates, garbage included.
 */
async function startHeapProfile(dir: string): Promise<{ stop(name: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as object);
  return {
    async stop(name: string): Promise<void> {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `${name}.heapprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** The process's peak RSS so far (VmHWM), in MB. */
async function vmHwmMB(): Promise<number> {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(await readFile('/proc/self/status', 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/** The largest RSS contributors by mapping (from /proc/self/smaps), for finding where memory is held. */
async function rssByMapping(): Promise<string> {
  const text = await readFile('/proc/self/smaps', 'utf8');
  const by = new Map<string, number>();
  let name = '';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      name = head[1] === '' ? '[anon]' : head[1]!;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null) by.set(name, (by.get(name) ?? 0) + Number(rss[1]));
  }
  return [...by].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([n, kb]) => `${n}=${Math.round(kb / 1024)}MB`).join(' ');
}

/** Runs in the measuring child: the agent for one size, then the apply and evaluate measures. */
async function measureSize(size: SyntheticSize, events: number, netns: string): Promise<SizeResult> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-scale-bench-'));
  let child: ApiServerChild | undefined;
  let agent: Agent | undefined;
  let kmon: KernelObserver | undefined;
  const out: SizeResult = { policies: size.policies, nodes: size.nodes, pods: size.pods, eventsPerKind: events };
  try {
    const seeded = await ApiServerChild.seed(size);
    child = seeded.child;
    const api = child;
    const kubeconfig = await writeKubeconfig(dir, seeded.server);
    const stateDir = join(dir, 'state');
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const configFile = join(dir, 'nodewall.yaml');
    await writeFile(configFile, [
      'mode: enforce',
      `nodeName: ${seeded.server.nodeName}`,
      'clusterPodCIDRs: [100.65.0.0/16, "2001:db8:1::/48"]',
      'sources:',
      `  - kubernetes: {kubeconfig: ${JSON.stringify(kubeconfig)}}`,
      `stateDir: ${JSON.stringify(stateDir)}`,
      'nft: {path: /usr/sbin/nft, table: nodewall}',
      // No session checks against the host's sockets, no periodic passes: only the events drive passes.
      'lockoutGuard: off',
      'driftCheckSeconds: 0',
      'resyncSeconds: 0',
      '',
    ].join('\n'));

    const tap = new LogTap();
    const log = pino({ level: 'info' }, tap.stream);
    gcNow();
    // NODEWALL_BENCH_CPUPROF: the start phase too (DIR/PODS-start.cpuprofile), up to the first pass done.
    const startProf = await startProfile();
    const cpuStart = process.cpuUsage();
    const t0 = performance.now();
    agent = new Agent({ configFile, overrides: {}, log });
    progress(size, 'agent starting');
    await agent.start();
    progress(size, `agent started; ${tap.seen.length} log lines`);
    const first = await tap.waitFor((l) => l.msg === 'ruleset applied', 0, 900_000);
    out['startToEnforcedMs'] = first.at - t0;
    progress(size, `enforced after ${Math.round(first.at - t0)} ms`);
    await passDone(stateDir, first.line);
    out['startCpuMs'] = cpuMs(process.cpuUsage(cpuStart));
    await startProf?.stop(`${size.pods}-start`);
    const ds = first.line['durationsMs'] as Record<string, number> | undefined;
    out['firstApplyMs'] = Number(first.line['durationMs']);
    out['firstApplyCheckMs'] = Number(ds?.['check'] ?? NaN);
    out['elements'] = Number(first.line['elements']);
    out['rules'] = Number(first.line['rules']);
    // Where the start time goes (from the agent's own log): when the pod list was asked for, when the first
    // apply began (its durationMs counts from there), nft's part of it, and what follows nft inside the apply
    // (the drift hash read back after a full replace, under the nft lock) before "ruleset applied".
    const podsAsked = tap.seen.find((l) => l.line.msg === 'kubernetes source: a policy needs pod addresses; watching pods');
    out['startPodsAskedMs'] = podsAsked === undefined ? NaN : podsAsked.at - t0;
    out['startApplyBeganMs'] = first.at - t0 - out['firstApplyMs'];
    out['startApplyModelMs'] = Number(ds?.['total'] ?? NaN);
    out['startAfterNftMs'] = out['firstApplyMs'] - out['startApplyModelMs'];
    // Whether the agent may predict the drift hash (CAP_SYS_ADMIN; NODEWALL_BENCH_CAPS=shipped drops it).
    out['agentHasSysAdmin'] = (await hasSysAdmin()) ? 1 : 0;
    // NODEWALL_BENCH_IDLE_S=N: first N seconds of idling with no forced GC (as a node runs: only V8's own
    // collections, its memory reducer included), RSS sampled every 5 s; the figures below come after that.
    const idleS = Number(process.env['NODEWALL_BENCH_IDLE_S'] ?? 0);
    if (idleS > 0) {
      const samples: number[] = [];
      for (let s = 1; s <= idleS; s++) {
        await sleep(1000);
        if (s % 5 === 0 || s === idleS) samples.push(Math.round(process.memoryUsage().rss / 1e6));
      }
      out['idleRssMB'] = process.memoryUsage().rss / 1e6;
      progress(size, `RSS while idle, no forced GC, every 5 s: ${samples.join(' ')} MB`);
    }
    await sleep(500);
    gcNow();
    const mem = process.memoryUsage();
    out['heapUsedMB'] = mem.heapUsed / 1e6;
    out['rssMB'] = mem.rss / 1e6;
    // Where the RSS is: V8's committed heap, memory outside it (buffers, malloc), and the biggest mappings.
    out['heapTotalMB'] = mem.heapTotal / 1e6;
    out['externalMB'] = mem.external / 1e6;
    if (process.env['NODEWALL_BENCH_VERBOSE'] !== undefined) progress(size, `memory: ${JSON.stringify(mem)} ${await rssByMapping()}`);
    // Settled: the first k8s-cache.json write (a transient of its own) is over and V8 has returned its free
    // pages. The figure above is the one taken 0.5 s after enforcement, as in earlier stops.
    for (let i = 0; i < 8; i++) {
      await sleep(500);
      gcNow();
    }
    const settled = process.memoryUsage();
    out['settledHeapTotalMB'] = settled.heapTotal / 1e6;
    out['settledRssMB'] = settled.rss / 1e6;
    out['peakRssMB'] = await vmHwmMB();
    // NODEWALL_BENCH_SMAPS=1: the settled RSS split by mapping class (bench/rss-split.ts).
    if (process.env['NODEWALL_BENCH_SMAPS'] !== undefined) {
      const split = await rssSplitLine();
      progress(size, split.line);
      for (const [k, v] of Object.entries(split.mb)) out[`smaps.${k}MB`] = v;
    }
    if (process.env['NODEWALL_BENCH_VERBOSE'] !== undefined) {
      const spaces = getHeapSpaceStatistics().map((x) => `${x.space_name}=${Math.round(x.space_size / 1e6)}/${Math.round(x.space_used_size / 1e6)}`).join(' ');
      progress(size, `memory settled: ${JSON.stringify(settled)} ${await rssByMapping()}; V8 spaces (committed/used MB): ${spaces}`);
    }
    // NODEWALL_BENCH_HEAPSNAP=DIR: a heap snapshot after the first model (DIR/PODS-first.heapsnapshot).
    const snapDir = process.env['NODEWALL_BENCH_HEAPSNAP'];
    if (snapDir !== undefined) {
      await mkdir(snapDir, { recursive: true });
      writeHeapSnapshot(join(snapDir, `${size.pods}-first.heapsnapshot`));
    }

    // The kernel-side observer from here on (not during the start: the first apply's 100k element lines).
    // NODEWALL_BENCH_NFTMON=off: none (the kernel rows n/a), to see what the observer costs the other figures.
    if (process.env['NODEWALL_BENCH_NFTMON'] !== 'off') {
      kmon = await KernelObserver.start('/usr/sbin/nft');
      progress(size, 'nft monitor observer ready');
    }
    const observer = kmon;

    // One kind of event, `events` times, each isolated (the previous pass done, the coalescing window over).
    // `marker`: the monitor line that says event i's change is in the kernel (none: the log line only).
    const timed = async (kind: Kind, act: (i: number) => Promise<void>, expect: 'ruleset applied' | 'ruleset unchanged', marker?: (i: number) => KernelMarker): Promise<void> => {
      // NODEWALL_BENCH_KINDS=podIp,ccnp measures only those kinds (a quick look at one of them).
      const only = process.env['NODEWALL_BENCH_KINDS'];
      if (only !== undefined && !only.split(',').includes(kind)) return;
      const lat: number[] = [];
      const kernelTx: number[] = [];
      const kernelLine: number[] = [];
      const cpu: number[] = [];
      const cpuUser: number[] = [];
      const cpuSys: number[] = [];
      let skipped = 0;
      const profile = await startProfile();
      for (let i = 0; i < events; i++) {
        const mark = tap.seen.length;
        const monMark = observer?.log.lines.length ?? 0;
        const space0 = verbose ? oldSpaces() : undefined;
        const c0 = process.cpuUsage();
        const a = performance.now();
        const w = process.hrtime.bigint();
        await act(i);
        // A pass nobody asked for in between (a watch reopened after its timeout relists) finds
        // nothing to change: skip "ruleset unchanged" while waiting for an apply.
        const l = await tap.waitFor((x) => x.msg === expect || (expect === 'ruleset unchanged' && x.msg === 'ruleset applied'), mark, 300_000);
        if (l.line.msg !== expect) throw new Error(`${kind} #${i}: expected "${expect}", got "${l.line.msg}" (${String(l.line['reason'] ?? '')})`);
        skipped += tap.seen.slice(mark).filter((x) => x.at < l.at && x.line.msg === 'ruleset unchanged').length;
        lat.push(l.at - a);
        await passDone(stateDir, l.line);
        const used = process.cpuUsage(c0);
        let seen: ObservedLine | undefined;
        if (marker !== undefined && observer !== undefined) {
          const m = marker(i);
          seen = await observer.log.waitFor(m.match, monMark, 60_000, `${kind} #${i}: ${m.what}`);
          kernelTx.push(nanosToMs(w, seen.txNanos));
          kernelLine.push(nanosToMs(w, seen.nanos));
        }
        if (space0 !== undefined) {
          // Old and large-object space growth over the pass (KB): what brings the next full GC nearer.
          const s1 = oldSpaces();
          const k = seen === undefined ? '' : `, kernel after ${Math.round(nanosToMs(w, seen.txNanos))} ms (marker line ${Math.round(nanosToMs(w, seen.nanos))} ms)`;
          progress(size, `${kind} #${i}: ${l.line.msg} rev ${String(l.line['rev'])} after ${Math.round(l.at - a)} ms${k}, CPU ${cpuMs(used).toFixed(1)} ms, old +${Math.round((s1.old - space0.old) / 1e3)} KB, large objects +${Math.round((s1.lo - space0.lo) / 1e3)} KB`);
        }
        cpu.push(cpuMs(used));
        cpuUser.push(used.user / 1000);
        cpuSys.push(used.system / 1000);
        await sleep(250);
      }
      await profile?.stop(`${size.pods}-${kind}`);
      progress(size, `${kind}: ${lat.map((x) => Math.round(x)).join(' ')} ms${kernelTx.length === 0 ? '' : `; nft monitor: ${kernelTx.map((x) => Math.round(x)).join(' ')} ms`}`);
      // Log line: the agent's "ruleset applied" (after the drift read-back for structural changes).
      out[`${kind}P50Ms`] = percentile(lat, 50);
      out[`${kind}P99Ms`] = percentile(lat, 99);
      if (kernelTx.length > 0) {
        // Kernel: the first monitor line of the transaction that carries the marker; KernelLine: the marker line.
        out[`${kind}KernelP50Ms`] = percentile(kernelTx, 50);
        out[`${kind}KernelP99Ms`] = percentile(kernelTx, 99);
        out[`${kind}KernelLineP50Ms`] = percentile(kernelLine, 50);
        out[`${kind}KernelLineP99Ms`] = percentile(kernelLine, 99);
      }
      out[`${kind}CpuP50Ms`] = percentile(cpu, 50);
      out[`${kind}CpuP99Ms`] = percentile(cpu, 99);
      // User and system time apart: system time is mostly fork/exec of nft and file I/O, user time the pass.
      out[`${kind}CpuUserP50Ms`] = percentile(cpuUser, 50);
      out[`${kind}CpuSysP50Ms`] = percentile(cpuSys, 50);
      if (skipped > 0) out[`${kind}UnrelatedPasses`] = skipped;
    };
    const get = async (resource: string, name: string, namespace?: string): Promise<ApiObject> => {
      const r = await api.request({ cmd: 'get', resource, name, ...(namespace === undefined ? {} : { namespace }) });
      if (r['object'] === null || typeof r['object'] !== 'object') throw new Error(`no ${resource} ${namespace ?? ''}/${name}`);
      return r['object'] as ApiObject;
    };
    // pod-12 (namespace monitoring, app db, shard s12) is a peer of policy host-12, which selects every
    // node (bench/synthetic.ts): pods with its labels are set elements. 100.67.0.0/16: no synthetic pod there.
    const template = await get('pods', 'pod-12', 'monitoring');
    const addedIp = (i: number): string => `100.67.${(i >> 8) & 255}.${i & 255}`;
    const added = (i: number): ApiObject => {
      const p = structuredClone(template) as ApiObject & { status: { podIPs: { ip: string }[] } };
      p.metadata = { ...p.metadata, name: `scale-${i}` };
      delete (p.metadata as Record<string, unknown>)['resourceVersion'];
      delete (p.metadata as Record<string, unknown>)['uid'];
      p.status.podIPs = [{ ip: addedIp(i) }];
      return p;
    };
    await timed('podAdd', (i) => api.request({ cmd: 'apply', resource: 'pods', object: added(i) }).then(() => undefined), 'ruleset applied', (i) => addElement(addedIp(i)));
    await timed('podDelete', (i) => api.request({ cmd: 'remove', resource: 'pods', name: `scale-${i}`, namespace: 'monitoring' }).then(() => undefined), 'ruleset applied', (i) => deleteElement(addedIp(i)));
    await timed('podIp', (i) => api.request({ cmd: 'pod-ip', name: 'pod-12', namespace: 'monitoring', ip: `100.67.200.${i + 1}` }).then(() => undefined), 'ruleset applied', (i) => addElement(`100.67.200.${i + 1}`));
    // This node moves between pools p5 and p6: another set of pool-selected policies applies (an even count ends in p5).
    // In the kernel: the chain of the incoming pool's first policy is added (in the transaction that switches the
    // input chain's jumps over): host-6 (pool p6, CIDR ingress) or host-5 (pool p5, world ingress), bench/synthetic.ts.
    const thisNode = await get('nodes', seeded.server.nodeName);
    await timed('nodeLabelThis', async (i) => {
      const n = structuredClone(thisNode);
      n.metadata = { ...n.metadata, labels: { ...n.metadata.labels, pool: i % 2 === 0 ? 'p6' : 'p5' } };
      await api.request({ cmd: 'apply', resource: 'nodes', object: n });
    }, 'ruleset applied', (i) => {
      const chain = `nw_in_allow_host_${i % 2 === 0 ? 6 : 5}_`;
      return { match: chainMarker('add', 'nodewall', chain), what: `add chain ${chain}*` };
    });
    const otherNode = await get('nodes', 'node-3');
    await timed('nodeLabelOther', async (i) => {
      const n = structuredClone(otherNode);
      n.metadata = { ...n.metadata, labels: { ...n.metadata.labels, 'bench.nodewall.io/rev': String(i) } };
      await api.request({ cmd: 'apply', resource: 'nodes', object: n });
    }, 'ruleset unchanged');
    // host-0 selects every node and allows world ingress to one port: change that port.
    const ccnp = await get('ciliumclusterwidenetworkpolicies', 'host-0');
    await timed('ccnp', async (i) => {
      const p = structuredClone(ccnp) as ApiObject & { spec: { ingress: { toPorts?: { ports: { port: string }[] }[] }[] } };
      const port = p.spec.ingress[1]?.toPorts?.[0]?.ports[0];
      if (port === undefined) throw new Error('host-0 has no world port rule');
      port.port = String(20000 + i);
      await api.request({ cmd: 'apply', resource: 'ciliumclusterwidenetworkpolicies', object: p });
    }, 'ruleset applied', (i) => ({ match: ruleWithPortMarker(20000 + i), what: `add rule with dport ${20000 + i}` }));

    // A burst: 20 IP changes of one pod, 10 ms apart. The final state is in the kernel at the last
    // "ruleset applied" after the last write (later passes, if any, find nothing to change).
    const burstMark = tap.seen.length;
    const burstMonMark = observer?.log.lines.length ?? 0;
    let lastWrite = 0;
    let lastWriteNanos = 0n;
    for (let i = 0; i < 20; i++) {
      lastWriteNanos = process.hrtime.bigint();
      await api.request({ cmd: 'pod-ip', name: 'pod-12', namespace: 'monitoring', ip: `100.67.201.${i + 1}` });
      lastWrite = performance.now();
      await sleep(10);
    }
    // Quiet for longer than any pass so far took: the last pass has ended.
    const quietMs = Math.max(3000, 2 * Math.max(...kinds.map((k) => out[`${k}P99Ms`] ?? 0)));
    for (let seenCount = -1; seenCount !== tap.seen.length;) {
      seenCount = tap.seen.length;
      await sleep(quietMs);
    }
    const applied = tap.seen.slice(burstMark).filter((s) => s.line.msg === 'ruleset applied');
    const lastApplied = applied.at(-1);
    if (lastApplied === undefined) throw new Error('burst: nothing applied');
    out['burstLastToKernelMs'] = lastApplied.at - lastWrite;
    // The same seen by the nft monitor: the last address's element in the kernel, from just before its write.
    const lastIn = await observer?.log.waitFor(elementMarker('add', '100.67.201.20'), burstMonMark, 60_000, 'burst: add element 100.67.201.20');
    if (lastIn !== undefined) out['burstLastToKernelMonitorMs'] = nanosToMs(lastWriteNanos, lastIn.txNanos);
    out['burstPasses'] = tap.seen.slice(burstMark).filter((s) => isApplyLine(s.line)).length;

    await kmon?.stop();
    kmon = undefined;
    await agent.stop('bench');
    agent = undefined;
    await child.stop();
    child = undefined;

    // Same cluster as a model in this process: full apply and delta against bare nft, and evaluate.
    const cluster = generateCluster(size);
    const objects = loadManifestText(cluster.clusterYaml, 'cluster.yaml');
    const policies = loadManifestText(cluster.policiesYaml, 'policies.yaml');
    const config = parseConfig('mode: enforce\nclusterPodCIDRs: [100.65.0.0/16, "2001:db8:1::/48"]\n', 'bench.yaml');
    const model = buildState({ config, load: { policies: policies.policies, objects: objects.objects, problems: [] }, nodeName: cluster.nodeName }).model;
    // Both make network namespaces of their own (`ip netns add` / `exec` need CAP_SYS_ADMIN): not measured
    // with NODEWALL_BENCH_CAPS=shipped (n/a in the table).
    if (out['agentHasSysAdmin'] === 1) {
      const cp = await controlPlane(model);
      for (const k of ['bareNftFMs', 'applyFullMs', 'applyFullCheckMs', 'applyOverBareRatio', 'applyNoCheckOverBareRatio', 'deltaOnePodMs', 'deltaBareNftMs', 'nftStartMs', 'deltaFromKernelReadMs']) {
        out[k] = cp[k] ?? Number.NaN;
      }
      out['deltaOverBareRatio'] = (cp['deltaOnePodMs'] ?? NaN) / (cp['deltaBareNftMs'] ?? NaN);
      Object.assign(out, await readBackCost(model, '/usr/sbin/nft', netns));
    }
    // As `npm run bench evaluate`: the best of five rounds (the first pays the compilation), per CPU second.
    const ev = evaluateThroughput(model, benchFlows(size));
    out['evaluateFlowsPerCpuSec'] = ev['evaluateFlowsPerCpuSec'] ?? Number.NaN;
    out['evaluateFirstRoundFlowsPerCpuSec'] = ev['evaluateFirstRoundFlowsPerCpuSec'] ?? Number.NaN;
    return out;
  } finally {
    await kmon?.stop().catch(() => undefined);
    await agent?.stop('bench').catch(() => undefined);
    await child?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What the agent pays after every apply to note the table for its drift check (`nft -t list
 * table`, src/agent/drift.ts), against a full listing, with the model's ruleset loaded.
 */
async function readBackCost(model: HostModel, nftPath: string, netns: string): Promise<Record<string, number>> {
  await loadScript('/usr/sbin/nft', renderPlan(model, { table: 'nodewall', mode: 'enforce' }).script, { netns });
  const terse: number[] = [];
  const full: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const st = await tableState(nftPath, 'nodewall', 120_000);
    terse.push(performance.now() - t0);
    if (!st.present) throw new Error(`read-back: ${st.error ?? 'table missing'}`);
    const f0 = performance.now();
    await runNft('/usr/sbin/nft', ['list', 'table', 'inet', 'nodewall'], { netns });
    full.push(performance.now() - f0);
  }
  await runNft('/usr/sbin/nft', ['delete', 'table', 'inet', 'nodewall'], { netns });
  return { readBackTerseMs: percentile(terse, 50), readBackFullMs: percentile(full, 50) };
}

function sizes(): SyntheticSize[] {
  const scale = Number(process.env['NODEWALL_BENCH_SCALE'] ?? '1');
  const policies = Math.max(20, Math.round(1000 * scale));
  const nodes = Math.max(10, Math.round(5000 * scale));
  // NODEWALL_BENCH_PODS=100000 measures that size only.
  const only = process.env['NODEWALL_BENCH_PODS'];
  const pods = only === undefined ? [10_000, 100_000] : only.split(',').map(Number);
  return pods.map((n) => ({ policies, nodes, pods: Math.max(20, Math.round(n * scale)) }));
}

function eventsFor(size: SyntheticSize): number {
  const env = process.env['NODEWALL_BENCH_EVENTS'];
  if (env !== undefined && Number(env) >= 1) return Math.round(Number(env));
  return size.pods <= 20_000 ? 20 : 10;
}

/** Runs this module to measure one size in a fresh process, inside a network namespace of its own. */
async function measureInChild(size: SyntheticSize, events: number): Promise<SizeResult> {
  const ns = await createNetns('nwt-scale-bench');
  try {
    await promisify(execFile)('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return await measureInNetns(size, events, ns.name);
  } finally {
    await ns.remove();
  }
}

function measureInNetns(size: SyntheticSize, events: number, netns: string): Promise<SizeResult> {
  return new Promise((resolveResult, reject) => {
    // The agent runs with the shipped runtime settings (src/bin/runtime-settings.ts: the systemd unit's and
    // the DaemonSet's); NODEWALL_BENCH_RUNTIME=none measures without them, NODEWALL_BENCH_NODE_FLAGS adds flags.
    const shipped = process.env['NODEWALL_BENCH_RUNTIME'] !== 'none';
    const nodeFlags = ['--expose-gc', ...(shipped ? agentNodeFlags : []), ...(process.env['NODEWALL_BENCH_NODE_FLAGS'] ?? '').split(' ').filter((f) => f !== '')];
    // NODEWALL_BENCH_CAPS=shipped: the measuring child (and so the agent) without CAP_SYS_ADMIN, as under the
    // shipped unit and DaemonSet: the drift hash of a full load is then read back, not predicted
    // (src/agent/predicted-table-hash.ts). Dropped from the bounding set, so root's exec does not get it back.
    const capsShipped = process.env['NODEWALL_BENCH_CAPS'] === 'shipped';
    const wrap = capsShipped ? ['/usr/bin/setpriv', '--bounding-set=-sys_admin', '--'] : [];
    const args = ['netns', 'exec', netns, ...wrap, process.execPath, ...nodeFlags, fileURLToPath(import.meta.url), '--measure', JSON.stringify({ size, events, netns })];
    const env = shipped ? { ...process.env, ...agentEnv } : process.env;
    const proc = spawn('ip', args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
    let result: SizeResult | undefined;
    let error: string | undefined;
    proc.on('message', (m: { result?: SizeResult; error?: string }) => {
      result = m.result;
      error = m.error;
    });
    proc.on('exit', (code) => {
      if (result !== undefined) resolveResult(result);
      else reject(new Error(`scale bench at ${size.pods} pods: ${error ?? `exited with code ${code}`}`));
    });
  });
}

const fmt = (v: number | undefined, digits = 0): string => (v === undefined || v === null || Number.isNaN(v) ? 'n/a' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const pair = (r: SizeResult, key: string, unit: string): string => `${fmt(r[`${key}P50Ms`])} / ${fmt(r[`${key}P99Ms`])} ${unit}`;

/** The table: one row per measure, one column per size. */
export function scaleTable(results: readonly SizeResult[]): string {
  const rows: [string, (r: SizeResult) => string][] = [
    ['size (policies / nodes / pods)', (r) => `${fmt(r['policies'])} / ${fmt(r['nodes'])} / ${fmt(r['pods'])}`],
    ['events per kind', (r) => fmt(r['eventsPerKind'])],
    ...kinds.flatMap(latencyRows),
    ...kinds.map((k): [string, (r: SizeResult) => string] => [`agent CPU per event: ${k}  p50 / p99`, (r) => `${fmt(r[`${k}CpuP50Ms`])} / ${fmt(r[`${k}CpuP99Ms`])} ms`]),
    ...kinds.map((k): [string, (r: SizeResult) => string] => [`  of which user / system: ${k}  p50`, (r) => `${fmt(r[`${k}CpuUserP50Ms`], 1)} / ${fmt(r[`${k}CpuSysP50Ms`], 1)} ms`]),
    ['burst: 20 pod IP changes 10 ms apart, last -> kernel (nft monitor)', (r) => `${fmt(r['burstLastToKernelMonitorMs'])} ms`],
    ["burst: last -> last 'ruleset applied'", (r) => `${fmt(r['burstLastToKernelMs'])} ms (${fmt(r['burstPasses'])} passes)`],
    ['start -> enforced (no cache): the \'ruleset applied\' line', (r) => `${fmt(r['startToEnforcedMs'])} ms (CPU ${fmt(r['startCpuMs'])} ms)`],
    // The first load is in force when its nft returns; what the apply does after it (the drift hash: a read-back
    // without CAP_SYS_ADMIN, else a prediction made while nft loaded) comes before the line. From the agent's
    // own timing of that apply (durationMs minus applyModel's total).
    ['start -> first load returned from nft (in force; before the drift read-back)', (r) => `${fmt((r['startToEnforcedMs'] ?? Number.NaN) - (r['startAfterNftMs'] ?? Number.NaN))} ms`],
    ['  start: pod list asked / first apply begins (ms after start)', (r) => `${fmt(r['startPodsAskedMs'])} / ${fmt(r['startApplyBeganMs'])} ms`],
    ['  start: first apply = applyModel + rest (nft lock wait, drift hash predicted or read back)', (r) => `${fmt(r['startApplyModelMs'])} + ${fmt(r['startAfterNftMs'])} ms`],
    ['  agent has CAP_SYS_ADMIN (drift hash of a full load predicted; the shipped unit has not: read back)', (r) => (r['agentHasSysAdmin'] === undefined ? 'n/a' : r['agentHasSysAdmin'] === 1 ? 'yes' : 'no')],
    ['heap used after first model (after GC)', (r) => `${fmt(r['heapUsedMB'])} MB`],
    ...(Number(process.env['NODEWALL_BENCH_IDLE_S'] ?? 0) > 0
      ? [[`RSS ${process.env['NODEWALL_BENCH_IDLE_S']} s after enforced, idle, no forced GC`, (r: SizeResult) => `${fmt(r['idleRssMB'])} MB`] as [string, (r: SizeResult) => string]]
      : []),
    ['RSS after first model (0.5 s after enforced)', (r) => `${fmt(r['rssMB'])} MB`],
    ['RSS settled (4 s later, first cache written) / V8 heap committed', (r) => `${fmt(r['settledRssMB'])} / ${fmt(r['settledHeapTotalMB'])} MB`],
    ['peak RSS of the process (VmHWM, start included)', (r) => `${fmt(r['peakRssMB'])} MB`],
    ...(results.some((r) => r['smaps.totalMB'] !== undefined)
      ? [['  settled RSS split: node binary / other files / malloc (main + threads) / stacks / other anon (V8 resident)', (r: SizeResult) =>
          `${fmt((r['smaps.nodeTextMB'] ?? NaN) + (r['smaps.nodeDataMB'] ?? NaN))} / ${fmt(r['smaps.filesMB'])} / ${fmt(r['smaps.mallocMainMB'])} + ${fmt(r['smaps.mallocThreadArenasMB'])} / ${fmt((r['smaps.mainStackMB'] ?? NaN) + (r['smaps.threadStacksMB'] ?? NaN))} / ${fmt(r['smaps.anonOtherMB'])} (${fmt(r['smaps.v8ResidentMB'])}) MB`] as [string, (r: SizeResult) => string]]
      : []),
    ['ruleset: rules / set elements', (r) => `${fmt(r['rules'])} / ${fmt(r['elements'])}`],
    ["agent's first apply (nft -c step)", (r) => `${fmt(r['firstApplyMs'])} ms (${fmt(r['firstApplyCheckMs'])} ms)`],
    ['full apply / bare nft -f (ratio)', (r) => `${fmt(r['applyFullMs'])} / ${fmt(r['bareNftFMs'])} ms (${fmt(r['applyOverBareRatio'], 2)}x)`],
    ['full apply: nft -c step; ratio without it', (r) => `${fmt(r['applyFullCheckMs'])} ms; ${fmt(r['applyNoCheckOverBareRatio'], 2)}x`],
    ['1-element delta / bare nft -f (ratio)', (r) => `${fmt(r['deltaOnePodMs'], 1)} / ${fmt(r['deltaBareNftMs'], 1)} ms (${fmt(r['deltaOverBareRatio'], 2)}x)`],
    ['nft start floor (no-cache command)', (r) => `${fmt(r['nftStartMs'], 1)} ms`],
    ['after each apply: nft -t list table (drift hash) / full list', (r) => `${fmt(r['readBackTerseMs'])} / ${fmt(r['readBackFullMs'])} ms`],
    ['evaluate throughput, best of 5 rounds (first round, compiling)', (r) => `${fmt(r['evaluateFlowsPerCpuSec'])} (${fmt(r['evaluateFirstRoundFlowsPerCpuSec'])}) flows/s of CPU`],
  ];
  const header = ['measure', ...results.map((r) => `${fmt(r['pods'])} pods`)];
  const body = rows.map(([label, cell]) => [label, ...results.map(cell)]);
  const widths = header.map((_, c) => Math.max(...[header, ...body].map((row) => (row[c] ?? '').length)));
  const line = (row: readonly string[]): string => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export async function runScaleBench(): Promise<Record<string, number>> {
  if (process.getuid?.() !== 0) throw new Error('the scale bench needs root (network namespaces for nft)');
  const results: SizeResult[] = [];
  const errors: string[] = [];
  for (const size of sizes()) {
    // A failed size is reported and leaves n/a in its column; the other size is still measured.
    const r = await measureInChild(size, eventsFor(size)).catch((err: unknown) => {
      errors.push(err instanceof Error ? err.message : String(err));
      return { policies: size.policies, nodes: size.nodes, pods: size.pods, failed: 1 };
    });
    results.push(r);
  }
  process.stdout.write(`${scaleTable(results)}\n`);
  for (const e of errors) process.stdout.write(`error: ${e}\n`);
  if (errors.length > 0) process.exitCode = 1;
  const flat: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r)) flat[`pods${r['pods']}.${k}`] = v;
  return flat;
}

// Measuring child (forked by runScaleBench), or `node dist/bench/scale-bench.js` alone.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const at = process.argv.indexOf('--measure');
  if (at >= 0) {
    const { size, events, netns } = JSON.parse(process.argv[at + 1] ?? '{}') as { size: SyntheticSize; events: number; netns?: string };
    let message: { result?: SizeResult; error?: string };
    try {
      // The agent's nft runs unwrapped: never outside the namespace made for it.
      if (netns === undefined) throw new Error('--measure needs the netns it runs in (run the bench through `npm run bench scale`)');
      message = { result: await measureSize(size, events, netns) };
    } catch (err) {
      message = { error: err instanceof Error ? err.stack ?? err.message : String(err) };
    }
    // Exit once the message is out: the agent's source may leave timers behind.
    process.send?.(message, () => process.exit(0));
  } else {
    const r = await runScaleBench();
    process.stdout.write(`${JSON.stringify({ bench: 'scale', ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v * 100) / 100])) })}\n`);
  }
}
