// The agent's status file (stateDir/status.json), written after every
// reconcile and read by `nodewall status`.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunMode } from '../inventory/types.js';
import type { KubernetesSourceStatus } from '../inventory/sources/kubernetes.js';

export interface ApplySummary {
  readonly at: string;
  /** applied: kernel changed; noop: already equal; dry-run: nothing written; refused: lockout guard; failed: nft error. */
  readonly outcome: 'applied' | 'noop' | 'dry-run' | 'refused' | 'failed';
  readonly trigger: string;
  readonly kind?: string;
  readonly durationMs?: number;
  readonly error?: string;
}

export interface AgentStatus {
  readonly version: 1;
  readonly pid: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly mode: RunMode;
  readonly table: string;
  readonly node: string;
  readonly lastApply?: ApplySummary;
  readonly policies: {
    readonly selected: number;
    readonly ingress: number;
    readonly egress: number;
    /** Policies held at their last good version. */
    readonly keptLastGood: number;
    /** Invalid new policies not applied. */
    readonly rejected: number;
  };
  readonly entries: { readonly ingress: number; readonly egress: number };
  readonly enforced: { readonly ingress: boolean; readonly egress: boolean };
  readonly lastError?: { readonly at: string; readonly message: string };
  /** The Kubernetes API source, when configured. */
  readonly kubernetes?: KubernetesSourceStatus;
  /** The Kubernetes source has no snapshot yet (no cache, first list not complete): nothing applied. */
  readonly waitingForKubernetes?: boolean;
  readonly stopped?: boolean;
}

export const statusFileName = 'status.json';

/** Write atomically (temp file + rename) so a reader never sees half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

export async function writeStatus(stateDir: string, status: AgentStatus): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(join(stateDir, statusFileName), status);
}

export async function readStatus(stateDir: string): Promise<AgentStatus | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, statusFileName), 'utf8')) as AgentStatus;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** True when a process with this pid exists (EPERM: exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
