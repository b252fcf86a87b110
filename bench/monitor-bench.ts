// Instant drift repair (issue 11): `nft flush ruleset` inside the agent's
// namespace -> nodewall's table back in the kernel. The agent runs with
// driftCheckSeconds: 3600, so every repair measured is the nft monitor's
// (checked on the log line's detectedBy). Latency = time of the agent's
// "ruleset applied" line (logged after the restoring transaction returned)
// minus the moment just before `nft flush ruleset` was started, so it
// includes starting that nft process: an upper bound. Also the agent's CPU
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

export async function runMonitorBench(iterations = 9): Promise<Record<string, number>> {
  return withNetns(async (ns, dir) => {
    const cfg = await config(dir, 'driftCheckSeconds: 3600\nmetrics: {listen: off}\n');
    await writeFile(join(dir, 'policies', 'bench.yaml'), policy(22));
    const agent = new Child(ns, cfg);
    try {
      await agent.waitFor((l) => l.msg === 'ruleset applied', 0, 30_000);
      // Let the monitor children start (they print nothing when ready): a first flush is repaired by the
      // restart-triggered or the event-triggered check either way, so warm up once, unmeasured.
      await new Promise((r) => setTimeout(r, 1000));
      let mark = agent.lines.length;
      await run('ip', ['netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
      await agent.waitFor((l) => l.msg === 'ruleset applied' && l['detectedBy'] === 'monitor', mark, 30_000);
      const latency: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < iterations; i++) {
        await new Promise((r) => setTimeout(r, 300));
        mark = agent.lines.length;
        const c0 = await cpuMs(agent.pid);
        const t0 = Date.now();
        await run('ip', ['netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
        const l = await agent.waitFor((x) => x.msg === 'ruleset applied' && x['trigger'] === 'drift', mark, 30_000);
        if (l['detectedBy'] !== 'monitor') throw new Error(`repair not by the monitor: ${JSON.stringify(l)}`);
        latency.push(Date.parse(String(l['time'])) - t0);
        await new Promise((r) => setTimeout(r, 100));
        cpu.push((await cpuMs(agent.pid)) - c0);
      }
      return {
        runs: iterations,
        flushToRepairedMedianMs: median(latency),
        flushToRepairedMinMs: Math.min(...latency),
        flushToRepairedMaxMs: Math.max(...latency),
        agentCpuPerRepairMedianMs: median(cpu),
      };
    } finally {
      await agent.stop();
    }
  });
}
