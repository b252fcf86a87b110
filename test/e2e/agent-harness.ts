// Runs `nodewall agent` as a child process inside a lab namespace, with a
// temporary config/policy/state directory, and reads its JSON log lines.
// Everything is bounded in time and torn down with the test.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { cliPath } from '../agent/paths.js';
import type { FakeApiServer } from '../helpers/fake-apiserver.js';
import { forwardIntoNetns } from './netns-api-proxy.js';

export type LogLine = Record<string, unknown> & { msg: string; level: number; time: string };

export interface AgentDirs {
  readonly root: string;
  readonly config: string;
  readonly policies: string;
  readonly state: string;
}

/** A fresh directory with policies/ and state/; removed at teardown. */
export async function agentDirs(t: ExecutionContext, config: Record<string, unknown>): Promise<AgentDirs> {
  const root = await mkdtemp(join(tmpdir(), 'nwt-agent-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dirs = { root, config: join(root, 'nodewall.yaml'), policies: join(root, 'policies'), state: join(root, 'state') };
  await mkdir(dirs.policies);
  await writeConfig(dirs, config);
  return dirs;
}

export async function writeConfig(dirs: AgentDirs, config: Record<string, unknown>): Promise<void> {
  const full = { sources: [dirs.policies], stateDir: dirs.state, nodeName: 'node-a', driftCheckSeconds: 1, debounceMs: 100, ...config };
  await atomicWrite(dirs.config, `${JSON.stringify(full, null, 2)}\n`);
}

/**
 * Agent dirs for an enforcing agent in `netns` whose only source is the fake API server (forwarded into the
 * namespace), with the lab's pod CIDRs; `config` adds or overrides keys.
 */
export async function kubernetesAgentDirs(t: ExecutionContext, netns: string, server: FakeApiServer, config: Record<string, unknown>): Promise<AgentDirs> {
  await forwardIntoNetns(t, netns, server.port);
  const dirs = await agentDirs(t, {});
  const kubeconfig = server.writeKubeconfig(dirs.root);
  await writeConfig(dirs, {
    mode: 'enforce',
    sources: [{ kubernetes: { kubeconfig } }],
    clusterPodCIDRs: ['198.51.100.0/24', '2001:db8:100::/64'],
    ...config,
  });
  return dirs;
}

/** Editor-style save: write a temp file, rename over the target. */
export async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** Policy "ssh": TCP 22 only from the operators' 198.51.100.0/24, so a session from elsewhere is cut. */
export const sshFromOperatorsYaml = [
  'apiVersion: cilium.io/v2',
  'kind: CiliumClusterwideNetworkPolicy',
  'metadata:',
  '  name: ssh',
  'spec:',
  '  nodeSelector: {}',
  '  ingress:',
  '    - fromCIDR: [198.51.100.0/24]',
  '      toPorts:',
  '        - ports:',
  '            - { port: "22", protocol: TCP }',
  '',
].join('\n');

/** A host policy (nodeSelector {}) allowing TCP ports from entity world, plus optional extra ingress rules. */
export function policyYaml(name: string, ports: readonly (number | string)[], extra = ''): string {
  return [
    'apiVersion: cilium.io/v2',
    'kind: CiliumClusterwideNetworkPolicy',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  nodeSelector: {}',
    '  ingress:',
    '    - fromEntities: [world]',
    '      toPorts:',
    '        - ports:',
    ...ports.map((p) => `            - { port: "${p}", protocol: TCP }`),
    extra,
    '',
  ].join('\n');
}

export class AgentProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #exited: Promise<number | null>;
  #buffer = '';
  #waiters: (() => void)[] = [];

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    child.stdout.on('data', (b: Buffer) => {
      this.#buffer += b.toString();
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const text = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(text) as LogLine);
        } catch {
          this.stderr.push(`(stdout, not JSON) ${text}`);
        }
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    child.stderr.on('data', (b: Buffer) => this.stderr.push(b.toString()));
    this.#exited = new Promise((resolve) => child.on('close', (code) => {
      resolve(code);
      for (const w of this.#waiters.splice(0)) w();
    }));
  }

  /** Start the agent in `netns`; SIGKILLed at teardown if still running. */
  static start(t: ExecutionContext, netns: string, args: readonly string[]): AgentProcess {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, cliPath(), 'agent', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const a = new AgentProcess(child);
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await a.#exited;
      }
    });
    return a;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** Lines logged after index `from` that match. */
  find(pred: (l: LogLine) => boolean, from = 0): LogLine[] {
    return this.lines.slice(from).filter(pred);
  }

  /** Wait (bounded) for a line at index >= from matching pred. */
  async waitFor(pred: (l: LogLine) => boolean, timeoutMs: number, from = 0, what = 'log line'): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit !== undefined) return hit;
      if (this.#child.exitCode !== null) throw new Error(`agent exited (${this.#child.exitCode}) before ${what}\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.#child.kill(sig);
  }

  /** Send SIGTERM and wait (bounded) for the exit code. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }

  tail(n = 15): string {
    return [...this.lines.slice(-n).map((l) => JSON.stringify(l).slice(0, 400)), ...this.stderr.slice(-5)].join('\n');
  }
}

export const isApplied = (l: LogLine): boolean => l.msg === 'ruleset applied' || l.msg === 'ruleset unchanged';
