import type { Argv, CommandModule } from 'yargs';
import { formatDoc } from '../output-format.js';
import { pidAlive, readStatus, type StatusFile } from '../../agent/status-file.js';
import { StateFileError } from '../../inventory/state-files.js';
import { escapeUnprintable } from '../../api/printable.js';
import { pauseText } from './pause-status.js';
import { loadConfig } from '../../inventory/config.js';
import { defaultConfig } from '../../inventory/config.js';
import { confirmStatus } from './confirm.js';
import { refusalLine } from '../../agent/refused-changes.js';
import { observerLines } from '../../agent/observer-status.js';

interface StatusArgs {
  config?: string | undefined;
  stateDir?: string | undefined;
  output: 'text' | 'json' | 'yaml';
}

/** Exit codes follow `systemctl status` (LSB): 0 running, 3 not running, 4 status unknown (corrupt status file); 1: running but no usable config (nothing applied). */
const notRunning = 3;
const unknownStatus = 4;
const runningWithoutConfig = 1;

export function formatStatus(s: StatusFile, running: boolean): string {
  const lines: string[] = [];
  lines.push(`agent:    ${running ? `running (pid ${s.pid}, since ${s.startedAt})` : `not running (last pid ${s.pid}${s.stopped === true ? ', stopped cleanly' : ''})`}`);
  if ('noConfig' in s) {
    lines.push(`config:   ${s.noConfig.file} is unusable and there is no last good config: nothing applied${running ? '; the agent retries when the file changes' : ''}`);
    for (const p of s.noConfig.problems) lines.push(`          ${p.file}:${p.line}:${p.col}: ${p.message}`);
    lines.push(`last error: ${s.lastError.at} ${s.lastError.message}`);
    lines.push(`updated:  ${s.updatedAt}`);
    return lines.join('\n');
  }
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
  // Rolled-back changes (rollout probes, commit-confirm): refused until they change.
  for (const r of s.refused ?? []) lines.push(`refused:  ${refusalLine(r)}`);
  const k = s.kubernetes;
  if (k !== undefined) {
    const state = `${k.connected ? 'connected' : 'disconnected'} since ${k.since}${k.synced ? ', synced' : ', not synced'}${k.stale ? `, stale (enforcing the cache read from the API at ${k.cacheSyncedAt ?? 'unknown time'})` : ''}`;
    // Not running: the last state the agent wrote, so it reads as history.
    lines.push(running ? `kubernetes: ${state}` : `kubernetes: stopped with the agent; last state: ${state}`);
    if (k.lastError !== undefined) lines.push(`            last API error: ${k.lastError}`);
    if (s.waitingForKubernetes === true) lines.push(`            ${running ? '' : 'was '}waiting for the first complete read of the API: nothing applied`);
  }
  if (s.staged !== undefined) lines.push(`staged:   ${s.staged.join(', ')} (evaluated, not enforced)`);
  if (s.pause !== undefined) lines.push(pauseText(s.pause, running, Date.now()));
  lines.push(...observerLines(s, running));
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
      .option('output', { alias: 'o', choices: ['text', 'json', 'yaml'] as const, default: 'text' as const }) as unknown as Argv<StatusArgs>,
  handler: async (argv) => {
    let stateDir = argv.stateDir;
    if (stateDir === undefined) {
      try {
        stateDir = (await loadConfig(argv.config)).stateDir;
      } catch (err) {
        // A broken config must not hide the agent's status: fall back to the default place (where an agent without a usable config writes it too).
        stateDir = defaultConfig.stateDir;
        process.stderr.write(`nodewall: config unusable (${err instanceof Error ? err.message : String(err)}): reading the status from the default state dir ${stateDir}\n`);
      }
    }
    // Commit-confirm lives in its own files: shown whether or not the agent runs.
    const confirm = await confirmStatus(stateDir);
    const confirmText = confirm.lines.map((l) => `${escapeUnprintable(l)}\n`).join('');
    let s: StatusFile | undefined;
    try {
      s = await readStatus(stateDir);
    } catch (err) {
      if (!(err instanceof StateFileError)) throw err;
      if (argv.output !== 'text') process.stdout.write(formatDoc({ running: null, stateDir, status: null, error: { file: err.file, reason: err.reason } }, argv.output));
      process.stderr.write(`nodewall: status file ${err.file} is corrupt: ${err.reason}; the agent replaces it with its next write (or at its next start)\n`);
      process.exitCode = unknownStatus;
      return;
    }
    if (s === undefined) {
      if (argv.output !== 'text') process.stdout.write(formatDoc({ running: false, stateDir, status: null, ...confirm.json }, argv.output));
      else process.stdout.write(`agent: never ran (no status file in ${stateDir})\n${confirmText}`);
      process.exitCode = notRunning;
      return;
    }
    const running = s.stopped !== true && pidAlive(s.pid);
    if (argv.output !== 'text') process.stdout.write(formatDoc({ running, stateDir, status: s, ...confirm.json }, argv.output));
    // The status file holds text that came from input (policy names, errors): nothing in it may drive the terminal.
    else process.stdout.write(`${formatStatus(s, running).split('\n').map(escapeUnprintable).join('\n')}\n${confirmText}`);
    process.exitCode = !running ? notRunning : 'noConfig' in s ? runningWithoutConfig : 0;
  },
};
