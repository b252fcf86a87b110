// The agent's Prometheus metrics (prom-client, a registry of our own). The
// reconcile loop reports what happened through the small AgentMetrics
// interface (an apply, a failure, a refusal, a drift repair, input errors,
// the status it writes); everything read from the kernel (rule counters,
// drop-record entries) is read at scrape time, bounded and cached
// (rule-counters.ts), never from the loop.
//
// Names: nodewall_*; counters end in _total, times in _seconds, timestamps
// in _timestamp_seconds. Rule counters come from the kernel and restart at 0
// when a full apply recreates the table: Prometheus' rate() handles that
// like any counter reset.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { KubernetesSourceStatus } from '../inventory/sources/kubernetes.js';
import { RuleCounterReader, type CounterTarget } from './rule-counters.js';
import { RolloutMetrics, type RollbackCause, type RolloutMetricsSource } from './rollout-metrics.js';
import type { AgentStatus } from './status-file.js';

export type ApplyKind = 'full' | 'delta' | 'noop';
export type DriftDetector = 'monitor' | 'poll';

/** What the reconcile loop calls. */
export interface AgentMetrics {
  applied(kind: ApplyKind, durationMs: number, inForce: { rules: number; sets: number; elements: number }): void;
  applyFailed(): void;
  lockoutRefused(): void;
  driftRepair(detectedBy: DriftDetector, outcome: 'restored' | 'failed'): void;
  inputErrors(count: number): void;
  kubernetesSnapshot(origin: 'api' | 'cache'): void;
  status(s: AgentStatus): void;
  /** A change was rolled back (rollout probe, commit-confirm deadline). */
  rolledBack(cause: RollbackCause): void;
  /** The table whose rule counters a scrape reads (undefined: nothing applied, dry-run). */
  target(t: CounterTarget | undefined): void;
}

/** Drop-record entries in force; i11-drops provides the real source (its sets), default 0. */
export type DropRecordSource = () => Promise<number> | number;

/** How long a scrape waits for the very first counter read (later scrapes get the last read at once). */
const firstReadWaitMs = 4000;

const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface MetricsOptions {
  readonly reader?: RuleCounterReader;
  readonly dropRecords?: DropRecordSource;
  /** Running `nft monitor` children (nft-monitor.ts), for nodewall_drift_monitor_children. */
  readonly monitorChildren?: () => number;
}

export class PromMetrics implements AgentMetrics {
  readonly registry = new Registry();
  readonly #reader: RuleCounterReader;
  #dropRecords: DropRecordSource;
  #monitorChildren: () => number;
  #target: CounterTarget | undefined;
  #kube: KubernetesSourceStatus | undefined;

  readonly #applyDuration: Histogram<'kind'>;
  readonly #applies: Counter<'outcome'>;
  readonly #lastSuccess: Gauge;
  readonly #lastFailed: Gauge;
  readonly #inForce: { rules: Gauge; sets: Gauge; elements: Gauge };
  readonly #drift: Counter<'detected_by' | 'outcome'>;
  readonly #inputErrors: Counter;
  readonly #refusals: Counter;
  readonly #policies: Gauge<'state'>;
  readonly #kubeLastSync: Gauge<'source'>;
  readonly #monitorRestarts: Counter<'kind'>;
  /** Pause, commit-confirm, rollbacks, refused changes, staged policies (rollout-metrics.ts). */
  readonly #rollout: RolloutMetrics;

  constructor(opts: MetricsOptions = {}) {
    this.#reader = opts.reader ?? new RuleCounterReader();
    this.#dropRecords = opts.dropRecords ?? (() => 0);
    this.#monitorChildren = opts.monitorChildren ?? (() => 0);
    const registers = [this.registry];
    // prom-client's default process/nodejs metrics are left out: several break Prometheus' naming rules
    // (promtool check metrics). nodewall_resident_memory_bytes below covers what an operator watches.
    new Gauge({
      name: 'nodewall_resident_memory_bytes', help: 'Resident set size of the agent process.', registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });

    this.#applyDuration = new Histogram({
      name: 'nodewall_apply_duration_seconds', help: 'Time to bring the kernel table to the policies, by kind of apply (full replace, delta, noop).',
      labelNames: ['kind'], buckets: durationBuckets, registers,
    });
    this.#applies = new Counter({
      name: 'nodewall_applies_total', help: 'Reconcile passes that reached the kernel step, by outcome (applied, noop, failed, refused by the lockout guard).',
      labelNames: ['outcome'], registers,
    });
    this.#lastSuccess = new Gauge({ name: 'nodewall_last_successful_apply_timestamp_seconds', help: 'Unix time of the last apply (or noop, or drift repair) that left the kernel equal to the policies.', registers });
    this.#lastFailed = new Gauge({ name: 'nodewall_last_apply_failed', help: '1 while the last apply attempt failed (the previous ruleset stays in force), else 0.', registers });
    this.#inForce = {
      rules: new Gauge({ name: 'nodewall_rules', help: 'nft rules in nodewall\'s table, as last applied.', registers }),
      sets: new Gauge({ name: 'nodewall_sets', help: 'nft sets in nodewall\'s table, as last applied.', registers }),
      elements: new Gauge({ name: 'nodewall_set_elements', help: 'Set elements (addresses, prefixes) in nodewall\'s table, as last applied.', registers }),
    };
    this.#drift = new Counter({
      name: 'nodewall_drift_repairs_total', help: 'Times the table was found changed or missing and restored (outcome restored) or could not be (failed), by what noticed it (monitor: nft monitor event; poll: periodic check).',
      labelNames: ['detected_by', 'outcome'], registers,
    });
    this.#inputErrors = new Counter({ name: 'nodewall_input_errors_total', help: 'Errors in the inputs (config, policy files, API objects) reported by reconcile passes.', registers });
    this.#refusals = new Counter({ name: 'nodewall_lockout_guard_refusals_total', help: 'Rulesets the lockout guard refused to apply because they would cut an established session.', registers });
    this.#policies = new Gauge({
      name: 'nodewall_policies', help: 'Policies by state: selected (select this node), kept_last_good (invalid now, last good version in force), rejected (invalid, never valid: not applied), refused (a change of theirs was rolled back and is refused until it changes).',
      labelNames: ['state'], registers,
    });
    this.#kubeLastSync = new Gauge({
      name: 'nodewall_kubernetes_last_sync_timestamp_seconds', help: 'Unix time of the last snapshot read from the Kubernetes API (not the disk cache); absent before the first.',
      labelNames: ['source'], registers,
    });
    this.#monitorRestarts = new Counter({ name: 'nodewall_drift_monitor_restarts_total', help: 'Restarts of an nft monitor child of the instant drift repair.', labelNames: ['kind'], registers });
    this.#rollout = new RolloutMetrics(this.registry);

    const self = this;
    // Labelled (source="kubernetes") so that a node without that source has no series at all, not a 0 that
    // would read as "disconnected".
    const kubeFlag = (name: string, help: string, flag: 'connected' | 'stale'): void => {
      new Gauge({
        name, help, labelNames: ['source'], registers,
        collect() {
          this.reset();
          if (self.#kube !== undefined) this.set({ source: 'kubernetes' }, self.#kube[flag] ? 1 : 0);
        },
      });
    };
    kubeFlag('nodewall_kubernetes_connected', '1 while every watch of the Kubernetes API source is established; 0 otherwise; absent without that source.', 'connected');
    kubeFlag('nodewall_kubernetes_stale', '1 while the policies in force come from the disk cache of the Kubernetes source, not from the API.', 'stale');
    new Gauge({
      name: 'nodewall_drift_monitor_children', help: 'nft monitor children running for instant drift repair (0: disabled or all down; the periodic check still runs).', registers,
      collect() {
        this.set(self.#monitorChildren());
      },
    });
    new Gauge({
      name: 'nodewall_drop_record_entries', help: 'Entries in the drop-record sets (flows dropped recently, bounded by the set size).', registers,
      async collect() {
        this.set(await self.#dropRecords());
      },
    });
    const counterErrors = new Counter({
      name: 'nodewall_kernel_read_errors_total', help: 'Reads of the kernel rule counters that failed or timed out (their rule series are left out of that scrape).', registers,
      // Collected in any order with the rule counters: read (or reuse the cached read) before reporting.
      async collect() {
        await rows();
      },
    });
    let counted: unknown;
    const rows = async () => {
      const t = self.#target;
      if (t === undefined) return [];
      // Only the first read of a table is waited for, and not past firstReadWaitMs: a scrape stays fast.
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        self.#reader.read(t),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), firstReadWaitMs))),
      ]).finally(() => clearTimeout(timer));
      if (r === undefined) return [];
      if (!r.ok) {
        // One failed read is one error, however many series (or scrapes within the cache time) it empties.
        if (counted !== r) counterErrors.inc();
        counted = r;
        return [];
      }
      return r.rows;
    };
    new Gauge({
      name: 'nodewall_rule_counters_age_seconds', help: 'Age of the rule counter values served (read in the background, at most one nft call at a time); absent before the first read.', registers,
      async collect() {
        await rows();
        this.reset();
        const at = self.#reader.readAt;
        if (self.#target !== undefined && at !== undefined) this.set(Math.max(0, Date.now() - at) / 1000);
      },
    });
    // Both counters read one cached listing (the reader is single-flight).
    const labelNames = ['direction', 'policy', 'rule', 'action'] as const;
    new Counter({
      name: 'nodewall_rule_packets_total', help: 'Packets that matched a rule of nodewall\'s table, per direction, policy, rule and action (accept, drop, audit: would-be drop).',
      labelNames, registers,
      async collect() {
        this.reset();
        for (const r of await rows()) this.inc({ direction: r.direction, policy: r.policy, rule: r.rule, action: r.action }, r.packets);
      },
    });
    new Counter({
      name: 'nodewall_rule_bytes_total', help: 'Bytes that matched a rule of nodewall\'s table, per direction, policy, rule and action.',
      labelNames, registers,
      async collect() {
        this.reset();
        for (const r of await rows()) this.inc({ direction: r.direction, policy: r.policy, rule: r.rule, action: r.action }, r.bytes);
      },
    });
    for (const outcome of ['applied', 'noop', 'failed', 'refused']) this.#applies.inc({ outcome }, 0);
    this.#lastFailed.set(0);
  }

  /** Wire the drop-record source at merge time (i11-drops). */
  setDropRecordSource(fn: DropRecordSource): void {
    this.#dropRecords = fn;
  }

  setMonitorChildren(fn: () => number): void {
    this.#monitorChildren = fn;
  }

  /** Where the rollout metrics read the pending confirmation and the staged-record count. */
  setRolloutSource(source: RolloutMetricsSource): void {
    this.#rollout.setSource(source);
  }

  rolledBack(cause: RollbackCause): void {
    this.#rollout.rolledBack(cause);
  }

  monitorRestarted(kind: string): void {
    this.#monitorRestarts.inc({ kind });
  }

  applied(kind: ApplyKind, durationMs: number, inForce: { rules: number; sets: number; elements: number }): void {
    this.#applyDuration.observe({ kind }, durationMs / 1000);
    this.#applies.inc({ outcome: kind === 'noop' ? 'noop' : 'applied' });
    this.#lastSuccess.set(Date.now() / 1000);
    this.#lastFailed.set(0);
    this.#setInForce(inForce);
  }

  applyFailed(): void {
    this.#applies.inc({ outcome: 'failed' });
    this.#lastFailed.set(1);
  }

  lockoutRefused(): void {
    this.#applies.inc({ outcome: 'refused' });
    this.#refusals.inc();
  }

  driftRepair(detectedBy: DriftDetector, outcome: 'restored' | 'failed'): void {
    this.#drift.inc({ detected_by: detectedBy, outcome });
    if (outcome === 'restored') {
      this.#lastSuccess.set(Date.now() / 1000);
      this.#lastFailed.set(0);
    } else {
      this.#lastFailed.set(1);
    }
  }

  inputErrors(count: number): void {
    if (count > 0) this.#inputErrors.inc(count);
  }

  kubernetesSnapshot(origin: 'api' | 'cache'): void {
    if (origin === 'api') this.#kubeLastSync.set({ source: 'kubernetes' }, Date.now() / 1000);
  }

  status(s: AgentStatus): void {
    this.#policies.set({ state: 'selected' }, s.policies.selected);
    this.#policies.set({ state: 'kept_last_good' }, s.policies.keptLastGood);
    this.#policies.set({ state: 'rejected' }, s.policies.rejected);
    this.#rollout.status(s);
    this.#policies.set({ state: 'refused' }, this.#rollout.refusedPolicies());
    this.#kube = s.kubernetes;
  }

  target(t: CounterTarget | undefined): void {
    this.#target = t;
  }

  #setInForce(n: { rules: number; sets: number; elements: number }): void {
    this.#inForce.rules.set(n.rules);
    this.#inForce.sets.set(n.sets);
    this.#inForce.elements.set(n.elements);
  }

  /** The exposition text (what GET /metrics returns). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
