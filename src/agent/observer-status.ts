// What the status file says about the agent's observers (issue 11): the
// instant drift repair (nft monitor children running, expected, restarts) and
// the metrics endpoint (the address it listens on, or why it cannot). Written
// by the agent, read by `nodewall status` after the shape checks below: the
// status file is read by the CLI and may be anything.

import type { MetricsEndpointState } from './metrics-server.js';
import { field, literal, nonNegInt, obj, str, type Check } from '../inventory/state-files.js';

export interface DriftMonitorStatus {
  /** Children running now. */
  readonly children: number;
  /** Children that should run (0: driftMonitor off, or dry-run). */
  readonly expected: number;
  /** Restarts since the agent started (a child that died, or an nft that cannot monitor). */
  readonly restarts: number;
}

export interface ObserverStatus {
  readonly driftMonitor: DriftMonitorStatus;
  readonly metrics: MetricsEndpointState;
}

export function observerStatus(monitor: { readonly pids: ReadonlyMap<unknown, number>; readonly expected: number; readonly restarts: number }, server: { readonly state: MetricsEndpointState }): ObserverStatus {
  return { driftMonitor: { children: monitor.pids.size, expected: monitor.expected, restarts: monitor.restarts }, metrics: server.state };
}

export const driftMonitorCheck: Check<DriftMonitorStatus> = (v, path) => {
  const o = obj(v, path);
  field(o, 'children', nonNegInt, path);
  field(o, 'expected', nonNegInt, path);
  field(o, 'restarts', nonNegInt, path);
  return o as unknown as DriftMonitorStatus;
};

export const metricsEndpointCheck: Check<MetricsEndpointState> = (v, path) => {
  const o = obj(v, path);
  const state = field(o, 'state', literal('off', 'binding', 'listening', 'error'), path);
  if (state !== 'off') field(o, 'listen', str, path);
  if (state === 'listening') field(o, 'address', str, path);
  if (state === 'error') {
    field(o, 'error', str, path);
    field(o, 'since', str, path);
  }
  return o as unknown as MetricsEndpointState;
};

/** The lines of `nodewall status`; `running` false: the last state written, as history. */
export function observerLines(s: { readonly driftMonitor?: DriftMonitorStatus; readonly metrics?: MetricsEndpointState }, running: boolean): string[] {
  const lines: string[] = [];
  const was = running ? '' : 'when the agent stopped: ';
  const d = s.driftMonitor;
  if (d !== undefined) {
    const restarts = d.restarts === 0 ? 'no restarts' : `${d.restarts} restart(s)`;
    lines.push(d.expected === 0
      ? `drift:    ${was}instant repair off (periodic check only)`
      : `drift:    ${was}${d.children}/${d.expected} nft monitor children running, ${restarts}${d.children < d.expected ? ' (degraded: the periodic check still repairs, later)' : ''}`);
  }
  const m = s.metrics;
  if (m !== undefined) {
    const text = m.state === 'off' ? 'off (metrics.listen: off)'
      : m.state === 'listening' ? `serving /metrics on ${m.address}`
        : m.state === 'binding' ? `binding ${m.listen}`
          : `NOT serving: cannot listen on ${m.listen} since ${m.since} (${m.error}); retrying, enforcement goes on`;
    lines.push(`metrics:  ${was}${text}`);
  }
  return lines;
}
