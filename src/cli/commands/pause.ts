// `nodewall pause --for 15m [--reason TEXT]` and `nodewall resume`: the
// break-glass. The CLI only writes (or removes) the durable pause request
// (agent/pause.ts); the running agent renders its ruleset in audit mode until
// the deadline and re-arms enforcement by itself, so nothing depends on this
// process (or the SSH session it runs in) staying alive.
//
// A pause needs a running agent: without one nothing would re-arm enforcement
// at the deadline, so the CLI refuses instead of loading an audit ruleset that
// nobody would take back.

import { startDetached } from '../../agent/detached-cli.js';
import { randomBytes } from 'node:crypto';
import { rearmKernel, runWatchdog } from '../../agent/pause-watchdog.js';
import type { Argv, CommandModule } from 'yargs';
import { checkReason, currentRequester, maxPauseMs, parsePauseDuration, PauseInputError, readPause, removePause, requesterText, writePause, type PauseRecord } from '../../agent/pause.js';
import { pidAlive, readStatus, type AgentStatus } from '../../agent/status-file.js';
import { loadConfig } from '../../inventory/config.js';
import { exitCodes, UsageError } from '../options.js';

interface PauseArgs {
  config?: string | undefined;
  stateDir?: string | undefined;
  for: string;
  reason?: string | undefined;
  waitSeconds: number;
}

type ResumeArgs = Omit<PauseArgs, 'for' | 'reason'>;

export class PauseRefusedError extends Error {
  override readonly name = 'PauseRefusedError';
}

async function stateDirOf(argv: { config?: string | undefined; stateDir?: string | undefined }): Promise<string> {
  return argv.stateDir ?? (await loadConfig(argv.config)).stateDir;
}

/** The running agent's status, or a clear refusal. */
async function runningAgent(stateDir: string): Promise<AgentStatus> {
  const s = await readStatus(stateDir);
  if (s === undefined || s.stopped === true || !pidAlive(s.pid)) {
    throw new PauseRefusedError(
      `no running nodewall agent (status in ${stateDir}): a pause needs the agent, which loads the audit ruleset and re-arms enforcement at the deadline. ` +
        'Start it (systemctl start nodewall), or to stop filtering by hand without a deadline see "Recover a node" in the README',
    );
  }
  if ('noConfig' in s) throw new PauseRefusedError('the agent runs without a usable config and enforces nothing: nothing to pause');
  return s;
}

async function waitStatus(stateDir: string, seconds: number, done: (s: AgentStatus) => boolean): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const s = await readStatus(stateDir).catch(() => undefined);
    if (s !== undefined && !('noConfig' in s) && done(s)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Remove the pause request `id` if it is still the one in force (another `pause` may have replaced it). */
async function withdrawIfOurs(stateDir: string, id: string): Promise<void> {
  const cur = await readPause(stateDir, Date.now());
  if (cur.kind === 'active' && cur.record.id === id) await removePause(stateDir);
}

const common = (y: Argv) =>
  y
    .option('config', { type: 'string', describe: 'config file (for stateDir)' })
    .option('state-dir', { type: 'string', describe: 'state directory (overrides the config)' })
    .option('wait-seconds', { type: 'number', default: 30, describe: 'how long to wait for the agent to confirm' });

export const pauseCommand: CommandModule<object, PauseArgs> = {
  command: 'pause',
  describe: 'Break-glass: switch this node to audit (nothing dropped, everything recorded) for a bounded time; the agent re-arms by itself',
  builder: (y: Argv) =>
    common(y)
      .option('for', { type: 'string', demandOption: true, describe: 'duration, e.g. 15m, 90s, 1h30m (1s to 24h)' })
      .option('reason', { type: 'string', describe: 'why (shown by status and logged)' }) as unknown as Argv<PauseArgs>,
  handler: async (argv) => {
    let ms: number;
    let reason: string;
    try {
      ms = parsePauseDuration(String(argv.for));
      reason = checkReason(argv.reason ?? '');
    } catch (err) {
      if (err instanceof PauseInputError) throw new UsageError(err.message, { cause: err });
      throw err;
    }
    if (!Number.isFinite(argv.waitSeconds) || argv.waitSeconds < 1 || argv.waitSeconds > 600) throw new UsageError('--wait-seconds: from 1 to 600');
    const config = await loadConfig(argv.config);
    const stateDir = argv.stateDir ?? config.stateDir;
    const status = await runningAgent(stateDir);
    if (status.mode !== 'enforce') {
      process.stderr.write(`nodewall: the agent runs in mode ${status.mode}: nothing is dropped, nothing to pause\n`);
      process.exitCode = exitCodes.invalidInput;
      return;
    }
    const now = Date.now();
    const rec: PauseRecord = {
      version: 1,
      id: randomBytes(8).toString('hex'),
      pausedAt: new Date(now).toISOString(),
      until: new Date(Math.min(now + ms, now + maxPauseMs)).toISOString(),
      reason,
      requestedBy: currentRequester(),
    };
    if (status.pause !== undefined) process.stdout.write(`replacing the pause until ${status.pause.until} (asked by ${requesterText(status.pause.requestedBy)})\n`);
    await writePause(stateDir, rec);
    const confirmed = await waitStatus(stateDir, argv.waitSeconds, (s) => s.pause?.id === rec.id);
    if (!confirmed) {
      // Never leave a pause behind that nobody saw start.
      await withdrawIfOurs(stateDir, rec.id);
      throw new PauseRefusedError(`the agent did not confirm the pause within ${argv.waitSeconds}s: pause withdrawn, enforcement stays (check \`nodewall status\` and the agent's log)`);
    }
    // Backstop for an agent that dies during the pause and is not restarted (pause-watchdog.ts). A pause
    // without it could outlive its deadline: withdrawn (enforcement comes back) when it does not arm.
    try {
      await startDetached({ what: 'the pause watchdog', args: watchdogArgs({ stateDir, nftPath: config.nft.path, table: config.nft.table, id: rec.id, config: config.file }), waitMs: 15_000 });
    } catch (err) {
      await withdrawIfOurs(stateDir, rec.id);
      throw new PauseRefusedError(`${err instanceof Error ? err.message : String(err)}: pause withdrawn, enforcement is back`, { cause: err });
    }
    process.stdout.write(
      `PAUSED until ${rec.until}: the agent loaded its ruleset in audit mode (nothing dropped, every would-drop recorded); ` +
        `enforcement comes back by itself at that time. \`nodewall resume\` ends it early.\n`,
    );
    process.exitCode = exitCodes.ok;
  },
};

function watchdogArgs(o: { stateDir: string; nftPath: string; table: string; id: string; config: string | undefined }): string[] {
  return ['pause-watchdog', '--state-dir', o.stateDir, '--nft-path', o.nftPath, '--table', o.table, '--id', o.id, ...(o.config === undefined ? [] : ['--config', o.config])];
}

interface WatchdogArgs {
  config?: string | undefined;
  stateDir: string;
  nftPath: string;
  table: string;
  id: string;
}

/** Hidden: started by `pause`; see agent/pause-watchdog.ts. */
export const pauseWatchdogCommand: CommandModule<object, WatchdogArgs> = {
  command: 'pause-watchdog',
  describe: false,
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string' })
      .option('state-dir', { type: 'string', demandOption: true })
      .option('nft-path', { type: 'string', demandOption: true })
      .option('table', { type: 'string', demandOption: true })
      .option('id', { type: 'string', demandOption: true }) as unknown as Argv<WatchdogArgs>,
  handler: async (argv) => {
    // No terminal, no session leader to follow: a hangup or ^C of the starter's terminal is not ours.
    process.on('SIGHUP', () => undefined);
    process.on('SIGINT', () => undefined);
    // The config is read again at the end: the mode to re-arm is the one configured then.
    const outcome = await runWatchdog({
      stateDir: argv.stateDir, nftPath: argv.nftPath, table: argv.table, id: argv.id, configMode: async () => (await loadConfig(argv.config)).mode,
      maxWaitMs: maxPauseMs + 60_000,
    }, (pid) => {
      process.stdout.write(`armed ${pid}\n`);
      // Nothing holds the starter's pipe open: it may exit or be killed at once.
      process.stdout.end();
    });
    process.exitCode = outcome === 'rearmed' || outcome === 'agent-running' || outcome === 'replaced' || outcome === 'not-audit' ? exitCodes.ok : exitCodes.failure;
  },
};

export const resumeCommand: CommandModule<object, ResumeArgs> = {
  command: 'resume',
  describe: 'End a break-glass pause early: enforcement is back',
  builder: (y: Argv) => common(y) as unknown as Argv<ResumeArgs>,
  handler: async (argv) => {
    const stateDir = await stateDirOf(argv);
    const cur = await readPause(stateDir, Date.now());
    await removePause(stateDir);
    const s = await readStatus(stateDir).catch(() => undefined);
    const running = s !== undefined && s.stopped !== true && pidAlive(s.pid);
    if (cur.kind !== 'active' && (s === undefined || 'noConfig' in s || s.pause === undefined)) {
      process.stdout.write('not paused\n');
      process.exitCode = exitCodes.ok;
      return;
    }
    if (!running) {
      // No agent to re-arm: turn the audit ruleset it left into drops now (pause-watchdog.ts).
      const config = await loadConfig(argv.config).catch(() => undefined);
      const rearmed = config?.mode === 'enforce' && (await rearmKernel(config.nft.path, config.nft.table));
      process.stdout.write(`pause removed; no agent is running${rearmed ? ': the audit ruleset it left was re-armed (drops again)' : ''}\n`);
      process.exitCode = exitCodes.ok;
      return;
    }
    if (!(await waitStatus(stateDir, argv.waitSeconds, (x) => x.pause === undefined))) {
      throw new PauseRefusedError(`pause file removed but the agent did not confirm within ${argv.waitSeconds}s (check \`nodewall status\`)`);
    }
    process.stdout.write('resumed: enforcement is back\n');
    process.exitCode = exitCodes.ok;
  },
};
