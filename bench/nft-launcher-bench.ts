// Agent CPU per nft run: a direct spawn from this process vs the launcher (src/nft/nft-launcher.ts), at a
// small heap and with ~400 MB of live JS objects (the agent at 100k pods), in a throwaway network namespace.
// Per call: process.cpuUsage() (user + system, all threads of this process) and main-thread wall time, for
// `nft list tables` and a one-element `nft -f` delta (what a pod event loads). `npm run bench nftlaunch`.
// Also the longest main-thread stall while one call hands a big script (a cold start's, default 80 MB,
// NODEWALL_BENCH_SCRIPT_MB) to the launcher or to a direct spawn, whose program discards it.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { spawnNft } from '../src/nft/nft-exec.js';
import { NftLauncher } from '../src/nft/nft-launcher.js';

const nft = '/usr/sbin/nft';

function sh(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, _o, stderr) => (err === null ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${stderr}`, { cause: err }))));
  });
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

type Run = (args: readonly string[], stdin: string | undefined) => Promise<unknown>;

/** Median and p90 of CPU ms and wall ms per call over `n` calls of each kind. */
async function measure(run: Run, n: number): Promise<Record<string, number>> {
  const cpu: Record<string, number[]> = { list: [], delta: [] };
  const wall: Record<string, number[]> = { list: [], delta: [] };
  for (let i = 0; i < n; i++) {
    for (const kind of ['list', 'delta'] as const) {
      const stdin = kind === 'delta' ? `add element inet nwbench s { 198.51.100.${i % 250} }\ndelete element inet nwbench s { 198.51.100.${i % 250} }\n` : undefined;
      const args = kind === 'delta' ? ['-f', '-'] : ['list', 'tables'];
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      await run(args, stdin);
      const w = performance.now() - w0;
      const c = process.cpuUsage(c0);
      cpu[kind]!.push((c.user + c.system) / 1000);
      wall[kind]!.push(w);
    }
  }
  const out: Record<string, number> = {};
  for (const kind of ['list', 'delta']) {
    out[`${kind}CpuMsP50`] = quantile(cpu[kind]!, 0.5);
    out[`${kind}CpuMsP90`] = quantile(cpu[kind]!, 0.9);
    out[`${kind}WallMsP50`] = quantile(wall[kind]!, 0.5);
  }
  return out;
}

/** ~`mb` MB of live, varied JS objects (like the agent's pods and sets), kept reachable by the returned array. */
function ballast(mb: number): unknown[] {
  const keep: unknown[] = [];
  // ~150 bytes per object with its strings.
  const count = mb * 6_500;
  for (let i = 0; i < count; i++) keep.push({ name: `pod-${i}`, ip: i, labels: { app: `a${i % 977}` } });
  return keep;
}

/** Median over 3 calls of the longest gap between two turns of the event loop during one `run` of `mb` MB. */
async function scriptStallMs(run: (stdin: string) => Promise<unknown>, mb: number): Promise<number> {
  const line = 'add element inet nodewall pods_v4 { 198.51.100.17, 203.0.113.200, 192.0.2.33 }\n';
  const script = line.repeat(Math.ceil((mb * 2 ** 20) / line.length));
  const gaps: number[] = [];
  for (let i = 0; i < 3; i++) {
    let last = performance.now();
    let max = 0;
    let on = true;
    const tick = (): void => {
      const now = performance.now();
      max = Math.max(max, now - last);
      last = now;
      if (on) setImmediate(tick);
    };
    setImmediate(tick);
    await run(script);
    // The turn right after the call counts too (a synchronous write ends there).
    await new Promise((r) => setTimeout(r, 5));
    on = false;
    gaps.push(max);
  }
  return quantile(gaps, 0.5);
}

export async function runNftLauncherBench(): Promise<Record<string, number>> {
  const ns = `nwt-nft-bench-launch-${randomBytes(3).toString('hex')}`;
  await sh('ip', ['netns', 'add', ns]);
  // Started now, while this process is small (as the agent does).
  const launcher = new NftLauncher();
  try {
    const viaSpawn: Run = (args, stdin) => spawnNft(nft, args, { netns: ns, ...(stdin === undefined ? {} : { stdin }) });
    const viaLauncher: Run = (args, stdin) => launcher.run(nft, args, { netns: ns, ...(stdin === undefined ? {} : { stdin }) });
    await viaSpawn(['-f', '-'], 'table inet nwbench {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\n');
    const n = Number(process.env['NODEWALL_BENCH_CALLS'] ?? '100');
    const result: Record<string, number> = {};
    const add = (prefix: string, r: Record<string, number>) => {
      for (const [k, v] of Object.entries(r)) result[`${prefix}${k[0]!.toUpperCase()}${k.slice(1)}`] = v;
    };
    result['smallRssMb'] = process.memoryUsage().rss / 2 ** 20;
    add('smallSpawn', await measure(viaSpawn, n));
    add('smallLauncher', await measure(viaLauncher, n));
    const keep = ballast(Number(process.env['NODEWALL_BENCH_BALLAST_MB'] ?? '400'));
    const mem = process.memoryUsage();
    result['bigHeapMb'] = mem.heapUsed / 2 ** 20;
    result['bigRssMb'] = mem.rss / 2 ** 20;
    add('bigSpawn', await measure(viaSpawn, n));
    add('bigLauncher', await measure(viaLauncher, n));
    result['ballastObjects'] = keep.length;
    const mb = Number(process.env['NODEWALL_BENCH_SCRIPT_MB'] ?? '80');
    result['scriptMb'] = mb;
    result['scriptStallMsLauncher'] = await scriptStallMs((stdin) => launcher.run('/bin/sh', ['-c', 'cat >/dev/null'], { stdin }), mb);
    result['scriptStallMsSpawn'] = await scriptStallMs((stdin) => spawnNft('/bin/sh', ['-c', 'cat >/dev/null'], { stdin }), mb);
    result['launcherFallbacks'] = launcher.stats.fallbacks;
    result['launcherDirect'] = launcher.stats.direct;
    return result;
  } finally {
    launcher.close();
    await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}
