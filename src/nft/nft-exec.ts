// Runs the nft binary. Scripts go in on stdin (`-f -`); errors come back as
// NftError with the line of the script nft complained about.

import { spawn } from 'node:child_process';

export interface NftExecOptions {
  /** Script fed to stdin. */
  readonly stdin?: string;
  /** Run inside this named network namespace (tests, bench): `nsenter --net=/run/netns/NAME`. */
  readonly netns?: string;
  readonly timeoutMs?: number;
}

export interface NftOutput {
  readonly stdout: string;
  readonly stderr: string;
}

export class NftError extends Error {
  override readonly name = 'NftError';
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  /** 1-based line of the script nft reported, if any. */
  readonly line: number | undefined;
  /** That line's text. */
  readonly scriptLine: string | undefined;

  constructor(
    message: string,
    fields: { argv: readonly string[]; exitCode: number | null; stderr: string; line?: number | undefined; scriptLine?: string | undefined },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.argv = fields.argv;
    this.exitCode = fields.exitCode;
    this.stderr = fields.stderr;
    this.line = fields.line;
    this.scriptLine = fields.scriptLine;
  }
}

/** nft reports "/dev/stdin:12:5-10: Error: ..." (or "-:12:..."); returns the first such line number. */
export function errorLine(stderr: string): number | undefined {
  const m = /^[^\n:]*:(\d+):\d+(?:-\d+)?: Error:/m.exec(stderr);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function firstError(stderr: string): string {
  const line = stderr.split('\n').find((l) => l.includes('Error:'));
  return (line ?? stderr.split('\n')[0] ?? '').trim();
}

export function netnsArgv(nftPath: string, args: readonly string[], netns: string | undefined): string[] {
  return netns === undefined ? [nftPath, ...args] : ['nsenter', `--net=/run/netns/${netns}`, nftPath, ...args];
}

/** Run nft with `args`; rejects with NftError on a non-zero exit, a spawn failure or a timeout. */
export function runNft(nftPath: string, args: readonly string[], opts: NftExecOptions = {}): Promise<NftOutput> {
  const argv = netnsArgv(nftPath, args, opts.netns);
  const [cmd, ...rest] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {
      /* nft may exit before reading all of stdin; the exit code tells what happened */
    });
    child.on('error', (cause) => {
      clearTimeout(timer);
      reject(new NftError(`cannot run ${cmd}: ${cause.message}`, { argv, exitCode: null, stderr: '' }, { cause }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0 && !timedOut) {
        resolve({ stdout, stderr });
        return;
      }
      const line = errorLine(stderr);
      const scriptLine = line === undefined || opts.stdin === undefined ? undefined : opts.stdin.split('\n')[line - 1];
      const what = timedOut ? `timed out after ${opts.timeoutMs ?? 120_000} ms` : `exited with ${code}`;
      const where = line === undefined ? '' : ` (script line ${line}${scriptLine === undefined ? '' : `: ${scriptLine.trim().slice(0, 200)}`})`;
      reject(new NftError(`${argv.join(' ')} ${what}: ${firstError(stderr)}${where}`, { argv, exitCode: code, stderr, line, scriptLine }));
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
