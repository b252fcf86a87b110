// Instant drift repair (issue 11): `nft flush ruleset` inside the agent's
// namespace -> nodewall's table back in the kernel. The agent runs with
// driftCheckSeconds: 3600, so every repair measured is the nft monitor's
// (checked on the log line's detectedBy). Latency = time of the agent's
// "ruleset applied" line (logged after the restoring transaction returned)
// minus the moment just before `nft flush ruleset` was started, so it
// includes that nft process (which, with 100k elements, takes a while
// itself: flushCommandMedianMs): an upper bound. detectedToRepaired: from
// the agent's "table missing" line to the "ruleset applied" line. Also the agent's CPU
// time per repair (utime+stime from /proc), which a loaded machine inflates
// less than wall time.

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Child, config, median, policy, withNetns } from './agent-bench.js';

const run = promisify(execFile);

async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime: fields 14 and 15 (1-based) of stat = index 11, 12 after the command name; clock ticks (100/s).
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** A policy allowing port 9100 from `n` non-adjacent /32s (one identity set of n elements). */
function manyAddresses(n: number): string {
  const cidrs: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = 2 * i;
    cidrs.push(`          - 100.${64 + (v >> 16)}.${(v >> 8) & 255}.${v & 255}/32`);
  }
  return [
    'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata:', '  name: bench-many', 'spec:', '  nodeSelector: {}',
    '  ingress:', '    - fromCIDR:', ...cidrs, '      toPorts:', '        - ports:', '            - { port: "9100", protocol: TCP }', '',
  ].join('\n');
}

export async function runMonitorBench(): Promise<Record<string, number>> {
  const scale = Number(process.env['NODEWALL_BENCH_SCALE'] ?? '1');
  const small = await measureRepair(0, 9);
  const large = await measureRepair(Math.max(100, Math.round(100_000 * scale)), 5);
  return {
    ...Object.fromEntries(Object.entries(small).map(([k, v]) => [`small.${k}`, v])),
    ...Object.fromEntries(Object.entries(large).map(([k, v]) => [`large.${k}`, v])),
  };
}

/** Flush -> repaired, `iterations` times, with a table of a few rules plus `addresses` set elements. */
async function measureRepair(addresses: number, iterations: number): Promise<Record<string, number>> {
  return withNetns(async (ns, dir) => {
    const cfg = await config(dir, 'driftCheckSeconds: 3600\nmetrics: {listen: off}\n');
    await writeFile(join(dir, 'policies', 'bench.yaml'), policy(22));
    if (addresses > 0) await writeFile(join(dir, 'policies', 'many.yaml'), manyAddresses(addresses));
    const agent = new Child(ns, cfg);
    try {
      const first = await agent.waitFor((l) => l.msg === 'ruleset applied', 0, 300_000);
      // Let the monitor children start (they print nothing when ready): a first flush is repaired by the
      // restart-triggered or the event-triggered check either way, so warm up once, unmeasured.
      await new Promise((r) => setTimeout(r, 1000));
      let mark = agent.lines.length;
      await run('ip', ['netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
      await agent.waitFor((l) => l.msg === 'ruleset applied' && l['detectedBy'] === 'monitor', mark, 120_000);
      const latency: number[] = [];
      const cpu: number[] = [];
      const applyMs: number[] = [];
      const flushCmd: number[] = [];
      const detectToRepaired: number[] = [];
      for (let i = 0; i < iterations; i++) {
        await new Promise((r) => setTimeout(r, 300));
        mark = agent.lines.length;
        const c0 = await cpuMs(agent.pid);
        const t0 = Date.now();
        await run('ip', ['netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
        flushCmd.push(Date.now() - t0);
        const l = await agent.waitFor((x) => x.msg === 'ruleset applied' && x['trigger'] === 'drift', mark, 120_000);
        const seen = agent.lines.slice(mark).find((x) => /table missing/.test(x.msg));
        detectToRepaired.push(Date.parse(String(l['time'])) - Date.parse(String(seen?.['time'])));
        if (l['detectedBy'] !== 'monitor') throw new Error(`repair not by the monitor: ${JSON.stringify(l)}`);
        latency.push(Date.parse(String(l['time'])) - t0);
        applyMs.push(Number(l['durationMs']));
        await new Promise((r) => setTimeout(r, 100));
        cpu.push((await cpuMs(agent.pid)) - c0);
      }
      return {
        setElements: Number(first['elements']),
        runs: iterations,
        flushToRepairedMedianMs: median(latency),
        flushToRepairedMinMs: Math.min(...latency),
        flushToRepairedMaxMs: Math.max(...latency),
        repairApplyMedianMs: median(applyMs),
        flushCommandMedianMs: median(flushCmd),
        detectedToRepairedMedianMs: median(detectToRepaired),
        agentCpuPerRepairMedianMs: median(cpu),
      };
    } finally {
      await agent.stop();
    }
  });
}
