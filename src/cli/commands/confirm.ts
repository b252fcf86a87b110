// `nodewall confirm`: keep what is on probation. `nodewall confirm-watchdog` (hidden): the detached process
// that rolls it back at the deadline (src/agent/confirm-watchdog.ts).

import type { Argv, CommandModule } from 'yargs';
import {
  cliActor, confirmPending, isDue, msLeft, readOutcomes, readPending, type ConfirmOutcome, type PendingConfirm,
} from '../../agent/commit-confirm.js';
import { runWatchdog } from '../../agent/confirm-watchdog.js';
import { pidAlive } from '../../agent/status-file.js';
import { escapeUnprintable } from '../../api/printable.js';
import { loadConfig } from '../../inventory/config.js';
import { exitCodes, UsageError } from '../options.js';

interface ConfirmArgs {
  config?: string | undefined;
  stateDir?: string | undefined;
  output: 'text' | 'json';
}

/** Exit codes of `confirm`: 0 confirmed, 1 nothing pending (or unreadable), 3 too late: rolled back. */
export const confirmExit = { confirmed: 0, nothing: 1, tooLate: 3 } as const;

/** Lines for `nodewall status` about commit-confirm. */
export function pendingLines(p: PendingConfirm | undefined, corrupt: string | undefined, last: ConfirmOutcome | undefined): string[] {
  const out: string[] = [];
  if (corrupt !== undefined) out.push(`pending confirmation: UNREADABLE (${corrupt}); rolled back at its deadline from the watchdog's or agent's copy`);
  if (p !== undefined) {
    const left = msLeft(p);
    const target = p.previous.kind === 'absent' ? 'no table' : `table inet ${p.table} as it was`;
    const dog = p.watchdogPid === undefined ? 'no watchdog' : `watchdog pid ${p.watchdogPid}${pidAlive(p.watchdogPid) ? '' : ' (not running)'}`;
    out.push(`pending confirmation: ${p.origin} change ${p.id} by ${p.by}, deadline ${p.deadline} (${isDue(p) ? 'passed: rolling back' : `in ${Math.ceil(left / 1000)} s`})`);
    out.push(`          unless \`nodewall confirm\` runs first, rolls back to ${target}; ${dog}`);
  }
  if (last !== undefined) out.push(`last confirmation: ${last.outcome} ${last.id} (${last.origin}) at ${last.at} by ${last.by}${last.detail === undefined ? '' : `: ${last.detail}`}`);
  return out;
}

/** The commit-confirm part of status (text lines and JSON), read from the state dir; never throws. */
export async function confirmStatus(stateDir: string): Promise<{ lines: string[]; json: Record<string, unknown> }> {
  const r = await readPending(stateDir);
  const outcomes = await readOutcomes(stateDir);
  const last = outcomes[outcomes.length - 1];
  const pending = r.kind === 'ok' ? r.value : undefined;
  const lines = pendingLines(pending, r.kind === 'corrupt' ? r.reason : undefined, last);
  const json = {
    pendingConfirmation: pending === undefined
      ? (r.kind === 'corrupt' ? { unreadable: r.reason } : null)
      : {
        id: pending.id, origin: pending.origin, by: pending.by, createdAt: pending.createdAt, deadline: pending.deadline,
        secondsLeft: Math.ceil(msLeft(pending) / 1000), rollsBackTo: pending.previous.kind, watchdogPid: pending.watchdogPid ?? null,
        ...(pending.inputHash === undefined ? {} : { inputHash: pending.inputHash }),
      },
    lastConfirmation: last ?? null,
  };
  return { lines, json };
}

export const confirmCommand: CommandModule<object, ConfirmArgs> = {
  command: 'confirm',
  describe: 'Keep the ruleset on probation (apply --confirm-within, or the agent with rollout.confirm: manual); after the deadline it is rolled back instead',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', describe: 'config file (for stateDir and nft; default /etc/nodewall/nodewall.yaml if present)' })
      .option('state-dir', { type: 'string', describe: 'state directory (overrides the config)' })
      .option('output', { choices: ['text', 'json'] as const, default: 'text' as const }) as unknown as Argv<ConfirmArgs>,
  handler: async (argv) => {
    const config = await loadConfig(argv.config);
    const stateDir = argv.stateDir ?? config.stateDir;
    const r = await confirmPending(stateDir, { nftPath: config.nft.path, table: config.nft.table, exec: { timeoutMs: config.nft.timeoutSeconds * 1000 } }, cliActor());
    const say = (text: string) => process.stdout.write(`${escapeUnprintable(text)}\n`);
    if (argv.output === 'json') {
      const rec = 'record' in r ? r.record : undefined;
      const rb = 'rollback' in r ? r.rollback : undefined;
      process.stdout.write(`${JSON.stringify({
        stateDir, result: r.kind,
        ...(rec === undefined ? {} : { id: rec.id, origin: rec.origin, deadline: rec.deadline }),
        ...('last' in r && r.last !== undefined ? { last: r.last } : {}),
        ...(r.kind === 'corrupt' ? { reason: r.reason } : {}),
        ...(rb === undefined ? {} : { rollback: rb.kind, ...(rb.kind === 'failed' ? { error: rb.error.message } : {}) }),
      })}\n`);
    }
    switch (r.kind) {
      case 'confirmed':
        if (argv.output === 'text') say(`confirmed ${r.record.origin} change ${r.record.id} (deadline was ${r.record.deadline}): the ruleset in force stays`);
        process.exitCode = confirmExit.confirmed;
        return;
      case 'none':
        if (argv.output === 'text') say(`nothing to confirm${r.last === undefined ? '' : `; last: ${r.last.outcome} ${r.last.id} at ${r.last.at} by ${r.last.by}`}`);
        process.exitCode = confirmExit.nothing;
        return;
      case 'corrupt':
        process.stderr.write(`nodewall: the pending confirmation in ${stateDir} cannot be read (${escapeUnprintable(r.reason)}): not confirmed; it is rolled back at its deadline\n`);
        process.exitCode = confirmExit.nothing;
        return;
      case 'busy':
      case 'too-late': {
        const rb = 'rollback' in r ? r.rollback : undefined;
        const what = rb?.kind === 'failed' ? `the rollback failed (${rb.error.message}); it is retried by the watchdog and the agent` : 'the previous ruleset is (being) restored';
        process.stderr.write(`nodewall: too late: the deadline${'record' in r && r.record !== undefined ? ` ${r.record.deadline}` : ''} has passed; ${escapeUnprintable(what)}\n`);
        process.exitCode = confirmExit.tooLate;
        return;
      }
    }
  },
};

interface WatchdogArgs {
  stateDir: string;
  id: string;
  nftPath: string;
  table: string;
  timeoutMs: number;
}

export const confirmWatchdogCommand: CommandModule<object, WatchdogArgs> = {
  command: 'confirm-watchdog',
  describe: false,
  builder: (y: Argv) =>
    y
      .option('state-dir', { type: 'string', demandOption: true })
      .option('id', { type: 'string', demandOption: true })
      .option('nft-path', { type: 'string', demandOption: true })
      .option('table', { type: 'string', demandOption: true })
      .option('timeout-ms', { type: 'number', default: 120_000 }) as unknown as Argv<WatchdogArgs>,
  handler: async (argv) => {
    if (!/^[0-9a-f]{16}$/.test(argv.id)) throw new UsageError('--id: not a pending confirmation id');
    // No terminal, no session leader to follow: a hangup or ^C of the starter's terminal is not ours.
    process.on('SIGHUP', () => undefined);
    process.on('SIGINT', () => undefined);
    const end = await runWatchdog(argv, (pid) => {
      process.stdout.write(`armed ${pid}\n`);
      // Nothing holds the starter's pipe open: it may exit or be killed at once.
      process.stdout.end();
    });
    process.exitCode = end === 'gave-up' || end === 'not-armed' ? exitCodes.failure : exitCodes.ok;
  },
};
