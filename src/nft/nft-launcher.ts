// A small persistent launcher for nft, so a large agent does not fork itself for every nft run.
//
// Node 20's child_process.spawn forks the calling process: at 450 MB RSS that is 2-7 ms of agent CPU and
// main-thread time per nft run (page tables, then copy-on-write faults until the child execs). The launcher
// is a `/bin/sh -s` started while the agent is still small; it runs each nft command for us, so the fork
// happens in a 1 MB shell instead.
//
// Framing: nothing nft prints or reads passes through the launcher's pipes. The script goes to a file in a
// private 0700 directory, nft's stdout and stderr go to files beside it, and the launcher only answers
// "S <id> <pid>" (started), "R <id> <status>" (finished) or "E <id>" (could not create the output files) on
// its stdout. Every argument is single-quoted, so no byte of a path, argument or script can become shell
// syntax, and hostile nft output cannot forge an answer. Anything else on that channel is a malformed reply.
//
// Fail safe: if the launcher dies, hangs (no "started" answer in time) or answers something malformed,
// its process group is killed, the nft it may have started is waited for (a killed nft cannot commit
// later), and the command runs again by a direct spawn, so nothing is reported as loaded that did not
// load and no error is lost; a new launcher is started on a later call, with exponential backoff. An nft
// that runs past its timeout is killed with the launcher (same error as a direct spawn), and a fresh
// launcher takes the next call. A busy launcher (two calls at once) sends the second to a direct spawn,
// so calls never wait for each other (as before). When the agent dies, even by SIGKILL, a watchdog in the
// launcher's process group sees its pipe close, removes the directory and kills the group.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { effectiveTimeoutMs, maxNftOutputBytes, netnsArgv, setNftRunner, settleNftRun, spawnNft, type NftExecOptions, type NftOutput, type NftRunner } from './nft-exec.js';

/** The part of a pino logger the launcher uses. */
export interface LauncherLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface NftLauncherOptions {
  /** The shell that becomes the launcher. Default /bin/sh. */
  readonly shell?: string;
  /** Where the private directory is made. Default os.tmpdir() (TMPDIR). */
  readonly parentDir?: string;
  readonly log?: LauncherLog;
  /** A launcher that has not said "started" this long after a command counts as hung (at most half the nft timeout). Default 5 s. */
  readonly startAckMs?: number;
  /**
   * Launcher shells kept (default 2): a drift check's listing and an apply often run at once, and a call that
   * finds every shell busy spawns directly.
   */
  readonly shells?: number;
  /** Backoff before a new launcher after a failed one: first, doubled up to max. Default 1 s .. 60 s. */
  readonly backoffMs?: { readonly first: number; readonly max: number };
}

/** Counters, for tests, the bench and logs. */
export interface NftLauncherStats {
  /** Commands the launcher ran to the end (any exit status). */
  viaLauncher: number;
  /** Commands that went to a direct spawn because no launcher was ready or it was busy. */
  direct: number;
  /** Commands run again by a direct spawn after the launcher failed during them. */
  fallbacks: number;
  /** Launcher processes started. */
  starts: number;
  /** Launcher failures (died, hung, malformed reply, could not start). */
  failures: number;
}

/** Single-quoted for sh: no byte inside can be syntax (a `'` becomes `'\''`). */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** One answer line of the launcher; undefined: malformed. */
export type LauncherReply = { kind: 'S'; id: number; pid: number } | { kind: 'R'; id: number; status: number } | { kind: 'E'; id: number };

export function parseReply(line: string): LauncherReply | undefined {
  let m = /^S (\d{1,15}) (\d{1,10})$/.exec(line);
  if (m !== null) return { kind: 'S', id: Number(m[1]), pid: Number(m[2]) };
  m = /^R (\d{1,15}) (\d{1,3})$/.exec(line);
  if (m !== null) return { kind: 'R', id: Number(m[1]), status: Number(m[2]) };
  m = /^E (\d{1,15})$/.exec(line);
  if (m !== null) return { kind: 'E', id: Number(m[1]) };
  return undefined;
}

/** Returned by AnswerLines.push when the text without a newline is longer than any answer. */
export const tooLong: readonly string[] = Object.freeze([]);

/** Splits the launcher's answer stream into lines, whatever the chunks it arrives in. */
export class AnswerLines {
  #rest = '';

  /** Complete lines so far; tooLong when more than 200 characters came without a newline (no answer is that long). */
  push(chunk: string): readonly string[] {
    const parts = (this.#rest + chunk).split('\n');
    this.#rest = parts.pop() ?? '';
    if (parts.length === 0 && this.#rest.length > 200) return tooLong;
    return parts;
  }

  /** Text after the last newline. */
  get rest(): string {
    return this.#rest;
  }
}

/** The shell text that runs one command: argv quoted, script from `inFile` (or nothing), output to files. */
export function commandLine(id: number, argv: readonly string[], dir: string, inFile: string | undefined): string {
  const out = shellQuote(join(dir, 'out'));
  const err = shellQuote(join(dir, 'err'));
  const input = inFile === undefined ? '/dev/null' : shellQuote(inFile);
  // `wait` gives nft's status, 128+N when a signal N ended it (as the shell reports it).
  return `if : >${out} && : >${err}; then ${argv.map(shellQuote).join(' ')} <${input} >${out} 2>${err} & echo "S ${id} $!"; wait $!; echo "R ${id} $?"; else echo 'E ${id}'; fi\n`;
}

/** A shell's status as the exit code and signal a direct spawn reports: 128+N is signal N. */
export function statusToExit(status: number): { code: number | null; signal: string | null } {
  if (status > 128) {
    const n = status - 128;
    const name = Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
    if (name !== undefined) return { code: null, signal: name };
  }
  return { code: status, signal: null };
}

/** True once `pid` is gone or a zombie: it can no longer commit anything. */
function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The state follows the last ')' (the command name may contain anything).
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Up to 10 s for a killed nft to be gone (SIGKILL is delivered at once; a commit in the kernel finishes first). */
async function waitGone(pid: number | undefined): Promise<boolean> {
  if (pid === undefined) return true;
  for (let i = 0; i < 2000; i++) {
    if (processGone(pid)) return true;
    await sleep(5);
  }
  return false;
}

type Failure = 'died' | 'hung' | 'malformed' | 'files';

interface Pending {
  readonly id: number;
  readonly nftPath: string;
  readonly args: readonly string[];
  readonly opts: NftExecOptions;
  readonly inFile: string | undefined;
  readonly resolve: (o: NftOutput) => void;
  readonly reject: (e: unknown) => void;
  /** nft's pid once the launcher said it started it. */
  pid: number | undefined;
  timer: NodeJS.Timeout | undefined;
  ackTimer: NodeJS.Timeout | undefined;
}

/** One launcher shell process and its private directory. */
interface Shell {
  readonly child: ChildProcess;
  readonly pgid: number | undefined;
  readonly dir: string;
  readonly answers: AnswerLines;
  pending: Pending | undefined;
  dead: boolean;
  /** Last lines the shell wrote on its stderr (diagnostics only). */
  stderr: string;
}

export class NftLauncher implements NftRunner {
  readonly stats: NftLauncherStats = { viaLauncher: 0, direct: 0, fallbacks: 0, starts: 0, failures: 0 };
  readonly #opts: NftLauncherOptions;
  /** One slot per launcher shell; undefined: none running (not started yet, or gone). */
  readonly #shells: (Shell | undefined)[];
  #nextId = 1;
  #backoffMs: number;
  #nextStartAt = 0;
  #closed = false;

  constructor(opts: NftLauncherOptions = {}) {
    this.#opts = opts;
    this.#backoffMs = opts.backoffMs?.first ?? 1000;
    // Started now, while the process is small: this fork is the cheap one.
    this.#shells = Array.from({ length: Math.max(1, opts.shells ?? 2) }, () => this.#start());
  }

  /** pid of the launcher shell (tests). */
  get pid(): number | undefined {
    const s = this.#shells[0];
    return s?.dead === false ? s.child.pid : undefined;
  }

  /** Its private directory (tests). */
  get dir(): string | undefined {
    const s = this.#shells[0];
    return s?.dead === false ? s.dir : undefined;
  }

  run(nftPath: string, args: readonly string[], opts: NftExecOptions = {}): Promise<NftOutput> {
    const argv = netnsArgv(nftPath, args, opts.netns);
    // A NUL cannot be in an argument: the direct spawn reports it exactly as before.
    const shell = argv.some((a) => a.includes('\0')) ? undefined : this.#ready();
    if (shell === undefined) {
      this.stats.direct++;
      return spawnNft(nftPath, args, opts);
    }
    return new Promise((resolve, reject) => this.#send(shell, argv, nftPath, args, opts, resolve, reject));
  }

  /**
   * Stop the launcher (its group is killed, its directory removed); later calls spawn directly, and so does
   * a call in flight (its nft is killed with the group, so it runs again, as when the launcher dies).
   */
  close(): void {
    this.#closed = true;
    for (const [i, s] of this.#shells.entries()) {
      this.#shells[i] = undefined;
      if (s === undefined) continue;
      if (s.pending !== undefined) void this.#fallBack(s, s.pending, 'died', 'the launcher was closed');
      else this.#kill(s);
    }
  }

  /** An idle live launcher, starting one if none runs and the backoff allows; undefined: spawn directly. */
  #ready(): Shell | undefined {
    if (this.#closed) return undefined;
    const idle = this.#shells.find((s) => s !== undefined && !s.dead && s.pending === undefined);
    if (idle !== undefined) return idle;
    const free = this.#shells.findIndex((s) => s === undefined || s.dead);
    if (free < 0 || Date.now() < this.#nextStartAt) return undefined;
    const s = this.#start();
    this.#shells[free] = s;
    return s?.dead === false ? s : undefined;
  }

  #start(): Shell | undefined {
    let dir: string;
    let child: ChildProcess;
    try {
      dir = mkdtempSync(join(this.#opts.parentDir ?? tmpdir(), 'nodewall-nft-'));
    } catch (err) {
      this.#failed(undefined, 'died', `cannot make its directory: ${(err as Error).message}`);
      return undefined;
    }
    try {
      // detached: its own process group, so a timeout kills the shell, nft and the watchdog at once.
      child = spawn(this.#opts.shell ?? '/bin/sh', ['-s'], { detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      this.#failed(undefined, 'died', `cannot start ${this.#opts.shell ?? '/bin/sh'}: ${(err as Error).message}`);
      return undefined;
    }
    this.stats.starts++;
    const s: Shell = { child, pgid: child.pid, dir, answers: new AnswerLines(), pending: undefined, dead: false, stderr: '' };
    // Not a reason to keep the process alive; a pending command's timer is.
    child.unref();
    for (const stream of child.stdio) (stream as { unref?: () => void } | null)?.unref?.();
    child.stdout?.setEncoding('latin1');
    child.stdout?.on('data', (chunk: string) => this.#onData(s, chunk));
    child.stdout?.on('close', () => this.#onGone(s, 'its answer pipe closed'));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      s.stderr = (s.stderr + chunk).slice(-2000);
    });
    child.on('error', (err) => this.#onGone(s, `cannot start ${this.#opts.shell ?? '/bin/sh'}: ${err.message}`));
    child.stdin?.on('error', () => {
      /* a dead launcher: its stdout closes too, and that decides */
    });
    child.stdio[3]?.on('error', () => undefined);
    // The watchdog holds fd 3, which only this process writes to (never): when this process is gone, even
    // by SIGKILL, its read ends, and it removes the directory and kills the group (any nft still running).
    // The shell closes fd 3 so nft does not inherit it. ulimit: nft output files bounded (512-byte blocks;
    // 1024 in some shells, the size check after the run is exact).
    const q = shellQuote(dir);
    child.stdin?.write(
      `ulimit -f ${(maxNftOutputBytes / 512) | 0} 2>/dev/null\n` +
        `( read -r _ <&3; rm -rf ${q}; kill -9 0 ) </dev/null >/dev/null 2>&1 &\n` +
        'exec 3<&-\n',
    );
    return s;
  }

  #send(s: Shell, argv: readonly string[], nftPath: string, args: readonly string[], opts: NftExecOptions, resolve: (o: NftOutput) => void, reject: (e: unknown) => void): void {
    const id = this.#nextId++;
    let inFile: string | undefined;
    if (opts.stdin !== undefined) {
      inFile = join(s.dir, 'in');
      try {
        writeFileSync(inFile, opts.stdin, { mode: 0o600 });
      } catch (err) {
        // A full or vanished temp directory: this launcher cannot carry scripts.
        this.stats.fallbacks++;
        this.#failed(s, 'files', `cannot write the script file: ${(err as Error).message}`);
        spawnNft(nftPath, args, opts).then(resolve, reject);
        return;
      }
    }
    const p: Pending = { id, nftPath, args, opts, inFile, resolve, reject, pid: undefined, timer: undefined, ackTimer: undefined };
    s.pending = p;
    const timeoutMs = effectiveTimeoutMs(opts.timeoutMs);
    p.timer = setTimeout(() => void this.#onTimeout(s, p), timeoutMs);
    // No "started" in time: a hung launcher. setImmediate lets an answer that already arrived (the agent's
    // own event loop may have been busy) be read first.
    const ackMs = Math.min(this.#opts.startAckMs ?? 5000, timeoutMs / 2);
    p.ackTimer = setTimeout(() => setImmediate(() => {
      if (s.pending === p && p.pid === undefined) void this.#fallBack(s, p, 'hung', `no answer ${ackMs} ms after the command`);
    }), ackMs);
    s.child.stdin?.write(commandLine(id, argv, s.dir, inFile));
  }

  #onData(s: Shell, chunk: string): void {
    // A shell we already gave up on (killed at a timeout, or failed): what it still says is moot.
    if (s.dead) return;
    const lines = s.answers.push(chunk);
    for (const line of lines) {
      this.#onLine(s, line);
      if (s.dead) return;
    }
    if (lines === tooLong) this.#onBad(s, s.answers.rest);
  }

  #onLine(s: Shell, line: string): void {
    const r = parseReply(line);
    const p = s.pending;
    // An answer for no command, another command, or "finished" before "started" is not the launcher's protocol.
    if (r === undefined || p === undefined || r.id !== p.id || (r.kind === 'R' && p.pid === undefined)) {
      this.#onBad(s, line);
      return;
    }
    if (r.kind === 'S') {
      if (p.pid !== undefined) return this.#onBad(s, line);
      p.pid = r.pid;
      clearTimeout(p.ackTimer);
      return;
    }
    if (r.kind === 'E') {
      // The shell could not create the output files; nft did not run.
      void this.#fallBack(s, p, 'files', 'cannot create the output files');
      return;
    }
    this.#finish(s, p, r.status);
  }

  #onBad(s: Shell, text: string): void {
    const p = s.pending;
    const what = `malformed answer ${JSON.stringify(text.slice(0, 100))}`;
    if (p !== undefined) void this.#fallBack(s, p, 'malformed', what);
    else this.#failed(s, 'malformed', what);
  }

  #onGone(s: Shell, why: string): void {
    if (s.dead) return;
    const p = s.pending;
    if (p !== undefined) void this.#fallBack(s, p, 'died', why);
    else this.#failed(s, 'died', why);
  }

  #finish(s: Shell, p: Pending, status: number): void {
    this.#clear(s, p);
    this.stats.viaLauncher++;
    // 126/127: the shell could not execute the program (missing, not executable); nft itself never
    // exits so. The direct spawn reports that exactly as before (spawn error with its hint).
    if (status === 126 || status === 127) {
      this.stats.fallbacks++;
      spawnNft(p.nftPath, p.args, p.opts).then(p.resolve, p.reject);
      return;
    }
    this.#backoffMs = this.#opts.backoffMs?.first ?? 1000;
    let stdout = '';
    let stderr = '';
    let killedFor: 'output' | undefined;
    const fds: number[] = [];
    try {
      for (const f of ['out', 'err']) fds.push(openSync(join(s.dir, f), 'r'));
      const [outFd, errFd] = fds as [number, number];
      const [outBytes, errBytes] = [fstatSync(outFd).size, fstatSync(errFd).size];
      // The shell's `ulimit -f` stops nft with SIGXFSZ at maxNftOutputBytes per file; together they may not exceed it either.
      if (outBytes + errBytes > maxNftOutputBytes || status === 128 + osConstants.signals.SIGXFSZ) killedFor = 'output';
      else {
        stdout = readFileSync(outFd).toString('utf8');
        stderr = readFileSync(errFd).toString('utf8');
      }
      // Removed, not left for the shell to truncate: on ext4 a truncated-and-rewritten file is flushed on
      // close (auto_da_alloc), which costs more than a new file.
      for (const f of ['out', 'err']) unlinkSync(join(s.dir, f));
    } catch (err) {
      // nft ran, but its output is gone: the status alone cannot be trusted for a listing; run it again directly.
      this.stats.fallbacks++;
      this.#failed(s, 'files', `cannot read nft's output: ${(err as Error).message}`);
      spawnNft(p.nftPath, p.args, p.opts).then(p.resolve, p.reject);
      return;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const { code, signal } = statusToExit(status);
    const r = settleNftRun(p.nftPath, p.args, p.opts, { code, signal, stdout, stderr, killedFor });
    if ('ok' in r) p.resolve(r.ok);
    else p.reject(r.error);
  }

  async #onTimeout(s: Shell, p: Pending): Promise<void> {
    if (s.pending !== p) return;
    // Same as a direct spawn: nft is killed (with the launcher's whole group) and the run reported as timed
    // out only once it is gone (a direct spawn reports at its exit), so the caller's next nft (a retry, a
    // full replace) cannot race a killed transaction still committing.
    let stderr = '';
    try {
      stderr = readFileSync(join(s.dir, 'err')).subarray(0, 64 << 10).toString('utf8');
    } catch {
      /* nothing written yet */
    }
    this.#clear(s, p);
    s.dead = true;
    this.#kill(s);
    this.#forget(s);
    if (!(await waitGone(p.pid))) this.#opts.log?.warn({ pid: p.pid }, 'nft launcher: the nft that timed out is still not gone 10 s after SIGKILL');
    const r = settleNftRun(p.nftPath, p.args, p.opts, { code: null, signal: 'SIGKILL', stdout: '', stderr, killedFor: 'timeout' });
    p.reject('error' in r ? r.error : new Error('unreachable: a timed-out run settled as success'));
  }

  /** The launcher failed during `p`: make sure what it started is dead, then run `p` by a direct spawn. */
  async #fallBack(s: Shell, p: Pending, kind: Failure, why: string): Promise<void> {
    if (s.pending !== p) return;
    this.#clear(s, p);
    this.stats.fallbacks++;
    this.#failed(s, kind, why);
    // A killed nft either committed its transaction already or never will; wait until it is gone so the
    // direct run cannot race it.
    const gone = await waitGone(p.pid);
    if (!gone) this.#opts.log?.warn({ pid: p.pid }, 'nft launcher: the nft it started is still not gone 10 s after SIGKILL; running the command again anyway');
    spawnNft(p.nftPath, p.args, p.opts).then(p.resolve, p.reject);
  }

  #clear(s: Shell, p: Pending): void {
    clearTimeout(p.timer);
    clearTimeout(p.ackTimer);
    if (s.pending === p) s.pending = undefined;
    // Removed for the same reason as the output files (and a big script is not kept on disk).
    if (p.inFile !== undefined) {
      try {
        unlinkSync(p.inFile);
      } catch {
        /* already gone */
      }
    }
  }

  /** A launcher failure: kill it, log, and back off before the next one. */
  #failed(s: Shell | undefined, kind: Failure, why: string): void {
    if (s !== undefined) {
      if (s.dead && kind === 'died') return;
      s.dead = true;
      this.#kill(s);
      this.#forget(s);
    }
    if (this.#closed) return;
    this.stats.failures++;
    this.#nextStartAt = Date.now() + this.#backoffMs;
    this.#opts.log?.warn({ kind, why, stderr: s?.stderr === '' ? undefined : s?.stderr, retryInMs: this.#backoffMs }, 'nft launcher failed: nft runs by a direct spawn until a new launcher starts');
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#opts.backoffMs?.max ?? 60_000);
  }

  #forget(s: Shell): void {
    const i = this.#shells.indexOf(s);
    if (i >= 0) this.#shells[i] = undefined;
  }

  #kill(s: Shell): void {
    s.dead = true;
    if (s.pgid !== undefined) {
      try {
        process.kill(-s.pgid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    s.child.stdin?.destroy();
    s.child.stdio[3]?.destroy();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

let installed: NftLauncher | undefined;

/**
 * The agent's switch (config nft.launcher, default true): on, every nft run of this process goes through one
 * launcher (started on the first call, while the agent is small); off, direct spawns. Idempotent.
 */
export function syncNftLauncher(enabled: boolean, log?: LauncherLog): void {
  if (enabled && installed === undefined) {
    installed = new NftLauncher(log === undefined ? {} : { log });
    setNftRunner(installed);
  } else if (!enabled && installed !== undefined) {
    setNftRunner(undefined);
    installed.close();
    installed = undefined;
  }
}

/** The launcher syncNftLauncher installed, if any (tests, bench). */
export function installedNftLauncher(): NftLauncher | undefined {
  return installed;
}
