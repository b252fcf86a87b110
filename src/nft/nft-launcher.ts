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
// its process group is killed and waited for until no process of it is left (the nft it may have started,
// even one whose pid it never announced: a killed nft cannot commit later). Then the command's own status
// file decides: the launcher writes nft's exit status there before it answers "R", so an nft whose end the
// launcher saw is reported as it ended, from its own output, even if the answer never arrives, and never run
// twice (a second run of an element delta that had committed would fail on "no such element"). Only when
// that file is absent is the command run again by a direct spawn; if that second run
// fails while the first one may have committed before it was killed, the error says so
// (NftRerunError). A group still not gone after 10 s (an nft stuck in the kernel may still commit) is
// never run again: a change then fails with NftStillRunningError. Nothing is reported as loaded that did
// not load and no error is lost; a new launcher is started on a later call, with exponential backoff. An
// nft that runs past its timeout (script write included: one deadline) is killed with the launcher (same
// error as a direct spawn), unless its status file shows it ended while the agent's event loop was busy
// (then it is reported as it ended), and a fresh launcher takes the next call. A busy launcher (two calls at once) sends the second to a direct spawn,
// so calls never wait for each other (as before). When the agent dies, even by SIGKILL, a watchdog in the
// launcher's process group sees its pipe close, removes the directory and kills the group.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NftError, commandText, effectiveTimeoutMs, maxNftOutputBytes, netnsArgv, setNftRunner, settleNftRun, spawnNft, type NftExecOptions, type NftOutput, type NftRunner } from './nft-exec.js';

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
  /** How long a killed launcher's process group may take to be gone before the call fails (NftStillRunningError). Default 10 s. */
  readonly groupGoneMs?: number;
  /**
   * Waits for a killed group to be gone (default waitGroupGone). Tests replace it to stand for a process that
   * SIGKILL cannot end at once (an nft in uninterruptible sleep in the kernel), which no test can make.
   */
  readonly waitGroupGone?: (pgid: number | undefined, boundMs: number) => Promise<boolean>;
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
  const st = shellQuote(statusFile(dir, id));
  const input = inFile === undefined ? '/dev/null' : shellQuote(inFile);
  // `wait` gives nft's status, 128+N when a signal N ended it (as the shell reports it). It goes to this
  // command's own status file before the answer: an answer lost with a launcher that fails right after is
  // not a lost result (#fallBack). A file per command id: a stale one is never read as another command's.
  return `if : >${out} && : >${err}; then ${argv.map(shellQuote).join(' ')} <${input} >${out} 2>${err} & echo "S ${id} $!"; wait $!; s=$?; echo $s >${st}; echo "R ${id} $s"; else echo 'E ${id}'; fi\n`;
}

/** Where the launcher writes the exit status of command `id`. */
export function statusFile(dir: string, id: number): string {
  return join(dir, `status.${id}`);
}

/** Scripts up to this many UTF-16 units are written synchronously (about a millisecond at most); bigger ones asynchronously, in pieces. */
export const maxSyncScriptChars = 1 << 20;

/** Script text in pieces of at most `size` UTF-16 units, never splitting a surrogate pair (same UTF-8 bytes). */
export function* scriptChunks(text: string, size = 1 << 20): Generator<string> {
  for (let from = 0; from < text.length;) {
    let to = Math.min(from + size, text.length);
    // A high surrogate at the end of a piece would be encoded alone (U+FFFD): keep the pair together.
    const last = text.charCodeAt(to - 1);
    const next = text.charCodeAt(to); // NaN at the end
    if (last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) to += to - from > 1 ? -1 : 1;
    yield text.slice(from, to);
    from = to;
  }
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

/** One /proc/<pid>/stat head at a time: "pid (comm) state ppid pgrp" fits (comm is at most 64 bytes). */
const statHead = Buffer.alloc(256);

/** The state and process group of `pid` from /proc (one open, one read); undefined when it is gone. */
function stateAndGroup(pid: string): { state: string; pgrp: number } | undefined {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
  } catch {
    return undefined; // gone meanwhile
  }
  try {
    const n = readSync(fd, statHead, 0, statHead.length, 0);
    const stat = statHead.toString('latin1', 0, n);
    // "pid (comm) state ppid pgrp ...": the fields follow the last ')' (the command name may contain anything).
    const close = stat.lastIndexOf(')');
    if (close < 0) return undefined;
    const fields = stat.slice(close + 2).split(' ', 3);
    return { state: fields[0] ?? '', pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Live (not zombie) processes of process group `pgid`, from /proc. A zombie can no longer commit anything
 * (and one whose parent never reaps it, e.g. under a container's init, must not hold us up).
 * `until` (performance.now() time): a scan still running then is cut short and gives undefined (unknown).
 * `among`: look only at these pids (a later look at a killed group, whose members can only go away).
 */
export function liveGroupMembers(pgid: number): number[];
export function liveGroupMembers(pgid: number, until: number, among?: readonly number[]): number[] | undefined;
export function liveGroupMembers(pgid: number, until = Number.POSITIVE_INFINITY, among?: readonly number[]): number[] | undefined {
  const live: number[] = [];
  let entries: readonly string[];
  try {
    entries = among === undefined ? readdirSync('/proc') : among.map(String);
  } catch {
    return live;
  }
  let n = 0;
  for (const e of entries) {
    const c = e.charCodeAt(0);
    if (c < 48 || c > 57) continue; // not a pid (self, sys, ...)
    // A node with thousands of processes: the clock is read every 64 entries, not on each.
    if ((++n & 63) === 0 && performance.now() > until) return undefined;
    const st = stateAndGroup(e);
    if (st !== undefined && st.state !== 'Z' && st.pgrp === pgid) live.push(Number(e));
  }
  return live;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Signal 0 to the group: false once no process of it (zombies included) is left; the /proc scan only after. */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Default of NftLauncherOptions.groupGoneMs. */
export const defaultGroupGoneMs = 10_000;

/**
 * Up to `boundMs` (by the clock, not a loop count) for a killed launcher's group to be gone: every process of
 * it, so also an nft it started but never announced (a hung launcher). SIGKILL is delivered at once, but a
 * commit in the kernel finishes first. The cheap signal-0 probe decides in the usual case (the processes were
 * reaped); the /proc scan runs only while the group still has members (zombies nobody reaps, or a process
 * that does not die): one scan of every process, then only the live members it found, at growing intervals
 * (10 ms doubling to 250 ms), so thousands of processes on the node cost one scan.
 */
export async function waitGroupGone(pgid: number | undefined, boundMs = defaultGroupGoneMs): Promise<boolean> {
  if (pgid === undefined) return true;
  const until = performance.now() + boundMs;
  // After the first full scan only the members it found are looked at again: after SIGKILL to the whole group
  // none can enter it (a fork by a member with SIGKILL pending is refused by the kernel; joining by setpgid
  // needs a process of the launcher's session outside its group, and a shell without job control makes none).
  let among: number[] | undefined;
  for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
    if (!groupExists(pgid)) return true;
    const live = liveGroupMembers(pgid, until, among);
    if (live !== undefined && live.length === 0) return true;
    if (live !== undefined) among = live;
    const left = until - performance.now();
    if (left <= 0) return false;
    await sleep(Math.min(pause, left));
  }
}

/** nft's status as the launcher wrote it for command `id` ("0\n"); undefined: not written (nft's end unseen, or nothing readable). */
function readStatus(dir: string, id: number): number | undefined {
  try {
    const m = /^(\d{1,3})\n$/.exec(readFileSync(statusFile(dir, id), 'latin1'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** True when the command may change the ruleset (not a check, a listing or a monitor): a second run is not harmless. */
export function mayCommit(args: readonly string[]): boolean {
  if (args.includes('-c') || args.includes('--check')) return false;
  const verb = args.find((a) => !a.startsWith('-'));
  return verb !== 'list' && verb !== 'monitor' && verb !== 'describe';
}

/**
 * The second run (a direct spawn) of a command failed, after the launcher failed while the first run was in
 * flight and nft was killed before it reported: that first run may have committed. An element delta that had
 * committed fails its second run ("No such file or directory" on a delete), so this error does not say the
 * transaction was not loaded; the caller must read the kernel or replace the table (apply.ts replaces it).
 */
export class NftRerunError extends NftError {
  /** Always true: what the kernel holds is unknown until it is read or replaced. */
  readonly firstRunMayHaveCommitted = true;

  constructor(rerun: NftError) {
    super(
      `${rerun.message}. This was a second run: the nft launcher failed while the first run was in flight and that nft was killed ` +
        'before it reported, so the first run may have committed this transaction (a delta whose second run fails on a missing element most likely did)',
      { argv: rerun.argv, exitCode: rerun.exitCode, stderr: rerun.stderr, line: rerun.line, scriptLine: rerun.scriptLine, failure: rerun.failure, signal: rerun.signal },
      { cause: rerun },
    );
  }
}

/**
 * The launcher's process group (the nft it ran among it) was killed but is still not gone after
 * NftLauncherOptions.groupGoneMs: an nft that was blocked on the nf_tables lock when SIGKILL came can still
 * commit after it. A change is then not run again (two runs of one transaction could both commit, or the
 * second could fail on the first's elements); the call fails, and the caller does what it does for any nft
 * failure (the agent replaces the whole table on its next pass, which is idempotent).
 */
export class NftStillRunningError extends NftError {
  /** Always true: the killed run may commit later; what the kernel holds is unknown until it is read or replaced. */
  readonly mayStillCommit = true;

  constructor(argv: readonly string[], args: readonly string[], why: string, waitedMs: number, pgid: number | undefined, stderr: string) {
    super(
      `\`${commandText(args)}\` ${why}; its process group (${pgid ?? '?'}) was killed (SIGKILL) but is still not gone ${waitedMs / 1000} s later, ` +
        'so that nft may still commit (it may be blocked on the nf_tables lock); it is not run again. The table is replaced on the next pass',
      { argv, exitCode: null, stderr, failure: 'timeout', signal: 'SIGKILL' },
    );
  }
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
  /** The command line was written to the launcher (until then nft cannot have run). */
  sent: boolean;
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
  /**
   * A command settled from its status file at its timeout (the event loop was busy when its answers came):
   * its "S" and "R" answers may still be in the pipe, and are not a protocol error.
   */
  lateId: number | undefined;
}

/**
 * Removes a launcher's private directory. Runs inside calls nobody awaits (#fallBack): a throw there would be
 * an unhandled rejection that ends the agent and leaves the caller's nft call unsettled.
 */
function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    /* left behind: a private 0700 directory under the temp dir */
  }
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
    const s: Shell = { child, pgid: child.pid, dir, answers: new AnswerLines(), pending: undefined, dead: false, stderr: '', lateId: undefined };
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
    const inFile = opts.stdin === undefined ? undefined : join(s.dir, 'in');
    const p: Pending = { id, nftPath, args, opts, inFile, resolve, reject, pid: undefined, sent: false, timer: undefined, ackTimer: undefined };
    // The shell is busy from now on (a concurrent call spawns directly), while the script is written.
    s.pending = p;
    const timeoutMs = effectiveTimeoutMs(opts.timeoutMs);
    // One deadline for the script write and nft's run together, as for a direct spawn (its stdin is written
    // while its timer runs): a slow write never buys nft a second timeout.
    const deadline = performance.now() + timeoutMs;
    const sendCommand = (): void => {
      clearTimeout(p.timer);
      // setImmediate: when the agent's event loop was busy past the deadline, answers already in the pipe are
      // read first (poll phase), and #onTimeout still reads the status file before it declares a timeout.
      p.timer = setTimeout(() => setImmediate(() => void this.#onTimeout(s, p)), Math.max(0, deadline - performance.now()));
      // No "started" in time: a hung launcher. setImmediate lets an answer that already arrived (the agent's
      // own event loop may have been busy) be read first.
      const ackMs = Math.min(this.#opts.startAckMs ?? 5000, timeoutMs / 2);
      p.ackTimer = setTimeout(() => setImmediate(() => {
        if (s.pending === p && p.pid === undefined) void this.#fallBack(s, p, 'hung', `no answer ${ackMs} ms after the command`);
      }), ackMs);
      p.sent = true;
      s.child.stdin?.write(commandLine(id, argv, s.dir, inFile));
    };
    if (opts.stdin === undefined || inFile === undefined) {
      sendCommand();
      return;
    }
    const cannotWrite = (err: unknown): void => {
      if (s.pending !== p) return;
      // A full or vanished temp directory: this launcher cannot carry scripts. nft did not run.
      this.#clear(s, p);
      this.stats.fallbacks++;
      this.#failed(s, 'files', `cannot write the script file: ${(err as Error).message}`);
      spawnNft(nftPath, args, opts).then(resolve, reject);
    };
    if (opts.stdin.length <= maxSyncScriptChars) {
      // A small script (a pod event's delta): written at once, well under a millisecond, no thread-pool round trips.
      try {
        writeFileSync(inFile, opts.stdin, { mode: 0o600 });
      } catch (err) {
        cannotWrite(err);
        return;
      }
      sendCommand();
      return;
    }
    // A script write that does not finish by the deadline (a stuck file system): nft never started, and the
    // call's time is up, so it fails as a timeout (nothing changed) instead of starting a direct run with a
    // second full timeout. setImmediate lets a write that already finished (a busy event loop) be seen first.
    p.timer = setTimeout(() => setImmediate(() => {
      if (s.pending !== p || p.sent) return;
      this.#clear(s, p);
      this.#failed(s, 'files', `the script file was not written within ${timeoutMs} ms`);
      p.reject(new NftError(
        `\`${commandText(args)}\` timed out after ${timeoutMs / 1000} s: its script could not be written to the nft launcher's file in ${s.dir} in that time ` +
          '(a stuck or very slow temp file system), so nft was never started; nothing was changed',
        { argv, exitCode: null, stderr: '', failure: 'timeout' },
      ));
    }), timeoutMs);
    // A big one asynchronously, in pieces: a 40-100 MB cold-start script written (and UTF-8 encoded) in one
    // synchronous call would stop the agent's event loop for a hundred ms and more.
    writeFile(inFile, scriptChunks(opts.stdin), { mode: 0o600 }).then(() => {
      // Settled meanwhile (write guard, close, a launcher that died): the command is not sent.
      if (s.pending === p && !s.dead) sendCommand();
    }, cannotWrite);
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
    // The answers of a command already settled from its status file (#onTimeout): "R" is its last.
    if (r !== undefined && r.kind !== 'E' && r.id === s.lateId && p?.id !== r.id) {
      if (r.kind === 'R') s.lateId = undefined;
      return;
    }
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
      rmSync(statusFile(s.dir, p.id), { force: true });
      spawnNft(p.nftPath, p.args, p.opts).then(p.resolve, p.reject);
      return;
    }
    this.#backoffMs = this.#opts.backoffMs?.first ?? 1000;
    const end = this.#readOutput(s, status);
    let removed = true;
    try {
      // Removed, not left for the shell to truncate: on ext4 a truncated-and-rewritten file is flushed on
      // close (auto_da_alloc), which costs more than a new file. The status file too (its name is this command's).
      for (const f of ['out', 'err']) unlinkSync(join(s.dir, f));
      unlinkSync(statusFile(s.dir, p.id));
    } catch {
      removed = false;
    }
    if (end === undefined) {
      this.stats.fallbacks++;
      this.#failed(s, 'files', "cannot read nft's output");
      // A change that exited 0 is loaded (its output is not needed; running it again could fail, e.g. an
      // element delta on the elements it removed). Anything else: nft ran, but its output is gone; the status
      // alone cannot be trusted for a listing, and a failed change committed nothing: run it again directly.
      if (status === 0 && mayCommit(p.args)) p.resolve({ stdout: '', stderr: '' });
      else spawnNft(p.nftPath, p.args, p.opts).then(p.resolve, p.reject);
      return;
    }
    // A launcher whose files cannot be removed (its directory tampered with) is not used again.
    if (!removed) this.#failed(s, 'files', "cannot remove nft's output files");
    const r = settleNftRun(p.nftPath, p.args, p.opts, end);
    if ('ok' in r) p.resolve(r.ok);
    else p.reject(r.error);
  }

  async #onTimeout(s: Shell, p: Pending): Promise<void> {
    if (s.pending !== p) return;
    // nft may have finished while the agent's event loop was busy past the deadline (a long synchronous
    // stretch): its status file, written before the "R" answer, says so. It committed: report what it did,
    // not a timeout. Its answers still to come are skipped (lateId).
    const finished = p.sent ? readStatus(s.dir, p.id) : undefined;
    if (finished !== undefined) {
      s.lateId = p.id;
      this.#finish(s, p, finished);
      return;
    }
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
    this.#kill(s, true);
    this.#forget(s);
    const boundMs = this.#opts.groupGoneMs ?? defaultGroupGoneMs;
    const gone = await (this.#opts.waitGroupGone ?? waitGroupGone)(s.pgid, boundMs);
    if (!gone) {
      this.#opts.log?.warn({ pid: p.pid, pgid: s.pgid, waitedMs: boundMs }, 'nft launcher: the nft that timed out is still not gone after SIGKILL');
      if (mayCommit(p.args)) {
        removeDir(s.dir);
        p.reject(new NftStillRunningError(netnsArgv(p.nftPath, p.args, p.opts.netns), p.args, `timed out after ${effectiveTimeoutMs(p.opts.timeoutMs) / 1000} s`, boundMs, s.pgid, stderr));
        return;
      }
    } else if (this.#settleFromStatus(s, p, 'timeout')) {
      // It finished right before the kill.
      return;
    }
    removeDir(s.dir);
    const r = settleNftRun(p.nftPath, p.args, p.opts, { code: null, signal: 'SIGKILL', stdout: '', stderr, killedFor: 'timeout' });
    p.reject('error' in r ? r.error : new Error('unreachable: a timed-out run settled as success'));
  }

  /**
   * After the group is gone: when nft's status file says it finished, settle `p` with its own result (from its
   * output files) and remove the directory; false when it did not finish (or its result is unusable: run again).
   */
  #settleFromStatus(s: Shell, p: Pending, kind: Failure | 'timeout'): boolean {
    // Not sent, or "E" (the shell could not create the files): nft did not run.
    const status = p.sent && kind !== 'files' ? readStatus(s.dir, p.id) : undefined;
    if (status === undefined || status === 126 || status === 127) return false;
    const end = this.#readOutput(s, status);
    if (end === undefined && !(status === 0 && mayCommit(p.args))) return false;
    removeDir(s.dir);
    this.stats.viaLauncher++;
    this.#opts.log?.info({ kind, status }, 'nft launcher: nft had finished before its launcher was killed; its own result is reported (not run again)');
    if (end === undefined) {
      // Its output is gone: a change that exited 0 is loaded (as in #finish).
      p.resolve({ stdout: '', stderr: '' });
      return true;
    }
    const r = settleNftRun(p.nftPath, p.args, p.opts, end);
    if ('ok' in r) p.resolve(r.ok);
    else p.reject(r.error);
    return true;
  }

  /**
   * The launcher failed during `p`: make sure everything it started is dead; then nft's own status file says
   * whether it finished (its result is reported, from its output files), else `p` runs again by a direct spawn
   * (unless the group did not go away: a change then fails with NftStillRunningError).
   */
  async #fallBack(s: Shell, p: Pending, kind: Failure, why: string): Promise<void> {
    if (s.pending !== p) return;
    this.#clear(s, p);
    this.stats.fallbacks++;
    // Killed now; its directory is kept until the status file is read.
    this.#failed(s, kind, why, true);
    // A killed nft either committed its transaction already or never will; wait until no process of the
    // group is left (also an nft whose pid was never announced) so that neither the status file nor the
    // kernel can change behind the decision below, and a direct run cannot race it.
    const boundMs = this.#opts.groupGoneMs ?? defaultGroupGoneMs;
    const gone = await (this.#opts.waitGroupGone ?? waitGroupGone)(s.pgid, boundMs);
    // Sent and started (not "E"): an nft of it may be among the processes still there.
    const ran = p.sent && kind !== 'files';
    if (!gone) {
      this.#opts.log?.warn({ pid: p.pid, pgid: s.pgid, waitedMs: boundMs }, 'nft launcher: the nft it started is still not gone after SIGKILL');
      if (ran && mayCommit(p.args)) {
        removeDir(s.dir);
        p.reject(new NftStillRunningError(netnsArgv(p.nftPath, p.args, p.opts.netns), p.args, `was in flight when the nft launcher failed (${kind}: ${why})`, boundMs, s.pgid, ''));
        return;
      }
      // Never started, or a listing: a run now cannot collide with a commit of it.
    } else if (this.#settleFromStatus(s, p, kind)) {
      return;
    }
    // nft did not finish: it did not run, or it was killed, possibly right after its commit (126/127: the
    // program could not be executed, the direct run reports that).
    const uncertain = ran && gone && readStatus(s.dir, p.id) === undefined && mayCommit(p.args);
    removeDir(s.dir);
    spawnNft(p.nftPath, p.args, p.opts).then(p.resolve, (err: unknown) => p.reject(uncertain && err instanceof NftError ? new NftRerunError(err) : err));
  }

  /** nft's output files after it ended with `status`; undefined when they cannot be read (run it again). */
  #readOutput(s: Shell, status: number): { code: number | null; signal: string | null; stdout: string; stderr: string; killedFor: 'output' | undefined } | undefined {
    const fds: number[] = [];
    try {
      for (const f of ['out', 'err']) fds.push(openSync(join(s.dir, f), 'r'));
      const [outFd, errFd] = fds as [number, number];
      const [outBytes, errBytes] = [fstatSync(outFd).size, fstatSync(errFd).size];
      const { code, signal } = statusToExit(status);
      // The shell's `ulimit -f` stops nft with SIGXFSZ at maxNftOutputBytes per file; together they may not exceed it either.
      if (outBytes + errBytes > maxNftOutputBytes || status === 128 + osConstants.signals.SIGXFSZ) return { code, signal, stdout: '', stderr: '', killedFor: 'output' };
      return { code, signal, stdout: readFileSync(outFd).toString('utf8'), stderr: readFileSync(errFd).toString('utf8'), killedFor: undefined };
    } catch {
      return undefined;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
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

  /** A launcher failure: kill it, log, and back off before the next one. `keepDir`: the caller removes its directory. */
  #failed(s: Shell | undefined, kind: Failure, why: string, keepDir = false): void {
    if (s !== undefined) {
      if (s.dead && kind === 'died') return;
      s.dead = true;
      this.#kill(s, keepDir);
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

  #kill(s: Shell, keepDir = false): void {
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
    if (!keepDir) rmSync(s.dir, { recursive: true, force: true });
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
