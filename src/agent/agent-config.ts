// The agent's own settings. They are keys of nodewall.yaml (parsed and
// validated with the rest by src/inventory/config.ts); absent keys take the
// defaults here.

import { defaultMetricsListen } from '../inventory/config-metrics.js';
import type { MetricsListen, NodewallConfig } from '../inventory/types.js';
import type { LockoutGuardMode } from './lockout-guard.js';
import type { LogLevel } from './log.js';

export interface AgentSettings {
  readonly lockoutGuard: LockoutGuardMode;
  readonly removeOnStop: boolean;
  readonly driftCheckSeconds: number;
  readonly resyncSeconds: number;
  readonly debounceMs: number;
  readonly logLevel: LogLevel;
  /** Issue 11: where /metrics is served ('off': not at all), and whether `nft monitor` triggers drift repair. */
  readonly metricsListen: MetricsListen;
  readonly driftMonitor: boolean;
}

export const defaultAgentSettings: AgentSettings = {
  lockoutGuard: 'warn',
  removeOnStop: false,
  driftCheckSeconds: 5,
  resyncSeconds: 60,
  debounceMs: 300,
  logLevel: 'info',
  metricsListen: defaultMetricsListen,
  driftMonitor: true,
};

export function agentSettings(config: NodewallConfig): AgentSettings {
  const d = defaultAgentSettings;
  return {
    lockoutGuard: config.lockoutGuard ?? d.lockoutGuard,
    removeOnStop: config.removeOnStop ?? d.removeOnStop,
    driftCheckSeconds: config.driftCheckSeconds ?? d.driftCheckSeconds,
    resyncSeconds: config.resyncSeconds ?? d.resyncSeconds,
    debounceMs: config.debounceMs ?? d.debounceMs,
    logLevel: config.logLevel ?? d.logLevel,
    metricsListen: config.metrics?.listen ?? d.metricsListen,
    driftMonitor: config.driftMonitor ?? d.driftMonitor,
  };
}
