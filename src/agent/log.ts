// The agent's root logger: pino JSON on stdout. Under journald (JOURNAL_STREAM
// set) every line gets a syslog priority prefix "<N>", which journald strips
// and uses as the priority, so `journalctl -p warning -u nodewall` works
// (toolchain §3.6). Built once, passed down as children.

import { pino, type DestinationStream, type Logger } from 'pino';

const priority: Readonly<Record<number, number>> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LoggerOptions {
  readonly level?: LogLevel | undefined;
  /** Defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Defaults to stdout (asynchronous SonicBoom, flushed on exit). */
  readonly destination?: DestinationStream;
}

export function journalPrefix(line: string): string {
  const level = Number(/"level":(\d+)/.exec(line)?.[1]);
  return `<${priority[level] ?? 6}>${line}`;
}

export function createAgentLogger(opts: LoggerOptions = {}): Logger {
  const env = opts.env ?? process.env;
  const underJournald = env['JOURNAL_STREAM'] !== undefined && env['JOURNAL_STREAM'] !== '';
  const options = {
    level: opts.level ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    // journald records _PID and _HOSTNAME itself.
    ...(underJournald ? { base: null, hooks: { streamWrite: journalPrefix } } : {}),
  };
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}
