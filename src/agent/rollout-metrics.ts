// Metrics of the rollout features (issue 10: break-glass pause, commit-confirm,
// rollout probes and the changes they refuse, staged policies), registered on
// the agent's registry by PromMetrics. An operator of thousands of nodes needs
// to find the node left paused, the change waiting for a confirmation, the
// rollbacks and the refused changes without logging in.
//
// Sources, none read from the reconcile loop:
//   pause, refused changes, staged policies   the status the agent writes (PromMetrics.status);
//   rollbacks                                 a hook call where the agent rolls back (AgentMetrics.rolledBack);
//   pending confirmation                      the pending file (commit-confirm.ts, bounded shape-checked reader),
//                                             read at scrape time: a CLI `apply --confirm-within` is pending
//                                             too, and is not the agent's state;
//   staged-record entries                     the staged record sets in the kernel, counted at scrape time,
//                                             cached (rule-counters.ts cachedCount).

import { Counter, Gauge, type Registry } from 'prom-client';
import type { NodewallConfig } from '../inventory/types.js';
import { stagedSetName } from '../nft/render-staged.js';
import type { HostModel } from '../policy/model.js';
import { stagedRecordDirections } from '../policy/staged.js';
import { stat } from 'node:fs/promises';
import { pendingPath, readPending } from './commit-confirm.js';
import { cachedCount, countSetElements } from './rule-counters.js';
import type { AgentStatus } from './status-file.js';

/** What rolled a change back: a rollout probe that broke after it, or a commit-confirm deadline that passed unconfirmed. */
export type RollbackCause = 'probe' | 'confirm_deadline';

export interface RolloutMetricsSource {
  /** The state dir in force (where the pending confirmation lives); undefined before a config is known. */
  readonly stateDir: () => string | undefined;
  /** Entries in the staged record sets (0 without staged policies). */
  readonly stagedEntries: () => Promise<number> | number;
}

/** The agent's source: its config in force and the model it applied (staged sets exist only for that model's staged directions). */
export function rolloutSource(config: () => NodewallConfig | undefined, applied: () => HostModel | undefined): RolloutMetricsSource {
  return {
    stateDir: () => config()?.stateDir,
    stagedEntries: cachedCount(async () => {
      const cfg = config();
      const model = applied();
      if (cfg === undefined || cfg.mode === 'dry-run' || model === undefined) return 0;
      const sets = stagedRecordDirections(model).flatMap((d) => (['ipv4', 'ipv6'] as const).map((f) => stagedSetName(d, f)));
      return sets.length === 0 ? 0 : countSetElements(cfg.nft.path, cfg.nft.table, sets);
    }),
  };
}

interface PendingGauge {
  readonly value: number;
  readonly deadline?: number;
  readonly origin?: string;
}

const noSource: RolloutMetricsSource = { stateDir: () => undefined, stagedEntries: () => 0 };

/** Seconds since the epoch of an ISO time, or undefined when it does not parse. */
function epochSeconds(iso: string): number | undefined {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

export class RolloutMetrics {
  #source: RolloutMetricsSource = noSource;
  #status: AgentStatus | undefined;
  readonly #rollbacks: Counter<'cause'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const self = this;
    new Gauge({
      name: 'nodewall_paused', help: '1 while a break-glass pause is in force (enforce suspended, the audit ruleset rendered: nothing is dropped), else 0.', registers,
      collect() {
        this.set(self.#status?.pause === undefined ? 0 : 1);
      },
    });
    // The pause's start and end, each a timestamp labelled with the mode suspended meanwhile; absent when not paused.
    const pauseTime = (name: string, help: string, at: (p: NonNullable<AgentStatus['pause']>) => string): void => {
      new Gauge({
        name, help: `${help}; absent when not paused. Label: the mode suspended meanwhile.`,
        labelNames: ['suspended_mode'], registers,
        collect() {
          this.reset();
          const p = self.#status?.pause;
          const t = p === undefined ? undefined : epochSeconds(at(p));
          if (p !== undefined && t !== undefined) this.set({ suspended_mode: p.suspendedMode }, t);
        },
      });
    };
    pauseTime('nodewall_pause_start_timestamp_seconds', 'Unix time the pause in force started', (p) => p.pausedAt);
    pauseTime('nodewall_pause_end_timestamp_seconds', 'Unix time the pause in force ends (enforcement comes back by itself)', (p) => p.until);
    this.#rollbacks = new Counter({
      name: 'nodewall_rollbacks_total', help: 'Changes rolled back by the agent, by cause (probe: a rollout probe broke after the change; confirm_deadline: not confirmed by its commit-confirm deadline).',
      labelNames: ['cause'], registers,
    });
    for (const cause of ['probe', 'confirm_deadline'] as const) this.#rollbacks.inc({ cause }, 0);
    new Gauge({
      name: 'nodewall_confirm_pending', help: '1 while a change waits for `nodewall confirm` (agent or `apply --confirm-within`), 0 otherwise; -1 when the pending record is unreadable.', registers,
      async collect() {
        this.set((await self.#pending()).value);
      },
    });
    new Gauge({
      name: 'nodewall_confirm_deadline_timestamp_seconds', help: 'Unix time the pending change is rolled back unless confirmed; absent when none is pending. Label: who made the change (agent, cli).',
      labelNames: ['origin'], registers,
      async collect() {
        this.reset();
        const p = await self.#pending();
        if (p.deadline !== undefined && p.origin !== undefined) this.set({ origin: p.origin }, p.deadline);
      },
    });
    new Gauge({
      name: 'nodewall_refused_changes', help: 'Changes rolled back and refused until their input changes (refused.json; `nodewall status` lists them).', registers,
      collect() {
        this.set(self.#status?.refused?.length ?? 0);
      },
    });
    new Gauge({
      name: 'nodewall_staged_policies', help: 'Staged policies selecting this node (evaluated and recorded, not enforced).', registers,
      collect() {
        this.set(self.#status?.staged?.length ?? 0);
      },
    });
    new Gauge({
      name: 'nodewall_staged_record_entries', help: 'Entries in the staged record sets (new flows seen while policies are staged; bounded by the set size).', registers,
      async collect() {
        this.set(await self.#source.stagedEntries());
      },
    });
  }

  setSource(source: RolloutMetricsSource): void {
    this.#source = source;
  }

  rolledBack(cause: RollbackCause): void {
    this.#rollbacks.inc({ cause });
  }

  status(s: AgentStatus): void {
    this.#status = s;
  }

  /** Distinct policies of the refused changes (nodewall_policies{state="refused"}). */
  refusedPolicies(): number {
    return new Set((this.#status?.refused ?? []).flatMap((r) => r.policies.map((p) => p.policy))).size;
  }

  // The pending record carries a table snapshot (it can be megabytes): read and parse it again only when the
  // file changed (stat: inode, size, mtime); both confirm gauges of one scrape share one read.
  #pendingRead: { key: string; promise: Promise<PendingGauge> } | undefined;

  #pending(): Promise<PendingGauge> {
    const dir = this.#source.stateDir();
    if (dir === undefined) return Promise.resolve({ value: 0 });
    const path = pendingPath(dir);
    return stat(path).then((st) => {
      const key = `${path}|${st.ino}|${st.size}|${st.mtimeMs}`;
      if (this.#pendingRead?.key === key) return this.#pendingRead.promise;
      const promise = readPending(dir).then((r): PendingGauge => {
        if (r.kind === 'missing') return { value: 0 };
        if (r.kind === 'corrupt') return { value: -1 };
        const deadline = epochSeconds(r.value.deadline);
        return deadline === undefined ? { value: 1 } : { value: 1, deadline, origin: r.value.origin };
      }, (): PendingGauge => ({ value: -1 }));
      this.#pendingRead = { key, promise };
      return promise;
    }, (err: NodeJS.ErrnoException): PendingGauge => (err.code === 'ENOENT' ? { value: 0 } : { value: -1 }));
  }
}
