// Shared pieces of the benchmarks that run against the fake API server: the
// server in a child process (bench/k8s-apiserver-child.ts, so that the agent
// side's CPU and memory are measured alone), its kubeconfig, throwaway network
// namespaces for nft, and percentiles.

import { execFile, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SyntheticSize } from './synthetic.js';

const run = promisify(execFile);

/** What the child answers to `seed`. */
export interface SeededServer {
  readonly url: string;
  readonly ca: string;
  readonly nodeName: string;
  readonly pods: number;
  readonly policies: number;
}

export type ApiObject = Record<string, unknown> & { metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

/** Commands of bench/k8s-apiserver-child.ts; each gets exactly one reply. */
export type ChildCommand =
  | { cmd: 'seed'; size: SyntheticSize }
  | { cmd: 'pod-ip'; name: string; namespace: string; ip: string }
  | { cmd: 'get'; resource: string; name: string; namespace?: string }
  | { cmd: 'apply'; resource: string; object: ApiObject }
  | { cmd: 'remove'; resource: string; name: string; namespace?: string };

export class ApiServerChild {
  readonly #child: ChildProcess;
  readonly #replies: Record<string, unknown>[] = [];
  #waiter: (() => void) | undefined;
  #exited = false;

  private constructor() {
    this.#child = fork(fileURLToPath(new URL('./k8s-apiserver-child.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    this.#child.on('message', (m: Record<string, unknown>) => {
      this.#replies.push(m);
      this.#waiter?.();
    });
    this.#child.on('exit', (code) => {
      this.#exited = true;
      this.#replies.push({ error: `exited with code ${code}` });
      this.#waiter?.();
    });
  }

  /** Forks the child and seeds it with a synthetic cluster of `size`. */
  static async seed(size: SyntheticSize): Promise<{ child: ApiServerChild; server: SeededServer }> {
    const child = new ApiServerChild();
    try {
      const m = await child.request({ cmd: 'seed', size });
      return {
        child,
        server: { url: String(m['url']), ca: String(m['ca']), nodeName: String(m['nodeName']), pods: Number(m['pods']), policies: Number(m['policies']) },
      };
    } catch (err) {
      await child.stop();
      throw err;
    }
  }

  /** Sends one command and waits for its reply (a reply with `error` throws). */
  async request(m: ChildCommand): Promise<Record<string, unknown>> {
    this.#child.send(m);
    while (this.#replies.length === 0) await new Promise<void>((r) => (this.#waiter = r));
    const reply = this.#replies.shift() ?? {};
    if (typeof reply['error'] === 'string') throw new Error(`fake API server: ${reply['error']}`);
    return reply;
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** A kubeconfig for the seeded server (bearer token the fake server accepts). */
export async function writeKubeconfig(dir: string, server: SeededServer): Promise<string> {
  const file = join(dir, 'kubeconfig');
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'b', cluster: { server: server.url, 'certificate-authority-data': Buffer.from(server.ca).toString('base64') } }],
      users: [{ name: 'b', user: { token: 'nodewall-test-token' } }],
      contexts: [{ name: 'b', context: { cluster: 'b', user: 'b' } }],
      'current-context': 'b',
    }),
  );
  return file;
}

/** A named network namespace for nft (needs root); deleted afterwards. */
export async function createNetns(prefix: string): Promise<{ name: string; remove(): Promise<void> }> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await run('ip', ['netns', 'add', name]);
  return { name, remove: () => run('ip', ['netns', 'delete', name]).then(() => undefined, () => undefined) };
}

/** Nearest-rank percentile (p in 0..100); NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

export const median = (xs: readonly number[]): number => percentile(xs, 50);
