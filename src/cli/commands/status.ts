import type { Argv, CommandModule } from 'yargs';
import { pidAlive, readStatus, type AgentStatus } from '../../agent/status-file.js';
import { loadConfig } from '../../inventory/config.js';
import { defaultConfig } from '../../inventory/config.js';

interface StatusArgs {
  config?: string | undefined;
  stateDir?: string | undefined;
  output: 'text' | 'json';
}

/** Exit codes follow `systemctl status`: 0 running, 3 not running. */
const notRunning = 3;

export function formatStatus(s: AgentStatus, running: boolean): string {
  const lines: string[] = [];
  lines.push(`agent:    ${running ? `running (pid ${s.pid}, since ${s.startedAt})` : `not running (last pid ${s.pid}${s.stopped === true ? ', stopped cleanly' : ''})`}`);
  lines.push(`mode:     ${s.mode}`);
  lines.push(`node:     ${s.node}, table inet ${s.table}`);
  const a = s.lastApply;
  if (a === undefined) lines.push('last apply: none');
  else {
    const extra = [a.kind === undefined ? '' : `kind ${a.kind}`, a.durationMs === undefined ? '' : `${a.durationMs} ms`, `trigger ${a.trigger}`].filter((x) => x !== '');
    lines.push(`last apply: ${a.at} ${a.outcome} (${extra.join(', ')})${a.error === undefined ? '' : `: ${a.error}`}`);
  }
  const p = s.policies;
  lines.push(`policies: ${p.selected} select this node; ingress ${p.ingress} (${s.entries.ingress} entries${s.enforced.ingress ? ', enforced' : ', not enforced'}), egress ${p.egress} (${s.entries.egress} entries${s.enforced.egress ? ', enforced' : ', not enforced'})`);
  if (p.keptLastGood > 0 || p.rejected > 0) lines.push(`          ${p.keptLastGood} held at their last good version, ${p.rejected} invalid new not applied`);
  lines.push(`last error: ${s.lastError === undefined ? 'none' : `${s.lastError.at} ${s.lastError.message}`}`);
  const k = s.kubernetes;
  if (k !== undefined) {
    lines.push(`kubernetes: ${k.connected ? 'connected' : 'disconnected'} since ${k.since}${k.synced ? ', synced' : ', not synced'}${k.stale ? `, stale (enforcing the cache read from the API at ${k.cacheSyncedAt ?? 'unknown time'})` : ''}`);
    if (k.lastError !== undefined) lines.push(`            last API error: ${k.lastError}`);
    if (s.waitingForKubernetes === true) lines.push('            waiting for the first complete read of the API: nothing applied');
  }
  lines.push(`updated:  ${s.updatedAt}`);
  return lines.join('\n');
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: 'Show whether the agent runs, its mode, the last apply and the policy counts (from the status file)',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', describe: 'config file (for stateDir; default /etc/nodewall/nodewall.yaml if present)' })
      .option('state-dir', { type: 'string', describe: 'state directory (overrides the config)' })
      .option('output', { choices: ['text', 'json'] as const, default: 'text' as const }) as unknown as Argv<StatusArgs>,
  handler: async (argv) => {
    let stateDir = argv.stateDir;
    if (stateDir === undefined) {
      try {
        stateDir = (await loadConfig(argv.config)).stateDir;
      } catch {
        // A broken config must not hide the agent's status: fall back to the default place.
        stateDir = defaultConfig.stateDir;
      }
    }
    const s = await readStatus(stateDir);
    if (s === undefined) {
      if (argv.output === 'json') process.stdout.write(`${JSON.stringify({ running: false, stateDir, status: null })}\n`);
      else process.stdout.write(`agent: never ran (no status file in ${stateDir})\n`);
      process.exitCode = notRunning;
      return;
    }
    const running = s.stopped !== true && pidAlive(s.pid);
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify({ running, stateDir, status: s }, null, 2)}\n`);
    else process.stdout.write(`${formatStatus(s, running)}\n`);
    process.exitCode = running ? 0 : notRunning;
  },
};
