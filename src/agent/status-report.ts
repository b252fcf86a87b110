// Pieces of the status file that the reconcile loop hands over: the report
// written while no config is usable, and which Kubernetes source errors
// become the agent's own `lastError`.

import type { Problem } from '../api/problem.js';
import type { KubernetesSourceStatus } from '../inventory/sources/kubernetes.js';
import { rm } from 'node:fs/promises';
import { readStatus, statusPath, type NoConfigStatus } from './status-file.js';

/** No usable config and no last good one: nothing is applied. */
export interface NoConfig {
  /** The config file (resolved path). */
  readonly file: string;
  readonly problems: readonly Problem[];
  /** Where status is written meanwhile: the --state-dir override, else the default state dir. */
  readonly dir: string;
  readonly from: 'override' | 'default';
}

export function noConfigStatus(
  n: NoConfig,
  run: { readonly pid: number; readonly startedAt: string; readonly lastError: { at: string; message: string }; readonly stopped: boolean },
): NoConfigStatus {
  return {
    version: 1,
    pid: run.pid,
    startedAt: run.startedAt,
    updatedAt: new Date().toISOString(),
    noConfig: {
      file: n.file,
      problems: n.problems.map((p) => ({ file: p.pos.file, line: p.pos.line, col: p.pos.col, message: p.field === '' ? p.message : `${p.field}: ${p.message}` })),
    },
    lastError: run.lastError,
    ...(run.stopped ? { stopped: true } : {}),
  };
}

/**
 * A disconnected source's error is also the agent's last error (a revoked
 * token must not leave `last error: none`). Noted once per distinct error
 * while disconnected; a reconnect re-arms it. `noted` is the error noted last.
 */
export function kubeErrorToNote(st: KubernetesSourceStatus, noted: string | undefined): { note?: string; noted: string | undefined } {
  if (st.connected || st.lastError === undefined) return { noted: undefined };
  if (st.lastError === noted) return { noted };
  return { note: `kubernetes API: ${st.lastError}`, noted: st.lastError };
}

/**
 * The config became usable and names another state dir: the no-config status
 * this process left in `dir` would read as a live agent enforcing nothing, so
 * it is removed (only when it is still this process's own).
 */
export async function retireNoConfigStatus(dir: string, pid: number): Promise<void> {
  const s = await readStatus(dir).catch(() => undefined);
  if (s !== undefined && 'noConfig' in s && s.pid === pid) await rm(statusPath(dir), { force: true });
}
