import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The built CLI beside this compiled test (dist/src/bin or dist-<x>/src/bin). */
function cliPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'src', 'bin', 'nodewall.js');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('built CLI (src/bin/nodewall.js) not found above this test');
}

/** Runs `node nodewall.js ARGS` (optionally inside a network namespace) and never rejects. */
export function runCli(args: readonly string[], opts: { netns?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const node = process.execPath;
  const [cmd, argv] =
    opts.netns === undefined ? [node, [cliPath(), ...args]] : ['ip', ['netns', 'exec', opts.netns, node, cliPath(), ...args]];
  return new Promise((resolve) => {
    execFile(cmd, argv, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
