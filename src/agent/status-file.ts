// The agent's status file (stateDir/status.json), written after every
// reconcile and read by `nodewall status`.

import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunMode } from '../inventory/types.js';
import type { KubernetesSourceStatus } from '../inventory/sources/kubernetes.js';
import { pauseStatusCheck, type PauseStatus } from './pause.js';
import { driftMonitorCheck, metricsEndpointCheck, type DriftMonitorStatus } from './observer-status.js';
import type { MetricsEndpointState } from './metrics-server.js';
import { arrayOf, bool, field, literal, nonNegInt, obj, optional, readStateFile, recordOf, StateFileError, str, type Check } from '../inventory/state-files.js';

export interface ApplySummary {
  readonly at: string;
  /**
   * applied: kernel changed; noop: already equal; dry-run: nothing written; refused: lockout guard, or an input rolled
   * back unconfirmed; failed: nft error; rolled-back: a change not confirmed by its deadline was undone (commit-confirm),
   * or a rollout probe broke after it and the previous ruleset was restored.
   */
  readonly outcome: 'applied' | 'noop' | 'dry-run' | 'refused' | 'failed' | 'rolled-back';
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
  /** Break-glass pause in force (agent/pause.ts): the mode above is suspended, audit is rendered. */
  readonly pause?: PauseStatus;
  /** Staged policies selecting this node (evaluated, not enforced; policy/staged.ts). */
  readonly staged?: readonly string[];
  /** Changes rolled back and refused until they change (src/agent/refused-changes.ts). */
  readonly refused?: readonly RefusalStatus[];
  /** Instant drift repair: nft monitor children (observer-status.ts). */
  readonly driftMonitor?: DriftMonitorStatus;
  /** The metrics endpoint: listening address or bind error (observer-status.ts). */
  readonly metrics?: MetricsEndpointState;
  readonly stopped?: boolean;
}

export interface RefusalStatus {
  readonly policies: readonly { readonly policy: string; readonly version: string }[];
  readonly by: string;
  readonly reason: string;
  readonly at: string;
}

/**
 * Written instead of AgentStatus while the agent has no usable config at all
 * (first start with an invalid config, no last good one): nothing is applied.
 */
export interface NoConfigStatus {
  readonly version: 1;
  readonly pid: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly noConfig: {
    /** The config file that could not be used. */
    readonly file: string;
    readonly problems: readonly { readonly file: string; readonly line: number; readonly col: number; readonly message: string }[];
  };
  readonly lastError: { readonly at: string; readonly message: string };
  readonly stopped?: boolean;
}

export type StatusFile = AgentStatus | NoConfigStatus;

export const statusFileName = 'status.json';

/** status.json is a few kB; anything near this is not ours. */
export const statusMaxBytes = 1024 * 1024;

/**
 * Write atomically (temp file + rename) so a reader never sees half a file.
 * `durable`: fsync before the rename, so a power loss leaves the old or the
 * new file, never an empty one (the last good store; the status file is
 * rewritten too often for that and is only informative).
 */
export async function writeJsonAtomic(path: string, value: unknown, opts: { durable?: boolean } = {}): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    if (opts.durable === true) {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else {
      await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

export async function writeStatus(stateDir: string, status: StatusFile): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(join(stateDir, statusFileName), status);
}

export function statusPath(stateDir: string): string {
  return join(stateDir, statusFileName);
}

/**
 * The status file, or undefined when there is none. Throws StateFileError
 * (naming the file and what is wrong) for a corrupt one; never moves it: the
 * CLI only reads, the agent replaces it with its next write.
 */
export async function readStatus(stateDir: string): Promise<StatusFile | undefined> {
  const file = statusPath(stateDir);
  const r = await readStateFile(file, statusMaxBytes, checkStatus);
  if (r.kind === 'missing') return undefined;
  if (r.kind === 'corrupt') throw new StateFileError(file, r.reason);
  return r.value;
}

const lastErrorCheck: Check<{ at: string; message: string }> = (v, path) => {
  const o = obj(v, path);
  return { at: field(o, 'at', str, path), message: field(o, 'message', str, path) };
};

const modes = literal<RunMode>('enforce', 'audit', 'dry-run');
const outcomes = literal<ApplySummary['outcome']>('applied', 'noop', 'dry-run', 'refused', 'failed', 'rolled-back');

function counts<K extends string>(keys: readonly K[]): Check<Record<K, number>> {
  return (v, path) => {
    const o = obj(v, path);
    for (const k of keys) field(o, k, nonNegInt, path);
    return o as Record<K, number>;
  };
}

function flags<K extends string>(keys: readonly K[]): Check<Record<K, boolean>> {
  return (v, path) => {
    const o = obj(v, path);
    for (const k of keys) field(o, k, bool, path);
    return o as Record<K, boolean>;
  };
}

const kubeCheck: Check<KubernetesSourceStatus> = (v, path) => {
  const o = obj(v, path);
  field(o, 'connected', bool, path);
  field(o, 'since', str, path);
  field(o, 'synced', bool, path);
  field(o, 'stale', bool, path);
  optional(o, 'lastError', str, path);
  optional(o, 'cacheSyncedAt', str, path);
  optional(o, 'resourceVersions', recordOf(str), path);
  optional(o, 'absent', arrayOf(str), path);
  optional(o, 'pods', (x, p) => (x === false ? false : literal('CiliumEndpoint', 'Pod', 'probing')(x, p)), path);
  return o as unknown as KubernetesSourceStatus;
};

/** A refusal as status.json shows it; refused-changes.ts checks its stored records with it too (plus inputHash). */
export const refusalStatusCheck: Check<RefusalStatus> = (v, path) => {
  const o = obj(v, path);
  return {
    policies: field(o, 'policies', arrayOf((p, pp) => {
      const e = obj(p, pp);
      return { policy: field(e, 'policy', str, pp), version: field(e, 'version', str, pp) };
    }), path),
    by: field(o, 'by', str, path),
    reason: field(o, 'reason', str, path),
    at: field(o, 'at', str, path),
  };
};

/** Shape check of a parsed status file (throws ShapeError naming the field). */
export function checkStatus(v: unknown): StatusFile {
  const o = obj(v, '');
  field(o, 'version', literal(1), '');
  field(o, 'pid', nonNegInt, '');
  field(o, 'startedAt', str, '');
  field(o, 'updatedAt', str, '');
  optional(o, 'stopped', bool, '');
  if (Object.hasOwn(o, 'noConfig')) {
    const n = field(o, 'noConfig', obj, '');
    field(n, 'file', str, 'noConfig');
    field(n, 'problems', arrayOf((p, path) => {
      const e = obj(p, path);
      field(e, 'file', str, path);
      field(e, 'line', nonNegInt, path);
      field(e, 'col', nonNegInt, path);
      field(e, 'message', str, path);
      return e;
    }), 'noConfig');
    field(o, 'lastError', lastErrorCheck, '');
    return o as unknown as NoConfigStatus;
  }
  field(o, 'mode', modes, '');
  field(o, 'table', str, '');
  field(o, 'node', str, '');
  optional(o, 'lastApply', (a, path) => {
    const e = obj(a, path);
    field(e, 'at', str, path);
    field(e, 'outcome', outcomes, path);
    field(e, 'trigger', str, path);
    optional(e, 'kind', str, path);
    optional(e, 'durationMs', nonNegInt, path);
    optional(e, 'error', str, path);
    return e;
  }, '');
  field(o, 'policies', counts(['selected', 'ingress', 'egress', 'keptLastGood', 'rejected'] as const), '');
  field(o, 'entries', counts(['ingress', 'egress'] as const), '');
  field(o, 'enforced', flags(['ingress', 'egress'] as const), '');
  optional(o, 'lastError', lastErrorCheck, '');
  optional(o, 'kubernetes', kubeCheck, '');
  optional(o, 'waitingForKubernetes', bool, '');
  optional(o, 'pause', pauseStatusCheck, '');
  optional(o, 'staged', arrayOf(str), '');
  optional(o, 'refused', arrayOf(refusalStatusCheck), '');
  optional(o, 'driftMonitor', driftMonitorCheck, '');
  optional(o, 'metrics', metricsEndpointCheck, '');
  return o as unknown as AgentStatus;
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
