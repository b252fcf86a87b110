// Agent benchmarks (issue 4), each in its own throwaway network namespace:
// - reaction: policy file saved -> new ruleset in the kernel (the agent's
//   "ruleset applied" line, logged after `nft -f` returned), with the default
//   300 ms debounce, median and max over a few edits;
// - memory: the agent's RSS (and peak) after enforcing a synthetic cluster
//   whose sets hold ~100k addresses.

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_MAX_FILE_BYTES } from '../src/inventory/read-manifest-files.js';
import { generateCluster } from './synthetic.js';

const run = promisify(execFile);
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'bin', 'nodewall.js');

type Line = Record<string, unknown> & { msg: string };

export class Child {
  readonly lines: Line[] = [];
  readonly #proc: ChildProcessWithoutNullStreams;
  #buf = '';
  constructor(netns: string, config: string) {
    this.#proc = spawn('ip', ['netns', 'exec', netns, process.execPath, cli, 'agent', '--config', config], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#proc.stdout.on('data', (b: Buffer) => {
      this.#buf += b.toString();
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        try {
          this.lines.push(JSON.parse(this.#buf.slice(0, nl)) as Line);
        } catch {
          // not a log line
        }
        this.#buf = this.#buf.slice(nl + 1);
      }
    });
  }
  get pid(): number {
    return this.#proc.pid ?? -1;
  }
  async waitFor(pred: (l: Line) => boolean, from: number, timeoutMs: number): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const hit = this.lines.slice(from).find(pred);
      if (hit !== undefined) return hit;
      const failed = this.lines.slice(from).find((l) => /failed|no usable config/.test(l.msg));
      if (failed !== undefined) throw new Error(`agent: ${JSON.stringify(failed).slice(0, 1500)}`);
      if (this.#proc.exitCode !== null) throw new Error(`agent exited: ${JSON.stringify(this.lines.slice(-3))}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`timeout; last lines: ${JSON.stringify(this.lines.slice(-3)).slice(0, 800)}`);
  }
  async stop(): Promise<void> {
    if (this.#proc.exitCode !== null) return;
    const done = new Promise((r) => this.#proc.once('close', r));
    this.#proc.kill('SIGTERM');
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 15_000);
    await done;
    clearTimeout(timer);
  }
}

export async function withNetns<T>(fn: (ns: string, dir: string) => Promise<T>): Promise<T> {
  const ns = `nwt-agent-bench-${randomBytes(3).toString('hex')}`;
  const dir = await mkdtemp(join(tmpdir(), 'nwt-agent-bench-'));
  await run('ip', ['netns', 'add', ns]);
  try {
    return await fn(ns, dir);
  } finally {
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

export function policy(port: number): string {
  return [
    'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata:', '  name: bench', 'spec:', '  nodeSelector: {}',
    '  ingress:', '    - fromEntities: [world]', '      toPorts:', '        - ports:', `            - { port: "${port}", protocol: TCP }`, '',
  ].join('\n');
}

export async function config(dir: string, extra: string): Promise<string> {
  const path = join(dir, 'nodewall.yaml');
  await mkdir(join(dir, 'policies'), { recursive: true });
  await writeFile(path, `mode: enforce\nsources: [${join(dir, 'policies')}]\nstateDir: ${join(dir, 'state')}\nnodeName: node-5\n${extra}`);
  return path;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function measureReaction(iterations = 7): Promise<Record<string, number>> {
  return withNetns(async (ns, dir) => {
    const cfg = await config(dir, '');
    const file = join(dir, 'policies', 'bench.yaml');
    await writeFile(file, policy(1000));
    const agent = new Child(ns, cfg);
    try {
      await agent.waitFor((l) => l.msg === 'ruleset applied', 0, 30_000);
      const reaction: number[] = [];
      const applyMs: number[] = [];
      for (let i = 1; i <= iterations; i++) {
        const mark = agent.lines.length;
        const tmp = `${file}.tmp`;
        await writeFile(tmp, policy(1000 + i));
        const t0 = Date.now();
        await rename(tmp, file);
        const l = await agent.waitFor((x) => x.msg === 'ruleset applied' && x['trigger'] === 'watch', mark, 10_000);
        reaction.push(Date.parse(String(l['time'])) - t0);
        applyMs.push(Number(l['durationMs']));
      }
      return {
        reactionMedianMs: median(reaction),
        reactionMaxMs: Math.max(...reaction),
        debounceMs: 300,
        applyMedianMs: median(applyMs),
      };
    } finally {
      await agent.stop();
    }
  });
}

/**
 * `addresses` distinct, non-adjacent addresses (so the set cannot merge them
 * into prefixes): pods with one IPv4 in 100.96.0.0/11 (set elements only,
 * never sent to) and one IPv6 in 2001:db8:2::/48 each, all selected by one
 * fromEndpoints rule, plus a synthetic cluster (100 nodes, 2,000 pods, 50
 * policies) around them.
 */
export async function measureMemory(addresses = 100_000): Promise<Record<string, number>> {
  return withNetns(async (ns, dir) => {
    const cluster = generateCluster({ policies: 50, nodes: 100, pods: 2000 });
    const cfgExtra = 'clusterPodCIDRs: [100.65.0.0/16, 100.96.0.0/11, "2001:db8:1::/48", "2001:db8:2::/48"]\ndriftCheckSeconds: 5\n';
    // addresses/2 pods labelled bench=mem with one IPv4 and one IPv6 address each, never adjacent,
    // selected by one fromEndpoints rule: one identity set of `addresses` elements.
    const pods: string[] = [];
    for (let i = 0; i < Math.floor(addresses / 2); i++) {
      const v = 2 * i;
      pods.push(
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: mem-${i}\n  namespace: default\n  labels:\n    bench: mem\n` +
          `spec:\n  nodeName: node-${i % 100}\nstatus:\n  phase: Running\n  podIPs:\n` +
          `  - ip: 100.${96 + (v >> 16)}.${(v >> 8) & 255}.${v & 255}\n  - ip: "2001:db8:2::${(v >> 16).toString(16)}:${(v & 0xffff).toString(16)}"\n`,
      );
    }
    const podsYaml = pods.join('---\n');
    // pods.yaml is ~10 MiB at scale 1: above NODEWALL_BENCH_SCALE ~3 it needs more than the default maxFileBytes.
    const podsBytes = Buffer.byteLength(podsYaml);
    const cfg = await config(dir, `${cfgExtra}${podsBytes > DEFAULT_MAX_FILE_BYTES ? `maxFileBytes: ${podsBytes + (1 << 20)}\n` : ''}`);
    await writeFile(join(dir, 'policies', 'cluster.yaml'), cluster.clusterYaml);
    await writeFile(join(dir, 'policies', 'policies.yaml'), cluster.policiesYaml);
    await writeFile(join(dir, 'policies', 'pods.yaml'), podsYaml);
    await writeFile(join(dir, 'policies', 'many-addresses.yaml'), [
      'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata:', '  name: bench-many-addresses', 'spec:', '  nodeSelector: {}',
      '  ingress:', '    - fromEndpoints:', '        - matchLabels: { bench: mem }', '      toPorts:', '        - ports:', '            - { port: "9100", protocol: TCP }', '',
    ].join('\n'));
    const agent = new Child(ns, cfg);
    try {
      const t0 = Date.now();
      const l = await agent.waitFor((x) => x.msg === 'ruleset applied', 0, 300_000);
      const firstApplyMs = Date.now() - t0;
      // Let a drift check run, then sample.
      await new Promise((r) => setTimeout(r, 6000));
      const status = await readFile(`/proc/${agent.pid}/status`, 'utf8').catch(() => '');
      // `ip netns exec` execs node: the child pid is node's.
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return {
        setElements: Number(l['elements']),
        rules: Number(l['rules']),
        sets: Number(l['sets']),
        firstApplyMs,
        applyDurationMs: Number(l['durationMs']),
        rssMB: kb('VmRSS') / 1024,
        peakRssMB: kb('VmHWM') / 1024,
        heapUsedAfterApplyMB: Number(l['heapUsedMB']),
      };
    } finally {
      await agent.stop();
    }
  });
}

export async function runAgentBench(): Promise<Record<string, number>> {
  const scale = Number(process.env['NODEWALL_BENCH_SCALE'] ?? '1');
  const reaction = await measureReaction();
  const memory = await measureMemory(Math.max(100, Math.round(100_000 * scale)));
  return {
    ...Object.fromEntries(Object.entries(reaction).map(([k, v]) => [`reaction.${k}`, v])),
    ...Object.fromEntries(Object.entries(memory).map(([k, v]) => [`memory.${k}`, v])),
  };
}
