// `nodewall agent`: keep the kernel equal to the policies, unattended.
//
// Triggers: start, file events (debounced, content-hashed), SIGHUP, a
// periodic resync, the drift check (table changed or gone), and snapshots of
// the Kubernetes API source when `sources` has a `kubernetes` entry. Passes run
// one at a time; a trigger during a pass queues exactly one more pass.
// Failure rules: bad input keeps the last good version (reconcile.ts), an nft
// failure leaves the previous ruleset in the kernel, or, when a full replace
// failed halfway, the new one filtering from a temporary table (make-before-break.ts), and
// nothing on the input side stops the loop.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { formatProblem, InputError } from '../api/problem.js';
import type { ConfigOverrides } from '../inventory/config.js';
import { dropRecordsOf, type Labels, type NodewallConfig, type RunMode } from '../inventory/types.js';
import { backoffDelay } from '../inventory/sources/backoff.js';
import type { KubernetesSnapshot, KubernetesSource, KubernetesSourceStatus } from '../inventory/sources/kubernetes.js';
import { applyModel, type ApplyResult } from '../nft/apply.js';
import type { PreviousState } from '../nft/set-delta.js';
import { renderPlan } from '../nft/render.js';
import { NftStillRunningError, syncNftLauncher } from '../nft/nft-launcher.js';
import type { State } from '../pipeline.js';
import type { HostModel } from '../policy/model.js';
import { evaluate } from '../verdict/evaluate.js';
import { auditLines, readAuditRecords } from './audit-records.js';
import { reportStaged, reportStagedLive } from './staged-records.js';
import { PauseControl, pauseField, rearmOnStop } from './pause.js';
import { defaultAgentSettings, type AgentSettings } from './agent-config.js';
import { DropRecordReporter } from './drop-records.js';
import { cachedCount, countSetElements } from './rule-counters.js';
import { dropRecordSetNames, recordsDrops } from '../nft/render-drop-records.js';
import { listenerReach } from './listener-reach.js';
import { debounce, fileMaxWaitMs, type Debouncer } from './debounce.js';
import { deleteTable, tableHashNow } from './drift.js';
import { DriftRepair } from './drift-repair.js';
import { DriftPollDepth } from './drift-poll-depth.js';
import { ModelKeys } from './model-key.js';
import { ProblemLogGate } from './problem-log.js';
import { startPrediction, tableHashAfterApply, type HashPrediction } from './table-hash-after-apply.js';
import { NftWriteLock } from './nft-lock.js';
import { freshLines, snapshotConnections, summarize, verdictReport } from './dry-run.js';
import { keptMessage, removedMessage } from './last-good.js';
import { saveLastGood } from './last-good-store.js';
import { guardDecision, inboundSessions, sessionsCut } from './lockout-guard.js';
import { readProcNet } from './proc-net.js';
import { RolloutConfirm, rolloutConfirmSettings, type ConfirmEvent, type ProbationTicket } from './rollout-confirm.js';
import { confirmRefuser, confirmRefusalsInForce, inputRefusal, planConfirmRefusal, refuseUnconfirmed } from './confirm-refusal.js';
import { NoConfigError, policyCounts, readDesired, type Desired, type Memory } from './reconcile.js';
import { StoreMemo } from './store-memo.js';
import { fallbackStateDir, restorePersisted } from './restore.js';
import { kubeErrorToNote, noConfigStatus, retireNoConfigStatus, type NoConfig } from './status-report.js';
import { writeStatus, type AgentStatus, type ApplySummary } from './status-file.js';
import { RefusedChanges } from './refused-changes.js';
import { probeAfter, probeBefore, type ProbeFailure } from './rollout-probes.js';
import { logRefusals, logRetried, refusedStatus, restoreLastGood, rollbackPlan } from './rollback.js';
import { Deduper, dedupeKey } from './verdict-line.js';
import { dirsToWatch, watchDirs, type DirWatcher } from './watch.js';
import { PromMetrics, type DriftDetector } from './metrics.js';
import { rolloutSource } from './rollout-metrics.js';
import { observerStatus } from './observer-status.js';
import { HeapCompaction } from './heap-compaction.js';
import { MetricsServer } from './metrics-server.js';
import { monitorKinds, NftMonitor } from './nft-monitor.js';

export interface AgentOptions {
  readonly configFile: string | undefined;
  readonly overrides: ConfigOverrides;
  readonly nodeLabels?: Labels | undefined;
  /** Where to look for the persisted last good state before any config could be read. */
  readonly defaultStateDir?: string;
  readonly log: Logger;
}

type Trigger = 'start' | 'watch' | 'sighup' | 'resync' | 'drift' | 'kubernetes' | 'pause';

/** Retry of a Kubernetes source that could not start (kubeconfig unreadable, ...). */
const kubeRetryBackoff = { initialMs: 1000, maxMs: 30_000 };

/** Triggers that re-apply even when no input changed. */
const forcing: ReadonlySet<Trigger> = new Set(['start', 'sighup', 'drift', 'pause']);

export class Agent {
  readonly #opts: AgentOptions;
  readonly #log: Logger;
  readonly #memory: Memory = { lastGood: new Map(), texts: new Map() };
  readonly #deduper = new Deduper();
  /** Logs new drops of enforce mode, rate-limited (drop-records.ts). */
  readonly #drops = new DropRecordReporter();
  readonly #modelKeys = new ModelKeys();
  readonly #problemLog = new ProblemLogGate();
  readonly #startedAt = new Date().toISOString();
  #settings: AgentSettings = defaultAgentSettings;
  #watcher: DirWatcher | undefined;
  #debouncer: Debouncer | undefined;
  #timers: NodeJS.Timeout[] = [];
  #running: Promise<void> | undefined;
  #queued: Trigger | undefined;
  #stopping = false;
  #rev = 0;

  // What is in force
  #lastInputHash: string | undefined;
  #desired: Desired | undefined;
  #appliedModelHash: string | undefined;
  #appliedMode: RunMode | undefined;
  #appliedModel: HostModel | undefined;
  /** The ruleset in force was rendered as audit by a pause: its re-arm is not put on probation (commit-confirm). */
  #appliedByPause = false;
  /** Every write of the table (pass, drift repair, removeOnStop) holds it. */
  readonly #nftLock = new NftWriteLock();
  /** Restores the last applied ruleset; works while a pass runs. */
  readonly #drift = new DriftRepair(this.#nftLock);
  /** Cheap structural polls while the nft monitor runs, a full listing every few (drift-poll-depth.ts). */
  readonly #pollDepth = new DriftPollDepth();
  #previous: PreviousState | undefined;
  #refusedModelHash: string | undefined;
  #lastApply: ApplySummary | undefined;
  #lastError: { at: string; message: string } | undefined;
  #loggedRulesetHash: string | undefined;
  #driftBusy = false;
  #retry = false;
  #armedKey: string | undefined;
  /** Commit-confirm: pending confirmations (any origin) and, with rollout.confirm: manual, the agent's own. */
  readonly #rollout: RolloutConfirm;

  // Kubernetes API source (config.kubernetes)
  #kube: KubernetesSource | undefined;
  /** Options the running source was made with; a change restarts it. */
  #kubeKey: string | undefined;
  /** Counts source instances: a late snapshot of a replaced one is ignored. */
  #kubeGeneration = 0;
  #kubeSnapshot: { readonly snapshot: KubernetesSnapshot; readonly generation: number } | undefined;
  #kubeStartError: string | undefined;
  #kubeAttempts = 0;
  #kubeRetry: NodeJS.Timeout | undefined;
  #kubeStatusTimer: NodeJS.Timeout | undefined;
  /** connected/lastError/synced/stale as last written to the status file. */
  #kubeStatusKey: string | undefined;
  #loggedWaiting = false;
  /** Content key of the last good store last written (skip identical rewrites). */
  /** What the last good store holds on disk (store-memo.ts). */
  readonly #storeMemo = new StoreMemo();
  /** No usable config (and no last good one): what status reports instead of a ruleset. */
  #noConfig: NoConfig | undefined;
  /** The source's status when it was stopped with the agent, for the last status file. */
  #kubeStatusAtStop: KubernetesSourceStatus | undefined;
  /** The source error last copied into lastError (each outage is noted once). */
  #kubeErrorNoted: string | undefined;
  /** An unexpected error of the first pass: start() rejects with it (the process exits for a restart). */
  #startFailure: unknown;

  // Issue 11: Prometheus metrics and instant drift repair (nft monitor), each in its own module.
  readonly #metrics = new PromMetrics();
  readonly #metricsServer: MetricsServer;
  readonly #monitor: NftMonitor;
  #monitorPending = false;
  /** Break-glass pause (pause.ts): enforce is rendered as audit until the pause ends. */
  readonly #pause: PauseControl;
  /** Two garbage collections when idle after a model built from scratch (heap-compaction.ts). */
  readonly #compaction: HeapCompaction;

  constructor(opts: AgentOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#metricsServer = new MetricsServer(this.#metrics, opts.log.child({ component: 'metrics' }), () => this.#observerChanged());
    this.#monitor = new NftMonitor({
      log: opts.log.child({ component: 'drift-monitor' }),
      onTrigger: (reason) => void this.#onMonitorEvent(reason),
      onRestart: (kind) => {
        this.#metrics.monitorRestarted(kind);
        this.#observerChanged();
      },
    });
    this.#metrics.setMonitorChildren(() => this.#monitor.pids.size);
    // Drop-record entries in the kernel (recorded drops, enforce mode): counted from the record sets only, cached.
    this.#metrics.setDropRecordSource(cachedCount(async () => {
      const cfg = this.#desired?.cfg.config;
      if (cfg === undefined || !recordsDrops(this.#pause.modeFor(cfg.mode), dropRecordsOf(cfg))) return 0;
      return countSetElements(cfg.nft.path, cfg.nft.table, dropRecordSetNames());
    }));
    this.#metrics.setRolloutSource(rolloutSource(() => this.#desired?.cfg.config, () => this.#appliedModel));
    this.#rollout = new RolloutConfirm(opts.log, () => void this.#confirmCheck());
    this.#compaction = new HeapCompaction({ onCollected: (c) => this.#log.debug(c, 'heap collected after a full build') });
    this.#pause = new PauseControl({ log: opts.log, stateDir: () => this.#desired?.cfg.config.stateDir, onChange: () => void this.reconcile('pause') });
  }

  /** First pass, then watchers and timers. Resolves once the first pass is done. */
  async start(): Promise<void> {
    this.#log.info({ config: this.#opts.configFile ?? null, overrides: this.#opts.overrides }, 'agent starting');
    await this.#restorePersisted();
    this.#watcher = watchDirs(
      (dir, file) => this.#debouncer?.trigger(`${dir}/${file ?? ''}`),
      (dir, err) => this.#log.debug({ dir, err }, 'watch ended'),
    );
    this.#armTimers();
    await this.reconcile('start');
    if (this.#startFailure !== undefined) throw this.#startFailure;
  }

  /** Queue a pass (runs now if idle). */
  reconcile(trigger: Trigger): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    if (this.#running !== undefined) {
      // Keep the strongest pending trigger: a forced pass must not become a skippable one.
      if (this.#queued === undefined || forcing.has(trigger)) this.#queued = trigger;
      return this.#running;
    }
    const run = async (t: Trigger): Promise<void> => {
      const fullBuilds = this.#memory.stateBuilder?.fullBuilds ?? 0;
      this.#compaction.passStarting();
      try {
        await this.#pass(t);
      } catch (err) {
        // A bug or an unexpected system error: log, remember, keep running (in the first pass: start() rejects and the process exits).
        this.#noteError(err instanceof Error ? err.message : String(err));
        this.#log.error({ err, trigger: t }, 'reconcile failed');
        if (t === 'start') this.#startFailure = err;
      } finally {
        this.#compaction.passEnded((this.#memory.stateBuilder?.fullBuilds ?? 0) !== fullBuilds);
      }
      // Passes run one at a time, so #rev is still this pass's.
      this.#log.debug({ rev: this.#rev, trigger: t }, 'pass done');
      const next = this.#queued;
      this.#queued = undefined;
      if (next !== undefined && !this.#stopping) await run(next);
    };
    this.#running = run(trigger).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async stop(signal: string): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#log.info({ signal }, 'shutting down');
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#rollout.stop();
    this.#pause.stop();
    this.#compaction.stop();
    this.#debouncer?.cancel();
    this.#watcher?.close();
    this.#monitor.stop();
    await this.#metricsServer.stop();
    this.#kubeStatusAtStop = this.#kubeStatus();
    await this.#stopKubernetes();
    // Let an nft transaction in flight finish (bounded).
    if (this.#running !== undefined) {
      await Promise.race([this.#running, new Promise((r) => setTimeout(r, 10_000))]);
    }
    const cfg = this.#desired?.cfg.config;
    this.#drift.forget();
    if (cfg !== undefined && !this.#settings.removeOnStop) await rearmOnStop(this.#pause, cfg, this.#appliedModel, this.#appliedMode, this.#nftLock, this.#log);
    if (cfg !== undefined && this.#settings.removeOnStop && this.#appliedModelHash !== undefined) {
      const r = await this.#nftLock.run(() => deleteTable(cfg.nft.path, cfg.nft.table));
      if (r.error !== undefined) this.#log.error({ table: cfg.nft.table, error: r.error }, 'could not remove table on stop');
      else this.#log.warn({ table: cfg.nft.table }, 'removeOnStop: table deleted, host is unfiltered by nodewall');
    } else if (cfg !== undefined && this.#appliedModelHash !== undefined) {
      this.#log.info({ table: cfg.nft.table }, 'ruleset left in force');
    }
    await this.#writeStatus(true).catch(() => undefined);
    // Its shells would otherwise outlive the agent in a process that goes on (tests, the bench).
    syncNftLauncher(false);
  }

  // --- one pass --------------------------------------------------------------

  async #pass(trigger: Trigger): Promise<void> {
    const rev = ++this.#rev;
    const log = this.#log.child({ rev, trigger });
    log.debug('pass started');
    let d: Desired;
    try {
      d = await readDesired({
        configFile: this.#opts.configFile, overrides: this.#opts.overrides, nodeLabels: this.#opts.nodeLabels, kubernetes: this.#kubeSnapshot,
      }, this.#memory);
    } catch (err) {
      if (!(err instanceof NoConfigError)) throw err;
      const problems = err.cause instanceof InputError ? err.cause.problems : [];
      for (const p of problems) log.error({ file: p.pos.file, line: p.pos.line, col: p.pos.col, field: p.field, code: p.code }, formatProblem(p));
      this.#noteError(err.message);
      this.#noConfig = { file: this.#opts.configFile ?? '', problems, ...fallbackStateDir(this.#opts) };
      log.error({ error: err.message, statusDir: this.#noConfig.dir, statusDirFrom: this.#noConfig.from },
        `no usable config and no last good one: nothing applied, retrying when the config changes (status in ${this.#noConfig.dir}, the ${this.#noConfig.from === 'override' ? '--state-dir override' : 'default state dir'})`);
      this.#syncWatch(this.#opts.configFile === undefined ? [] : [this.#opts.configFile], []);
      await this.#writeStatus(false).catch((e) => log.error({ err: e }, 'cannot write status file'));
      return;
    }
    if (this.#noConfig !== undefined && this.#noConfig.dir !== d.cfg.config.stateDir) {
      await retireNoConfigStatus(this.#noConfig.dir, process.pid).catch((err) => log.warn({ err }, 'cannot remove the no-config status file'));
    }
    this.#noConfig = undefined;
    // A file still being written: read it again once quiet (its last good version stays meanwhile).
    if (d.sources.issues.some((e) => e.kind === 'unsettled')) this.#debouncer?.trigger('unsettled');
    this.#settings = d.cfg.agent;
    this.#log.level = d.cfg.agent.logLevel;
    this.#armTimers();
    this.#syncObservers(d.cfg.config);
    this.#desired = d;
    await this.#pause.refresh();
    this.#syncWatch(d.cfg.file === undefined ? [] : [d.cfg.file, ...explicitFiles(d)], d.sources.dirs);
    await this.#syncKubernetes(d.cfg.config, d.nodeName);
    if (d.waitingForKubernetes) {
      // Just started, and it handed out its disk cache: the queued 'kubernetes' pass applies that.
      if (this.#kubeSnapshot !== undefined) return;
      // No half-known cluster: whatever is in the kernel stays until the API (or its cache) answers.
      if (!this.#loggedWaiting) log.warn({}, 'waiting for the first complete read of the Kubernetes API (no cache): nothing applied yet');
      this.#loggedWaiting = true;
      await this.#writeStatus(false).catch(() => undefined);
      return;
    }
    this.#loggedWaiting = false;
    // Our own change was just rolled back: the pass queued by #confirmCheck builds the model with its refusal.
    if (await this.#confirmCheck()) return;

    const changed = d.inputHash !== this.#lastInputHash;
    if (!changed && !forcing.has(trigger)) {
      log.debug('inputs unchanged');
      return;
    }
    this.#lastInputHash = d.inputHash;
    // Kubernetes passes (pod churn) log them only when they changed (problem-log.ts).
    if ((changed || trigger !== 'drift') && this.#problemLog.fresh(d, trigger !== 'kubernetes')) this.#logInputProblems(d, log);
    // A refused change tried again is news even when the problem log is quiet (Kubernetes passes).
    else logRetried(d, log);

    // While paused, enforce is rendered as audit (pause.ts); drift repair keeps what was applied.
    const config = this.#pause.effective(d.cfg.config);
    let model = d.state.model;
    let modelHash = this.#modelKeys.keyOf(model, this.#memory.stateBuilder?.madeIncrementally(model) === true);
    const counts = policyCounts(d.state);

    if (config.mode === 'dry-run') {
      // dry-run never writes: a table applied earlier is left as it is, not restored.
      this.#drift.forget();
      this.#logRuleset(model, config.nft.table, config.mode, modelHash, log);
      await this.#dryRunReport(model, log, true);
      this.#lastApply = { at: new Date().toISOString(), outcome: 'dry-run', trigger };
      if (this.#appliedModelHash !== undefined) {
        log.warn({ table: config.nft.table }, 'mode is dry-run but the table applied earlier is still in the kernel (dry-run never writes); remove it with `nft delete table inet ' + config.nft.table + '` (and any `' + config.nft.table + '_next0`..`_next3` that `nft list tables inet` shows: a full replace that did not finish)');
      }
    } else {
      // A change rolled back before (a rollout probe, commit-confirm) whose inputs are still exactly the same:
      // keep the ruleset in force; a pause beginning or ending switches that ruleset's mode, nothing else.
      const held = inputRefusal(this.#memory.refused, d.inputHash);
      if (held !== undefined && (this.#appliedModelHash !== undefined || held.by === confirmRefuser)) {
        // Only a pause makes that switch: a refused input's own mode change (audit -> enforce) stays refused.
        const pauseSwitch = config.mode !== d.cfg.config.mode || this.#appliedByPause;
        if (pauseSwitch && this.#appliedModel !== undefined && this.#appliedModelHash !== undefined && this.#appliedMode !== undefined && this.#appliedMode !== config.mode) {
          model = this.#appliedModel;
          modelHash = this.#appliedModelHash;
          log.info({ refused: true, mode: config.mode }, 'input refused earlier (rolled back): the ruleset in force stays, in the new mode');
        } else {
          log[held.by === confirmRefuser ? 'warn' : 'debug']({ refused: true, by: held.by, rolledBackAt: held.at, ...(held.by === confirmRefuser ? { confirm: 'refused' } : {}) },
            'input refused earlier (rolled back): the previous ruleset stays');
          this.#lastApply = { at: new Date().toISOString(), outcome: 'refused', trigger, error: `rolled back at ${held.at} by ${held.by}: waiting for a changed input` };
          await this.#persist(d);
          return;
        }
      }
      const confirm = rolloutConfirmSettings(config);
      // The ruleset is the model in a mode: switching audit -> enforce is a change too.
      const rulesetKey = `${config.mode}|${modelHash}`;
      const changesRuleset = modelHash !== this.#appliedModelHash || config.mode !== this.#appliedMode;
      if (config.mode === 'enforce' && modelHash !== this.#appliedModelHash) {
        const refused = await this.#lockoutGuard(model, modelHash, log);
        if (refused) {
          // Re-checked on the next resync: the session may be gone by then.
          this.#lastInputHash = undefined;
          this.#lastApply = { at: new Date().toISOString(), outcome: 'refused', trigger };
          this.#metrics.lockoutRefused();
          await this.#persist(d);
          return;
        }
      }
      this.#refusedModelHash = undefined;
      const inForce = { model: this.#appliedModel, hash: this.#appliedModelHash, mode: this.#appliedMode };
      const baseline = await probeBefore({ prev: inForce.model, prevMode: inForce.mode, next: model, mode: config.mode, settings: config.rollout, kubeServer: this.#kube?.server, log });
      const t0 = performance.now();
      let result: ApplyResult;
      const probation: { ticket?: ProbationTicket | undefined } = {};
      try {
        result = await this.#applyLocked(model, config, trigger === 'drift' || this.#appliedMode !== config.mode, config.mode, async () => {
          // A change goes on probation unless its input was confirmed before (a restart, a reboot) or the kernel already
          // holds it; record and watchdog come first, so an apply that dies half-way is still rolled back.
          // Not while paused (audit drops nothing), nor the re-arm when a pause ends (see README "Rolling out safely").
          if (confirm.confirm === 'manual' && changesRuleset && !this.#pause.paused && !this.#appliedByPause && this.#rollout.needsProbation(d.inputHash, rulesetKey)
            && (await applyModel(model, {
              nftPath: config.nft.path, table: config.nft.table, mode: config.mode, dropRecords: dropRecordsOf(config), timeoutMs: config.nft.timeoutSeconds * 1000, dryRun: true,
            })).kind !== 'noop') {
            probation.ticket = await this.#rollout.beforeApply(this.#confirmTarget(config), {
              seconds: confirm.confirmSeconds, inputHash: d.inputHash, modelHash: rulesetKey, previousApplied: this.#drift.applied, previousModelHash: this.#appliedModelHash,
              lastGood: this.#memory.lastGood, plan: (before, lastGoodBefore) => planConfirmRefusal(d, model, before, lastGoodBefore),
            });
          }
        });
      } catch (err) {
        const durationMs = Math.round(performance.now() - t0);
        const message = err instanceof Error ? err.message : String(err);
        log.error({ err, table: config.nft.table, durationMs }, 'apply failed: the previous ruleset stays in force');
        this.#lastApply = { at: new Date().toISOString(), outcome: 'failed', trigger, durationMs, error: message };
        this.#metrics.applyFailed();
        this.#noteError(message);
        this.#previous = undefined;
        // Put on probation by this pass, never loaded: withdrawn, not rolled back (and refused) at its deadline.
        const ticket = probation.ticket;
        if (ticket !== undefined && err instanceof NftStillRunningError) {
          // Its nft was killed but never went away: it may still load this change after any check of the table
          // now, so the record is not withdrawn; the deadline rolls back whatever got loaded.
          log.warn({ confirm: 'pending', id: ticket.probation.record.id }, 'the failed apply\'s nft may still commit: the change stays on probation, and is rolled back at its deadline');
        } else if (ticket !== undefined) {
          await this.#nftLock.run(() => this.#rollout.withdraw(this.#confirmTarget(config), ticket, `not loaded: ${message}`, { kernelUnchanged: true }))
            .catch((e: unknown) => log.error({ err: e }, 'cannot withdraw the pending confirmation of the failed apply: it is rolled back at its deadline'));
        }
        // Retried on the next timer tick, even though no input changes.
        this.#lastInputHash = undefined;
        this.#retry = true;
        await this.#persist(d);
        return;
      }
      const durationMs = Math.round(performance.now() - t0);
      this.#metrics.applied(result.kind, performance.now() - t0, result);
      this.#retry = false;
      this.#previous = result.state;
      this.#appliedModelHash = modelHash;
      this.#appliedModel = model;
      this.#appliedMode = config.mode;
      this.#appliedByPause = config.mode !== d.cfg.config.mode;
      log.info({
        table: config.nft.table, mode: config.mode, kind: result.kind, reason: result.reason,
        rules: result.rules, sets: result.sets, elements: result.elements, added: result.added, removed: result.removed,
        policies: counts, durationMs, durationsMs: result.durationsMs, ...memoryMB(),
      }, result.kind === 'noop' ? 'ruleset unchanged' : 'ruleset applied');
      log.debug({ script: result.script }, 'ruleset script');
      this.#lastApply = {
        at: new Date().toISOString(), outcome: result.kind === 'noop' ? 'noop' : 'applied', trigger, kind: result.kind, durationMs,
      };
      const heldByConfirm = result.kind === 'noop' ? confirmRefusalsInForce(this.#memory.refused, d) : [];
      if (heldByConfirm.length > 0) {
        // The input as read was not applied: its unconfirmed policy versions stay left out (status: refused).
        const policies = heldByConfirm.flatMap((r) => r.policies.map((p) => p.policy));
        log.warn({ confirm: 'refused', refused: true, policies }, `not applying ${policies.join(', ')}: rolled back unconfirmed, refused until ${policies.length === 1 ? 'it changes' : 'they change'} (see nodewall status)`);
        this.#lastApply = { ...this.#lastApply, outcome: 'refused', error: `${policies.join(', ')}: rolled back unconfirmed, waiting for a changed version` };
      }
      if (config.mode === 'audit') await this.#auditReport(log);
      if (baseline !== undefined && result.kind !== 'noop' && inForce.model !== undefined && inForce.hash !== undefined) {
        const broken = await probeAfter(baseline);
        if (broken !== undefined) {
          await this.#rollBack(d, { model: inForce.model, hash: inForce.hash, mode: inForce.mode ?? config.mode }, broken, trigger, log, probation.ticket);
          return;
        }
        log.info({ probes: baseline.passed.map((p) => p.name) }, 'rollout probes pass after the change');
      }
    }
    await this.#persist(d);
  }

  /** Apply and read back under the lock, so drift repair never sees a transaction in flight; `before` runs first, inside it. */
  async #applyLocked(model: HostModel, config: NodewallConfig, readKernel: boolean, mode: RunMode = config.mode, before?: () => Promise<void>): Promise<ApplyResult> {
    return this.#nftLock.run(async () => {
      await before?.();
      // After drift, or a mode switch, read the kernel instead of trusting memory.
      const fromMemory = !(this.#previous === undefined || readKernel);
      let prediction: HashPrediction | undefined;
      const r = await applyModel(model, {
        nftPath: config.nft.path,
        table: config.nft.table,
        mode,
        dropRecords: dropRecordsOf(config),
        timeoutMs: config.nft.timeoutSeconds * 1000,
        ...(config.nft.maxElementsPerTransaction === undefined ? {} : { maxElementsPerTransaction: config.nft.maxElementsPerTransaction }),
        ...(fromMemory && this.#previous !== undefined ? { previous: this.#previous, modelDeltas: this.#memory.stateBuilder?.modelDeltas } : {}),
        // The drift hash of a full load predicted while it loads, instead of a read-back after it.
        onFullLoad: (rendered) => void (prediction = startPrediction({ nftPath: config.nft.path, table: config.nft.table, timeoutMs: config.nft.timeoutSeconds * 1000 }, rendered)),
      });
      const { hash: tableHash, source, skipped } = await tableHashAfterApply(this.#drift.applied, { nftPath: config.nft.path, table: config.nft.table, mode, fromMemory, result: r }, prediction);
      this.#log.debug({ source, skipped }, 'drift hash recorded');
      this.#drift.record({ nftPath: config.nft.path, table: config.nft.table, mode, timeoutMs: config.nft.timeoutSeconds * 1000, model, tableHash, structureHash: r.structureHash, dropRecords: dropRecordsOf(config), build: r.build }, source);
      return r;
    });
  }

  /** A rollout probe broke: restore the ruleset in force before, refuse the change (rollback.ts). */
  async #rollBack(d: Desired, prev: { model: HostModel; hash: string; mode: RunMode }, broken: ProbeFailure, trigger: Trigger, log: Logger, ticket?: ProbationTicket): Promise<void> {
    const config = d.cfg.config;
    const refused = (this.#memory.refused ??= new RefusedChanges());
    const plan = rollbackPlan(d, prev.model, broken, this.#memory.lastGood);
    log.error({ rollback: true, probe: broken.probe, probeError: broken.error, attempts: broken.attempts, policies: plan.policies },
      plan.message);
    let restored = true;
    try {
      // The ruleset in force before, in the mode it was in (a switch to enforce is rolled back to audit).
      const r = await this.#applyLocked(prev.model, config, prev.mode !== config.mode, prev.mode);
      this.#previous = r.state;
      this.#appliedModelHash = prev.hash;
      this.#appliedModel = prev.model;
      this.#appliedMode = prev.mode;
      log.warn({ rollback: true, kind: r.kind, probe: broken.probe, policies: plan.policies }, 'rollback: previous ruleset restored');
      // The change was on probation (rollout.confirm: manual): it is gone, so is its confirmation; the probe refuses it.
      if (ticket !== undefined) {
        await this.#nftLock.run(() => this.#rollout.withdraw(this.#confirmTarget(config), ticket, `rolled back by rollout probe ${broken.probe}`))
          .catch((err: unknown) => log.error({ err }, 'cannot withdraw the pending confirmation of the rolled-back change: it is rolled back again at its deadline'));
      }
    } catch (err) {
      // The change stays in the kernel; the next pass (retry on the timer) applies the model with the refusal in force.
      log.error({ err, rollback: true }, 'rollback: restoring the previous ruleset failed; retrying with the change refused');
      restored = false;
      this.#previous = undefined;
      this.#retry = true;
    }
    refused.refuse(plan.refusal);
    this.#metrics.rolledBack('probe');
    // A copy: the merge's map may be the merge memo's own (shared between passes).
    const lastGood = new Map(d.merge.lastGood);
    restoreLastGood(lastGood, this.#memory.lastGood, plan.refusal.policies);
    await refused.save(config.stateDir).catch((err: unknown) => log.error({ err }, 'cannot save the refused changes'));
    this.#noteError(plan.message);
    this.#lastApply = { at: new Date().toISOString(), outcome: restored ? 'rolled-back' : 'failed', trigger, error: plan.message };
    // The next pass builds the model with the refusal in force (the previous one, unless other inputs changed).
    this.#lastInputHash = undefined;
    await this.#persist(d, lastGood);
  }

  async #lockoutGuard(model: HostModel, modelHash: string, log: Logger): Promise<boolean> {
    const mode = this.#settings.lockoutGuard;
    if (mode === 'off') return false;
    let sockets;
    try {
      sockets = await readProcNet();
    } catch (err) {
      log.warn({ err }, 'lockout guard: cannot read /proc/net, sessions not checked');
      return false;
    }
    const decision = guardDecision(sessionsCut(model, inboundSessions(sockets), evaluate), mode);
    for (const c of decision.cut) {
      log.warn({
        lockout: true, session: c.text, peer: c.session.peer, peerPort: c.session.peerPort, localPort: c.session.localPort,
        policy: c.policy, rule: c.rule, reason: c.reason, lockoutGuard: mode,
      }, `LOCKOUT WARNING: the new ruleset would cut the established session ${c.text} (${c.policy === null ? c.rule : `${c.policy} ${c.rule}`})`);
    }
    if (decision.action === 'refuse') {
      if (this.#refusedModelHash !== modelHash) {
        log.error({ sessions: decision.cut.map((c) => c.text), lockoutGuard: mode },
          `lockoutGuard refuse: keeping the previous ruleset; ${decision.cut.length} established session(s) would be cut`);
      }
      this.#refusedModelHash = modelHash;
      this.#noteError(`lockout guard refused a change that would cut ${decision.cut.map((c) => c.text).join(', ')}`);
      return true;
    }
    return false;
  }

  // --- reports -----------------------------------------------------------------

  #logRuleset(model: HostModel, table: string, mode: RunMode, modelHash: string, log: Logger): void {
    if (modelHash === this.#loggedRulesetHash) return;
    this.#loggedRulesetHash = modelHash;
    let plan;
    try {
      // What enforce mode would load (render only: no kernel access).
      plan = renderPlan(model, { table, mode: 'enforce' });
    } catch (err) {
      log.error({ err }, 'dry-run: the ruleset cannot be rendered');
      return;
    }
    log.info({
      table, mode, dryRun: true,
      rules: plan.ruleCount,
      sets: plan.sets.size,
      elements: [...plan.sets.values()].reduce((n, s) => n + s.elements.length, 0),
      entries: { ingress: model.ingress.entries.length, egress: model.egress.entries.length },
      enforced: { ingress: model.ingress.enforced, egress: model.egress.enforced },
    }, 'dry-run: ruleset that would be applied');
    log.debug({ script: plan.script }, 'dry-run: ruleset script');
  }

  /** Verdict lines for live connections; only the ones not reported before. */
  async #dryRunReport(model: HostModel, log: Logger, summary: boolean): Promise<void> {
    const snap = await snapshotConnections();
    if (snap.siError !== undefined) log.debug({ error: snap.siError }, 'systeminformation failed; using /proc/net only');
    const lines = verdictReport(model, snap, evaluate);
    const fresh = freshLines(lines, this.#deduper);
    for (const l of fresh) log.info({ verdictLine: true, ...l }, `${l.verdict} ${l.direction} ${l.proto}/${l.port ?? '-'} ${l.peer}`);
    reportStagedLive(model, snap, (l) => this.#deduper.fresh(dedupeKey(l)), log, evaluate);
    // Who can reach each listener, by identity and deciding rule (listener-reach.ts); once per listener and outcome.
    for (const r of listenerReach(model, snap.sockets, evaluate, snap.processes)) if (this.#deduper.fresh(`reach|${r.text}`)) log.info({ listenerReach: true, ...r }, r.text);
    if (summary || fresh.length > 0) log.info({ ...summarize(lines), new: fresh.length }, 'dry-run: verdicts for live connections');
  }

  async #auditReport(log: Logger): Promise<void> {
    const cfg = this.#desired?.cfg.config;
    const model = this.#appliedModel;
    if (cfg === undefined || model === undefined) return;
    let records;
    try {
      records = await readAuditRecords(cfg.nft.path, cfg.nft.table);
    } catch (err) {
      log.warn({ err }, 'audit: cannot read the audit sets');
      return;
    }
    const lines = auditLines(records, model, evaluate);
    const fresh = lines.filter((l) => this.#deduper.fresh(dedupeKey(l)));
    for (const l of fresh) log.warn({ verdictLine: true, ...l }, `audit: ${l.verdict} ${l.direction} ${l.proto}/${l.port ?? '-'} ${l.peer}`);
    if (fresh.length > 0) log.info({ records: lines.length, new: fresh.length }, 'audit: would-drop records');
  }

  /** Staged policies: flows whose verdict they would change (staged-records.ts). */
  async #stagedReport(log: Logger): Promise<void> {
    const cfg = this.#desired?.cfg.config;
    if (cfg === undefined || this.#appliedModel === undefined) return;
    await reportStaged(this.#appliedModel, { nftPath: cfg.nft.path, table: cfg.nft.table }, (l) => this.#deduper.fresh(dedupeKey(l)), log, evaluate);
  }

  // --- drift, timers, watch --------------------------------------------------------

  /** (Re-)arm timers and the debouncer when their settings changed (first pass, config edits). */
  #armTimers(): void {
    const s = this.#settings;
    const key = `${s.driftCheckSeconds}|${s.resyncSeconds}|${s.debounceMs}`;
    if (key === this.#armedKey || this.#stopping) return;
    this.#armedKey = key;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    if (s.driftCheckSeconds > 0) this.#timers.push(setInterval(() => void this.#tick(), s.driftCheckSeconds * 1000));
    if (s.resyncSeconds > 0) this.#timers.push(setInterval(() => void this.reconcile('resync'), s.resyncSeconds * 1000));
    const pending = this.#debouncer?.pending === true;
    this.#debouncer?.cancel();
    this.#debouncer = debounce(() => void this.reconcile('watch'), s.debounceMs, undefined, fileMaxWaitMs(s.debounceMs));
    if (pending) this.#debouncer.trigger('rearm');
  }

  /** Drift check in enforce/audit; new connections in dry-run; new records in audit. */
  async #tick(): Promise<void> {
    if (this.#driftBusy || this.#stopping) return;
    await this.#driftExclusive('periodic check failed', async () => {
      // While a pass runs (a slow or big input), drift is still repaired from the last applied ruleset.
      if (this.#running !== undefined) {
        await this.#repairDrift();
        return;
      }
      const cfg = this.#desired?.cfg.config;
      if (cfg === undefined) return;
      await this.#confirmCheck();
      const log = this.#log.child({ trigger: 'timer' });
      if (cfg.mode === 'dry-run') {
        await this.#dryRunReport(this.#desired!.state.model, log, false);
        return;
      }
      if (this.#retry) {
        await this.reconcile('resync');
        return;
      }
      if (this.#appliedModelHash === undefined) return;
      if (await this.#repairDrift()) return;
      if (this.#pause.modeFor(cfg.mode) === 'audit') await this.#auditReport(log);
      await this.#stagedReport(log);
      if (recordsDrops(this.#pause.modeFor(cfg.mode), dropRecordsOf(cfg)) && this.#appliedModel !== undefined) {
        await this.#drops.tick({ nftPath: cfg.nft.path, table: cfg.nft.table, model: this.#appliedModel, log, evaluate });
      } else if (this.#pause.paused) this.#drops.paused(log);
    });
  }

  /** Runs a drift-side check as the only one (#driftBusy); a monitor event queued meanwhile gets its own after. */
  async #driftExclusive(failed: string, work: () => Promise<void>): Promise<void> {
    this.#driftBusy = true;
    try {
      await work();
    } catch (err) {
      this.#log.error({ err }, failed);
    } finally {
      this.#driftBusy = false;
    }
    this.#runQueuedMonitorEvent();
  }

  /** A monitor event that arrived while a check ran still gets its own check. */
  #runQueuedMonitorEvent(): void {
    if (!this.#monitorPending) return;
    this.#monitorPending = false;
    void this.#onMonitorEvent('queued event');
  }

  /** True when the table had drifted (restored or not). */
  async #repairDrift(detectedBy: DriftDetector = 'poll'): Promise<boolean> {
    // An unconfirmed change at its deadline is being rolled back (by the watchdog or #confirmCheck), not repaired.
    if (this.#rollout.pendingDue) return false;
    const depth = detectedBy === 'poll' ? this.#pollDepth.next(this.#monitor.pids.size === monitorKinds.length) : 'full';
    const r = await this.#drift.check(this.#log.child({ trigger: 'drift', detectedBy }), depth);
    if (r.kind === 'nothing-applied' || r.kind === 'in-sync') return false;
    this.#metrics.driftRepair(detectedBy, r.kind);
    // The kernel was rebuilt: the next pass reads it instead of trusting memory.
    this.#previous = undefined;
    if (r.kind === 'restored') {
      this.#lastApply = { at: new Date().toISOString(), outcome: 'applied', trigger: 'drift', kind: r.result.kind, durationMs: r.durationMs };
    } else {
      this.#lastApply = { at: new Date().toISOString(), outcome: 'failed', trigger: 'drift', error: r.error };
      this.#noteError(`drift repair: ${r.error}`);
    }
    await this.#writeStatus(false).catch((err) => this.#log.error({ err }, 'cannot write status file'));
    return true;
  }

  /** An nft monitor event on our table: the same check as the timer's, now (coalesced; never two at once). */
  async #onMonitorEvent(reason: string): Promise<void> {
    if (this.#stopping) return;
    if (this.#driftBusy) {
      this.#monitorPending = true;
      return;
    }
    await this.#driftExclusive('drift check after a monitor event failed', async () => {
      this.#log.debug({ reason }, 'drift monitor: table event, checking');
      await this.#repairDrift('monitor');
    });
  }

  /** The metrics endpoint bound or failed, a monitor child restarted: `nodewall status` shows it (after the restart's spawn). */
  #observerChanged(): void {
    setImmediate(() => {
      if (!this.#stopping) void this.#writeStatus(false).catch((err) => this.#log.error({ err }, 'cannot write status file'));
    });
  }

  /** Metrics endpoint, the counters' table, and the nft monitor follow the config. */
  #syncObservers(config: NodewallConfig): void {
    if (this.#stopping) return;
    const s = this.#settings;
    const writes = config.mode !== 'dry-run';
    const target = { nftPath: config.nft.path, table: config.nft.table };
    this.#metrics.target(writes ? target : undefined);
    syncNftLauncher(config.nft.launcher !== false, this.#log.child({ component: 'nft-launcher' }));
    this.#monitor.sync(writes && s.driftMonitor ? target : undefined);
    void this.#metricsServer.sync(s.metricsListen);
  }

  // --- commit-confirm (rollout-confirm.ts) ----------------------------------------------

  #confirmTarget(config: NodewallConfig): { stateDir: string; nftPath: string; table: string; timeoutMs: number } {
    return { stateDir: config.stateDir, nftPath: config.nft.path, table: config.nft.table, timeoutMs: config.nft.timeoutSeconds * 1000 };
  }

  /**
   * Enforce pending confirmations (start, every pass and tick, the deadline timer); follow a rollback of our own
   * change and refuse it (confirm-refusal.ts). True when our own change was rolled back: a pass is queued.
   */
  async #confirmCheck(): Promise<boolean> {
    const config = this.#desired?.cfg.config;
    if (config === undefined || this.#stopping) return false;
    let e: ConfirmEvent | undefined;
    // A pause is the operator's break-glass: a change pending confirmation ends as not confirmed (README).
    const endNow = this.#pause.modeFor(config.mode) !== config.mode ? 'the node was paused (break-glass): a pending change ends as not confirmed' : undefined;
    try {
      e = await this.#nftLock.run(async () => {
        const ev = await this.#rollout.check(this.#confirmTarget(config), endNow === undefined ? {} : { endNow });
        if (ev?.kind === 'rolled-back' && ev.own) {
          // The kernel holds the table from before the change again: drift repair keeps that one (when known).
          const prev = ev.previousApplied;
          if (prev !== undefined) this.#drift.record({ ...prev, tableHash: await tableHashNow(prev.nftPath, prev.table) });
          else this.#drift.forget();
          this.#appliedModelHash = ev.previousModelHash;
          this.#appliedModel = prev?.model;
          this.#appliedMode = prev?.mode;
          this.#appliedByPause = false;
          const refused = (this.#memory.refused ??= new RefusedChanges());
          const lastGood = new Map(this.#memory.lastGood); // copy on write: the map may be the merge memo's
          const r = refuseUnconfirmed(refused, lastGood, ev.record, ev.plan, ev.detail);
          this.#memory.lastGood = lastGood;
          if (r !== undefined) await refused.save(config.stateDir).catch((err: unknown) => this.#log.error({ err }, 'cannot save the refused changes'));
        }
        return ev;
      });
    } catch (err) {
      this.#log.error({ err }, 'commit-confirm check failed');
      return false;
    }
    if (e === undefined) return false;
    if (e.kind === 'error') this.#noteError(e.message);
    if (e.kind === 'rolled-back') {
      this.#metrics.rolledBack('confirm_deadline');
      this.#previous = undefined;
      this.#lastApply = { at: new Date().toISOString(), outcome: 'rolled-back', trigger: 'confirm-deadline', error: `${e.record.origin} change ${e.record.id} ${e.detail}` };
      this.#noteError(`change ${e.record.id} (${e.record.origin}) was not confirmed by ${e.record.deadline}: rolled back`);
    }
    await this.#writeStatus(false).catch((err) => this.#log.error({ err }, 'cannot write status file'));
    if (e.kind !== 'rolled-back' || !e.own) return false;
    this.#lastInputHash = undefined;
    void this.reconcile('resync');
    return true;
  }

  #syncWatch(files: readonly string[], dirs: readonly string[]): void {
    this.#watcher?.sync(dirsToWatch(dirs, files));
  }

  // --- Kubernetes API source ---------------------------------------------------------

  /** Start, restart or stop the source so that it matches the config. */
  async #syncKubernetes(config: NodewallConfig, nodeName: string): Promise<void> {
    const k = config.kubernetes;
    const labels: Labels = { ...config.nodeLabels, ...this.#opts.nodeLabels };
    const key = k === undefined ? undefined : JSON.stringify({ k, stateDir: config.stateDir, nodeName, labels, labelFilter: config.labelFilter });
    if (key === this.#kubeKey || this.#stopping) return;
    await this.#stopKubernetes();
    this.#kubeKey = key;
    // The last snapshot stays until the new source hands out its own (a config edit must not unknow the cluster).
    if (k === undefined || key === undefined) {
      this.#kubeSnapshot = undefined;
      return;
    }
    this.#kubeAttempts = 0;
    this.#kubeStatusTimer = setInterval(() => void this.#kubeStatusCheck(), 1000);
    await this.#startKubernetes(key, {
      ...k,
      stateDir: config.stateDir,
      node: { name: nodeName, labels, labelFilter: config.labelFilter },
    });
  }

  async #startKubernetes(key: string, opts: ConstructorParameters<typeof KubernetesSource>[0]): Promise<void> {
    const generation = ++this.#kubeGeneration;
    // Loaded only when configured: a file-only node never reads the source (nor the client library).
    const { KubernetesSource: Source } = await import('../inventory/sources/kubernetes.js');
    if (this.#stopping || this.#kubeKey !== key) return;
    const source = new Source({ ...opts, logger: this.#log.child({ component: 'kubernetes' }) });
    this.#kube = source;
    try {
      await source.start((s) => this.#onSnapshot(generation, s));
      this.#kubeStartError = undefined;
      this.#kubeAttempts = 0;
    } catch (err) {
      if (this.#kube !== source) return;
      // The cached snapshot (if any) has been handed out already: keep enforcing, retry.
      const message = err instanceof Error ? err.message : String(err);
      this.#kubeStartError = message;
      this.#noteError(`kubernetes source: ${message}`);
      await source.stop().catch(() => undefined);
      const delay = backoffDelay(++this.#kubeAttempts, kubeRetryBackoff);
      this.#log.error({ component: 'kubernetes', error: message, retryInMs: delay }, 'kubernetes source cannot start: the last state stays in force, retrying');
      if (this.#kubeRetry !== undefined) clearTimeout(this.#kubeRetry);
      this.#kubeRetry = setTimeout(() => {
        this.#kubeRetry = undefined;
        if (!this.#stopping && this.#kubeKey === key && this.#kube === source) void this.#startKubernetes(key, opts);
      }, delay);
      await this.#kubeStatusCheck();
    }
  }

  /** Settles when the pass that enforces `s` is done (the source writes its first full cache after it). */
  #onSnapshot(generation: number, s: KubernetesSnapshot): Promise<void> | undefined {
    if (this.#stopping || generation !== this.#kubeGeneration) return undefined;
    // The disk cache only stands in until something better is known (a restarted source re-reads it).
    if (s.origin === 'cache' && this.#kubeSnapshot !== undefined) return undefined;
    this.#kubeSnapshot = { snapshot: s, generation };
    this.#metrics.kubernetesSnapshot(s.origin);
    return this.reconcile('kubernetes');
  }

  async #stopKubernetes(): Promise<void> {
    if (this.#kubeRetry !== undefined) clearTimeout(this.#kubeRetry);
    if (this.#kubeStatusTimer !== undefined) clearInterval(this.#kubeStatusTimer);
    this.#kubeRetry = undefined;
    this.#kubeStatusTimer = undefined;
    const source = this.#kube;
    this.#kube = undefined;
    this.#kubeKey = undefined;
    this.#kubeStartError = undefined;
    if (source !== undefined) await source.stop().catch((err: unknown) => this.#log.error({ err }, 'kubernetes source: error while stopping'));
  }

  #kubeStatus(): KubernetesSourceStatus | undefined {
    const st = this.#kube?.status();
    if (st === undefined) return undefined;
    return this.#kubeStartError === undefined ? st : { ...st, connected: false, lastError: this.#kubeStartError };
  }

  /** The status file follows the source's connection state, which changes without any reconcile pass. */
  async #kubeStatusCheck(): Promise<void> {
    const st = this.#kubeStatus();
    if (st === undefined || kubeStatusKey(st) === this.#kubeStatusKey) return;
    await this.#writeStatus(false).catch((err) => this.#log.error({ err }, 'cannot write status file'));
  }

  // --- input problems, persistence, status -------------------------------------------

  #logInputProblems(d: Desired, log: Logger): void {
    if (d.configError !== undefined) {
      for (const p of d.configError.problems) log.error({ file: p.pos.file, line: p.pos.line, col: p.pos.col, field: p.field, code: p.code }, formatProblem(p));
      log.error({ file: d.configError.problems[0]?.pos.file }, 'config unusable: keeping the last good config');
      this.#noteError(d.configError.message);
    }
    for (const p of d.state.problems) {
      const ctx = { file: p.pos.file, line: p.pos.line, col: p.pos.col, policy: p.policy ?? null, field: p.field, code: p.code };
      if (p.severity === 'error') log.error(ctx, formatProblem(p));
      else log.warn(ctx, formatProblem(p));
    }
    for (const p of d.merge.replacedProblems) {
      const ctx = { file: p.pos.file, line: p.pos.line, col: p.pos.col, policy: p.policy ?? null, field: p.field, code: p.code };
      if (p.severity === 'error') log.error(ctx, formatProblem(p));
    }
    for (const k of d.merge.kept) {
      log.warn({ policy: k.policy, file: k.file, reason: k.reason }, keptMessage(k));
      // A suspect removal is an error to see in `nodewall status`, not only in the log.
      if (k.reason === 'empty') this.#noteError(keptMessage(k));
    }
    for (const r of d.merge.rejected) {
      log.error({ policy: r.policy, file: r.file }, `policy ${r.policy}: invalid and never valid before: not applied`);
    }
    for (const r of d.merge.removed) log.info({ policy: r.policy, file: r.file, removed: true }, removedMessage(r));
    const errors = [...d.merge.replacedProblems, ...d.state.problems].filter((p) => p.severity === 'error');
    this.#metrics.inputErrors(errors.length + (d.configError === undefined ? 0 : d.configError.problems.length));
    logRefusals(d, log, (m) => this.#noteError(m));
    const firstError = errors[0];
    if (firstError !== undefined) this.#noteError(formatProblem(firstError));
  }

  async #persist(d: Desired, lastGood = d.merge.lastGood): Promise<void> {
    this.#memory.lastGood = lastGood;
    const stateDir = d.cfg.config.stateDir;
    try {
      // Kubernetes snapshots can come several times a second: rewrite the store only when its content changes.
      const configHash = this.#memory.lastGoodConfig?.hash ?? null;
      if (this.#storeMemo.changed(stateDir, configHash, lastGood)) {
        await saveLastGood(stateDir, lastGood, (h) => this.#memory.texts.get(h),
          this.#memory.lastGoodConfig?.file === undefined ? undefined : { file: this.#memory.lastGoodConfig.file, text: this.#memory.lastGoodConfig.text });
        this.#storeMemo.saved(stateDir, configHash, lastGood);
      }
      // Drop texts no policy refers to any more.
      this.#storeMemo.prune(this.#memory.texts, lastGood);
    } catch (err) {
      this.#log.error({ err, stateDir }, 'cannot persist last good policies');
    }
    await this.#writeStatus(false).catch((err) => this.#log.error({ err, stateDir }, 'cannot write status file'));
  }

  async #restorePersisted(): Promise<void> {
    const r = await restorePersisted(this.#opts, this.#log);
    if (r.policies.size > 0) this.#memory.lastGood = new Map([...this.#memory.lastGood, ...r.policies]);
    if (r.config !== undefined) this.#memory.lastGoodConfig = r.config;
    for (const w of r.warnings) this.#noteError(w);
  }

  #noteError(message: string): void {
    this.#lastError = { at: new Date().toISOString(), message };
  }

  async #writeStatus(stopped: boolean): Promise<void> {
    const d = this.#desired;
    if (d === undefined) {
      if (this.#noConfig !== undefined && this.#lastError !== undefined) {
        await writeStatus(this.#noConfig.dir, noConfigStatus(this.#noConfig, { pid: process.pid, startedAt: this.#startedAt, lastError: this.#lastError, stopped }));
      }
      return;
    }
    const cfg = d.cfg.config;
    const counts = policyCounts(d.state);
    const kubernetes = this.#kubeStatus() ?? (stopped ? this.#kubeStatusAtStop : undefined);
    if (kubernetes !== undefined) {
      // An API error is the agent's last error too (a revoked token must not read "last error: none").
      const k = kubeErrorToNote(kubernetes, this.#kubeErrorNoted);
      this.#kubeErrorNoted = k.noted;
      if (k.note !== undefined) this.#noteError(k.note);
      this.#kubeStatusKey = kubeStatusKey(kubernetes);
    }
    const status: AgentStatus = {
      version: 1,
      pid: process.pid,
      startedAt: this.#startedAt,
      updatedAt: new Date().toISOString(),
      mode: cfg.mode,
      table: cfg.nft.table,
      node: d.nodeName,
      ...(this.#lastApply === undefined ? {} : { lastApply: this.#lastApply }),
      policies: { ...counts, keptLastGood: d.merge.kept.length, rejected: d.merge.rejected.length },
      entries: { ingress: d.state.model.ingress.entries.length, egress: d.state.model.egress.entries.length },
      enforced: { ingress: d.state.model.ingress.enforced, egress: d.state.model.egress.enforced },
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
      ...(kubernetes === undefined ? {} : { kubernetes }),
      ...(d.waitingForKubernetes ? { waitingForKubernetes: true } : {}),
      ...pauseField(this.#pause.status(cfg.mode)),
      ...(d.state.model.staged === undefined ? {} : { staged: d.state.model.staged.policies }),
      ...refusedStatus(this.#memory.refused),
      // Stopped: the children and the endpoint are gone; what they were is in the log.
      ...(stopped ? {} : observerStatus(this.#monitor, this.#metricsServer)),
      ...(stopped ? { stopped: true } : {}),
    };
    this.#metrics.status(status);
    await writeStatus(cfg.stateDir, status);
  }

  /** For tests and the bench: the state last enforced. */
  get state(): State | undefined {
    return this.#desired?.state;
  }
}


function memoryMB(): { rssMB: number; heapUsedMB: number } {
  const m = process.memoryUsage();
  return { rssMB: Math.round(m.rss / 1048576), heapUsedMB: Math.round(m.heapUsed / 1048576) };
}

function kubeStatusKey(s: KubernetesSourceStatus): string {
  return JSON.stringify([s.connected, s.lastError ?? null, s.synced, s.stale]);
}

function explicitFiles(d: Desired): string[] {
  // Source paths that are files (not directories read): watch their parent.
  const dirs = new Set(d.sources.dirs);
  return d.cfg.config.sources.filter((s) => !dirs.has(s));
}
