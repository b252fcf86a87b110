import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { formatProblem, InputError } from '../api/problem.js';
import { agentCommand } from './commands/agent.js';
import { applyCommand } from './commands/apply.js';
import { auditCommand } from './commands/audit.js';
import { confirmCommand, confirmWatchdogCommand } from './commands/confirm.js';
import { dropsCommand } from './commands/drops.js';
import { listCommand } from './commands/list.js';
import { pauseCommand, pauseWatchdogCommand, resumeCommand } from './commands/pause.js';
import { renderCommand } from './commands/render.js';
import { statusCommand } from './commands/status.js';
import { traceCommand } from './commands/trace.js';
import { validateCommand } from './commands/validate.js';
import { exitCodes, UsageError } from './options.js';
import { packageVersion } from './version.js';

export function buildCli(argv: readonly string[]) {
  return yargs([...argv])
    .scriptName('nodewall')
    .command(validateCommand)
    .command(traceCommand)
    .command(renderCommand)
    .command(applyCommand)
    .command(listCommand)
    .command(agentCommand)
    .command(auditCommand)
    .command(statusCommand)
    .command(confirmCommand)
    .command(confirmWatchdogCommand)
    .command(pauseCommand)
    .command(resumeCommand)
    .command(pauseWatchdogCommand)
    .command(dropsCommand)
    // Shell completion: `nodewall completion >> ~/.bashrc` (bash; zsh with bashcompinit).
    .completion('completion', 'Print a shell completion script (bash, zsh): nodewall completion >> ~/.bashrc')
    .demandCommand(1, 'a command is required')
    .strict()
    .help()
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns ?? 110));
}

/** Maps failures to the documented exit codes: 1 invalid input, 2 usage, 3 anything else. */
export function reportFailure(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`nodewall: ${err.message}\n`);
    return exitCodes.usage;
  }
  if (err instanceof InputError) {
    process.stderr.write(`nodewall: ${err.message}\n`);
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return exitCodes.invalidInput;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`nodewall: ${e.message}\n`);
  if (e.cause instanceof Error) process.stderr.write(`  caused by: ${e.cause.message}\n`);
  return exitCodes.failure;
}

export async function main(): Promise<void> {
  try {
    await buildCli(hideBin(process.argv))
      .fail((msg, err) => {
        // yargs calls this for its own validation (msg) and for errors thrown by handlers (err).
        if (err) throw err;
        throw new UsageError(`${msg} (run nodewall --help)`);
      })
      .parseAsync();
  } catch (err) {
    process.exitCode = reportFailure(err);
  }
}
