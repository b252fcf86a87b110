// Runs the nft binary. Scripts go in on stdin (`-f -`); every failure comes
// back as an NftError whose message says what ran, how it failed and what to
// do: spawn errors name the path and the config key (nft.path), a timeout
// says it was killed and that an nft transaction never lands half-way, a
// non-zero exit carries nft's error line and the script line it refers to.

import { spawn } from 'node:child_process';

export interface NftExecOptions {
  /** Script fed to stdin. */
  readonly stdin?: string;
  /** Run inside this named network namespace (tests, bench): `nsenter --net=/run/netns/NAME`. */
  readonly netns?: string;
  /** Kill nft (SIGKILL) after this long. Default defaultNftTimeoutMs (config nft.timeoutSeconds). */
  readonly timeoutMs?: number;
}

export interface NftOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** Default of config key nft.timeoutSeconds, in ms. */
export const defaultNftTimeoutMs = 120_000;
/** Output above this is not nft's (100k-element listings are a few MB): the program is killed. */
export const maxNftOutputBytes = 256 << 20;

/** spawn: the program could not be started; exit: non-zero exit or a signal; timeout: killed by us; output: unusable output. */
export type NftFailure = 'spawn' | 'exit' | 'timeout' | 'output';

export class NftError extends Error {
  override readonly name = 'NftError';
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  /** 1-based line of the script nft reported, if any. */
  readonly line: number | undefined;
  /** That line's text. */
  readonly scriptLine: string | undefined;
  readonly failure: NftFailure;
  /** Signal that ended nft, if any ("SIGKILL" after a timeout). */
  readonly signal: string | null;

  constructor(
    message: string,
    fields: {
      argv: readonly string[];
      exitCode: number | null;
      stderr: string;
      line?: number | undefined;
      scriptLine?: string | undefined;
      failure?: NftFailure;
      signal?: string | null;
    },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.argv = fields.argv;
    this.exitCode = fields.exitCode;
    this.stderr = fields.stderr;
    this.line = fields.line;
    this.scriptLine = fields.scriptLine;
    this.failure = fields.failure ?? 'exit';
    this.signal = fields.signal ?? null;
  }
}

/** nft reports "/dev/stdin:12:5-10: Error: ..." (or "-:12:..."); returns the first such line number. */
export function errorLine(stderr: string): number | undefined {
  const m = /^[^\n:]*:(\d+):\d+(?:-\d+)?: Error:/m.exec(stderr);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** nft's first "Error:" line, else the last lines of stderr (bounded): what a human needs to see. */
export function stderrTail(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const error = lines.find((l) => l.includes('Error:'));
  const text = error ?? lines.slice(-3).join(' | ');
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

export function netnsArgv(nftPath: string, args: readonly string[], netns: string | undefined): string[] {
  return netns === undefined ? [nftPath, ...args] : ['nsenter', `--net=/run/netns/${netns}`, nftPath, ...args];
}

/** "nft -f -" style text of a command, for messages. */
export function commandText(args: readonly string[]): string {
  return ['nft', ...args].join(' ');
}

/** What a failed or killed command left behind, so the operator knows whether anything changed. */
function consequence(args: readonly string[]): string {
  if (args.includes('-c')) return 'nothing was changed (a check never commits)';
  if (args.includes('-f')) return 'an nft transaction is all or nothing, so the previous ruleset stays in force';
  return 'nothing was changed';
}

function spawnHint(cause: NodeJS.ErrnoException, program: string, viaNsenter: boolean): string {
  const what = viaNsenter ? `nsenter (running ${program})` : `\`${program}\` (nft.path)`;
  const fix = viaNsenter ? 'install util-linux (nsenter)' : 'set nft.path in the config to the nft binary (usually /usr/sbin/nft) or install nftables';
  switch (cause.code) {
    case 'ENOENT':
      return `${what} does not exist; ${fix}`;
    case 'EACCES':
      return `${what} is not executable by this user (permission denied); ${fix}, or fix its permissions`;
    case 'ENOTDIR':
      return `${what}: a component of the path is not a directory; ${fix}`;
    default:
      return `${what} could not be started (${cause.code ?? cause.message}); ${fix}`;
  }
}

/** How one nft run ended, whoever started it (a direct spawn or the launcher, nft-launcher.ts). */
export interface NftRunEnd {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** We killed it: it ran past the timeout, or printed more than maxNftOutputBytes. */
  readonly killedFor: 'timeout' | 'output' | undefined;
}

/** A usable timeout: a NaN or non-positive one would kill nft at once, so it falls back to the default. */
export function effectiveTimeoutMs(timeoutMs: number | undefined): number {
  return timeoutMs !== undefined && Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : defaultNftTimeoutMs;
}

/** The NftError of a program that could not be started (spawn error), with the hint what to fix. */
export function spawnFailure(nftPath: string, args: readonly string[], opts: NftExecOptions, cause: NodeJS.ErrnoException, viaNsenter: boolean): NftError {
  const argv = netnsArgv(nftPath, args, opts.netns);
  return new NftError(`cannot run \`${commandText(args)}\`: ${spawnHint(cause, nftPath, viaNsenter)}`, { argv, exitCode: null, stderr: '', failure: 'spawn' }, { cause });
}

/** The result of a finished run: its output on success, else the NftError that says what failed and what it means. */
export function settleNftRun(nftPath: string, args: readonly string[], opts: NftExecOptions, end: NftRunEnd): { ok: NftOutput } | { error: NftError } {
  const argv = netnsArgv(nftPath, args, opts.netns);
  const timeoutMs = effectiveTimeoutMs(opts.timeoutMs);
  const command = `\`${commandText(args)}\``;
  const { code, signal, stdout, stderr, killedFor } = end;
  if (code === 0 && killedFor === undefined) return { ok: { stdout, stderr } };
  const tail = stderrTail(stderr);
  const stderrText = tail === '' ? '' : `; stderr: ${tail}`;
  if (killedFor === 'timeout') {
    const s = timeoutMs / 1000;
    return { error: new NftError(
      `${command} (${nftPath}) timed out after ${s} s and was killed (SIGKILL); ${consequence(args)}` +
        `${stderrText}. A very large ruleset needs a longer nft.timeoutSeconds; a hanging nft points at the kernel or another nft holding the lock`,
      { argv, exitCode: code, stderr, failure: 'timeout', signal: signal ?? 'SIGKILL' },
    ) };
  }
  if (killedFor === 'output') {
    return { error: new NftError(
      `${command}: \`${nftPath}\` (nft.path) printed more than ${maxNftOutputBytes >> 20} MB and was killed; ${consequence(args)}. Is nft.path really nft?`,
      { argv, exitCode: code, stderr, failure: 'output', signal: signal ?? 'SIGKILL' },
    ) };
  }
  const line = errorLine(stderr);
  const scriptLine = line === undefined || opts.stdin === undefined ? undefined : opts.stdin.split('\n')[line - 1];
  const how = code === null ? `was killed by ${signal ?? 'a signal'}` : `exited with status ${code}`;
  const where = line === undefined ? '' : ` (script line ${line}${scriptLine === undefined ? '' : `: ${scriptLine.trim().slice(0, 200)}`})`;
  const detail = tail === '' ? ' and printed nothing on stderr' : `: ${tail}`;
  return { error: new NftError(
    `${command} (${nftPath}) ${how}${detail}${where}; ${consequence(args)}`,
    { argv, exitCode: code, stderr, line, scriptLine, failure: 'exit', signal },
  ) };
}

/**
 * Something that runs nft commands for this process instead of a direct spawn: the agent's launcher
 * (nft-launcher.ts), so that a large agent does not fork itself for every nft run. Same contract as spawnNft.
 */
export interface NftRunner {
  run(nftPath: string, args: readonly string[], opts: NftExecOptions): Promise<NftOutput>;
}

let processRunner: NftRunner | undefined;

/** Route every runNft/loadScript/checkScript of this process through `runner` (undefined: direct spawns again). */
export function setNftRunner(runner: NftRunner | undefined): void {
  processRunner = runner;
}

/** Run nft with `args`; rejects with NftError on a spawn failure, a non-zero exit, a signal, a timeout or runaway output. */
export function runNft(nftPath: string, args: readonly string[], opts: NftExecOptions = {}): Promise<NftOutput> {
  return processRunner === undefined ? spawnNft(nftPath, args, opts) : processRunner.run(nftPath, args, opts);
}

/** runNft by a direct spawn of nft (or nsenter) from this process, whatever runner is set. */
export function spawnNft(nftPath: string, args: readonly string[], opts: NftExecOptions = {}): Promise<NftOutput> {
  const argv = netnsArgv(nftPath, args, opts.netns);
  const [cmd, ...rest] = argv as [string, ...string[]];
  const timeoutMs = effectiveTimeoutMs(opts.timeoutMs);
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (cause) {
      // spawn throws synchronously for e.g. a path with a NUL byte.
      reject(spawnFailure(nftPath, args, opts, cause as NodeJS.ErrnoException, false));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let killedFor: 'timeout' | 'output' | undefined;
    const kill = (why: 'timeout' | 'output') => {
      if (killedFor !== undefined) return;
      killedFor = why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    const collect = (into: Buffer[]) => (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > maxNftOutputBytes) {
        kill('output');
        return;
      }
      into.push(b);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.stdin.on('error', () => {
      /* nft may exit before reading all of stdin; the exit code tells what happened */
    });
    child.on('error', (cause: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(spawnFailure(nftPath, args, opts, cause, opts.netns !== undefined && cause.path === 'nsenter'));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r = settleNftRun(nftPath, args, opts, {
        code, signal, killedFor, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'),
      });
      if ('ok' in r) resolve(r.ok);
      else reject(r.error);
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** `nft -f -` with the script on stdin (one transaction). */
export function loadScript(nftPath: string, script: string, opts: Omit<NftExecOptions, 'stdin'> = {}): Promise<NftOutput> {
  return runNft(nftPath, ['-f', '-'], { ...opts, stdin: script });
}

/** `nft -c -f -`: the kernel checks the whole transaction and commits nothing. */
export function checkScript(nftPath: string, script: string, opts: Omit<NftExecOptions, 'stdin'> = {}): Promise<NftOutput> {
  return runNft(nftPath, ['-c', '-f', '-'], { ...opts, stdin: script });
}

/**
 * Parse nft's JSON output. An empty or non-JSON answer means nft.path is not nft (or a broken one):
 * an NftError that says so instead of "Unexpected end of JSON input".
 */
export function parseNftJson(stdout: string, nftPath: string, args: readonly string[]): unknown {
  const argv = [nftPath, ...args];
  const command = `\`${commandText(args)}\``;
  if (stdout.trim() === '') {
    throw new NftError(`\`${nftPath}\` (nft.path) printed no JSON for ${command}: is it nft? Set nft.path to the nft binary (usually /usr/sbin/nft)`, {
      argv, exitCode: 0, stderr: '', failure: 'output',
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (cause) {
    const start = stdout.trim().slice(0, 80).replace(/\s+/g, ' ');
    throw new NftError(`\`${nftPath}\` (nft.path) printed something that is not JSON for ${command} ("${start}"): is it nft? Set nft.path to the nft binary (usually /usr/sbin/nft)`, {
      argv, exitCode: 0, stderr: '', failure: 'output',
    }, { cause });
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as Record<string, unknown>)['nftables'])) {
    throw new NftError(`\`${nftPath}\` (nft.path) printed JSON without an "nftables" list for ${command}: is it nft (1.0 or later)?`, {
      argv, exitCode: 0, stderr: '', failure: 'output',
    });
  }
  return doc;
}
