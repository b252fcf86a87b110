// Starting a detached nodewall CLI process (a watchdog) that must say it is
// armed before its starter goes on. Detached: a session of its own, so the
// SSH session's hangup and the terminal's process group do not reach it; no
// stdio stays open to the starter once it has said so.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The CLI entry built next to this module (dist/src/bin/nodewall.js), not whatever script started this process. */
export function cliEntry(): string {
  return fileURLToPath(new URL('../bin/nodewall.js', import.meta.url));
}

/** The detached process could not be started or did not say it was armed: the caller must not go on. */
export class DetachedStartError extends Error {
  override readonly name = 'DetachedStartError';
}

export interface DetachedStart {
  /** What it is, for error messages ("the confirm watchdog"). */
  readonly what: string;
  /** CLI arguments after the entry script. */
  readonly args: readonly string[];
  /** Bound on the wait for its `armed PID` line. */
  readonly waitMs: number;
  /** Where it logs, named in the error when it exits early. */
  readonly logHint?: string;
  /** The script to run (default: cliEntry()); tests give a stand-in. */
  readonly entry?: string;
}

/**
 * Start `entry args...` detached and wait (bounded) for the line `armed PID` on its stdout.
 * Resolves with that pid; rejects with DetachedStartError (and kills the child) otherwise.
 */
export function startDetached(o: DetachedStart): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [o.entry ?? cliEntry(), ...o.args], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let settled = false;
    const finish = (err: Error | undefined, pid?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.destroy();
      child.unref();
      if (err !== undefined) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(err);
      } else resolve(pid ?? -1);
    };
    const timer = setTimeout(() => finish(new DetachedStartError(`${o.what} did not arm within ${o.waitMs} ms`)), o.waitMs);
    child.once('error', (err) => finish(new DetachedStartError(`cannot start ${o.what}: ${err.message}`, { cause: err })));
    child.once('exit', (code, signal) => finish(new DetachedStartError(`${o.what} exited (${signal ?? code}) before arming${o.logHint === undefined ? '' : `; see ${o.logHint}`}`)));
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /^armed (\d+)$/m.exec(out);
      if (m !== null) finish(undefined, Number(m[1]));
      else if (out.length > 4096) finish(new DetachedStartError(`${o.what} said something unexpected`));
    });
  });
}
