// Errors the agent cannot recover from end the process with a non-zero exit,
// so that systemd (Restart=) restarts it and `systemctl status` shows the
// failure. A process that lingers after its start failed applies nothing,
// watches nothing and writes no status, while its supervisor believes all is
// well: the worst outcome. Bad input never gets here (it is reported and the
// last good version stays); only bugs and broken systems do.

import type { Logger } from 'pino';

/** Exit code of a fatal error (systemd: failure, restarted with Restart=on-failure or always). */
export const fatalExitCode = 1;

export type Exit = (code: number) => void;

/** Log at fatal level (flushed by pino's exit hook) and exit non-zero. */
export function dieOf(log: Logger, err: unknown, msg: string, exit: Exit = (c) => process.exit(c)): void {
  try {
    log.fatal({ err }, msg);
  } finally {
    exit(fatalExitCode);
  }
}

/**
 * Uncaught exceptions and unhandled rejections are bugs or broken systems:
 * log and exit (never carry on in an unknown state). Returns a function that
 * removes the handlers (tests).
 */
export function exitOnUncaught(log: Logger, exit?: Exit): () => void {
  const onException = (err: unknown): void => dieOf(log, err, 'crash (uncaught exception): exiting for a restart', exit);
  const onRejection = (err: unknown): void => dieOf(log, err, 'crash (unhandled rejection): exiting for a restart', exit);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

/**
 * Run the agent's start; a rejection ends the process (it would otherwise stay
 * alive on its timers and watchers, doing nothing).
 */
export async function startOrDie(start: () => Promise<void>, log: Logger, exit?: Exit): Promise<void> {
  try {
    await start();
  } catch (err) {
    dieOf(log, err, 'agent could not start: exiting for a restart', exit);
  }
}
