// Instant drift repair: follows `nft -j monitor` as child processes and asks
// the agent for a drift check as soon as nodewall's table (family inet, name
// nft.table) is deleted or one of its chains, sets or rules changes. The
// check itself is DriftRepair.check (hash of the terse listing under the
// NftWriteLock), so:
// - events of nodewall's own transactions cost one cheap check and never a
//   repair (the hash recorded after the apply matches);
// - tables of other owners are never touched: their events are filtered out
//   here, and the repair only ever writes nodewall's own table;
// - the polling check stays as the fallback (missed events, a dead child).
//
// One child per object kind (`nft monitor tables|chains|sets|rules`), never
// the unfiltered monitor: that one prints one line per set element, 100k
// lines for a cold start of a large policy, and the element churn of other
// tables (kube-proxy's nftables mode) besides. Element edits are not drift
// for nodewall: the poll's hash leaves elements out too (a full load replaces
// every set; chain and element deltas change only the sets they name).
//
// A child that exits is restarted with jittered exponential backoff (capped);
// after a restart the agent checks once, since events may have been missed.
// Lines are read with a length bound (line-splitter.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { backoffDelay, type BackoffOptions } from '../inventory/sources/backoff.js';
import { LineSplitter } from './line-splitter.js';

export type MonitorKind = 'tables' | 'chains' | 'sets' | 'rules';
export const monitorKinds: readonly MonitorKind[] = ['tables', 'chains', 'sets', 'rules'];

/** An event about nodewall's table: what happened to which kind of object. */
export interface TableEvent {
  readonly op: string;
  readonly object: 'table' | 'chain' | 'set' | 'rule';
}

/** nft -j monitor events are small (a rule with its expressions); anything larger is not one of ours. */
export const maxMonitorLineBytes = 256 * 1024;

const objects = ['table', 'chain', 'set', 'rule'] as const;
/** Operations nft monitor reports (1.0.6 prints add and delete; the others are there for newer versions). */
const ops: ReadonlySet<string> = new Set(['add', 'insert', 'replace', 'delete', 'destroy', 'flush', 'rename']);

/**
 * One `nft -j monitor` line -> the event if it concerns `table inet <table>`, else undefined. Pure; garbage in
 * (not JSON, other shapes) gives undefined. Table events carry the table's name in `name`, the others in `table`.
 */
export function tableEvent(line: string, table: string): TableEvent | undefined {
  // Cheap pre-filter: other tables' churn (iptables-nft rules of kube-proxy) is never parsed. Table names are
  // [A-Za-z0-9_-] (config.ts), printed by nft as plain JSON strings.
  if (!line.includes(JSON.stringify(table))) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const entries = Object.entries(doc as Record<string, unknown>);
  if (entries.length !== 1) return undefined;
  const [op, body] = entries[0] as [string, unknown];
  if (!ops.has(op) || typeof body !== 'object' || body === null) return undefined;
  for (const object of objects) {
    if (!Object.hasOwn(body, object)) continue;
    const o = (body as Record<string, unknown>)[object];
    if (typeof o !== 'object' || o === null) return undefined;
    const r = o as Record<string, unknown>;
    if (r['family'] !== 'inet') return undefined;
    const name = object === 'table' ? r['name'] : r['table'];
    return name === table ? { op, object } : undefined;
  }
  return undefined;
}

export interface NftMonitorTarget {
  readonly nftPath: string;
  readonly table: string;
}

export interface NftMonitorOptions {
  readonly log: Logger;
  /** Ask for a drift check. `reason`: the event ("delete table", ...) or "monitor restarted". */
  readonly onTrigger: (reason: string) => void;
  /** Called for every child restart (metrics). */
  readonly onRestart?: (kind: MonitorKind) => void;
  /** Events are coalesced for this long before onTrigger (one transaction is many events). */
  readonly coalesceMs?: number;
  readonly backoff?: BackoffOptions;
  /** A child that ran this long resets the backoff. */
  readonly stableMs?: number;
  readonly maxLineBytes?: number;
  /** Replaceable in tests. */
  readonly spawnChild?: (nftPath: string, args: readonly string[]) => ChildProcess;
}

const defaultRestartBackoff: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

interface Watched {
  readonly kind: MonitorKind;
  child: ChildProcess | undefined;
  startedAt: number;
  attempts: number;
  restart: NodeJS.Timeout | undefined;
  stderr: string;
}

export class NftMonitor {
  readonly #opts: NftMonitorOptions;
  #target: NftMonitorTarget | undefined;
  #watched: Watched[] = [];
  #pending: NodeJS.Timeout | undefined;
  #pendingReason = '';
  #restarts = 0;

  constructor(opts: NftMonitorOptions) {
    this.#opts = opts;
  }

  /** Children currently running, by kind (tests, status). */
  get pids(): ReadonlyMap<MonitorKind, number> {
    const m = new Map<MonitorKind, number>();
    for (const w of this.#watched) if (w.child?.pid !== undefined && w.child.exitCode === null) m.set(w.kind, w.child.pid);
    return m;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Children that should run: one per kind while following a table, else 0. */
  get expected(): number {
    return this.#target === undefined ? 0 : this.#watched.length;
  }

  /** Follow `target` (restarting the children when it changed), or nothing (undefined: stop). */
  sync(target: NftMonitorTarget | undefined): void {
    if (target?.nftPath === this.#target?.nftPath && target?.table === this.#target?.table) return;
    this.stop();
    this.#target = target;
    if (target === undefined) return;
    this.#watched = monitorKinds.map((kind) => ({ kind, child: undefined, startedAt: 0, attempts: 0, restart: undefined, stderr: '' }));
    for (const w of this.#watched) this.#start(w, target);
    this.#opts.log.info({ table: target.table, kinds: monitorKinds }, 'drift monitor: following nft monitor');
  }

  stop(): void {
    const watched = this.#watched;
    this.#watched = [];
    this.#target = undefined;
    if (this.#pending !== undefined) clearTimeout(this.#pending);
    this.#pending = undefined;
    for (const w of watched) {
      if (w.restart !== undefined) clearTimeout(w.restart);
      const c = w.child;
      w.child = undefined;
      if (c !== undefined && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    }
  }

  #start(w: Watched, target: NftMonitorTarget): void {
    const args = ['-j', 'monitor', w.kind];
    const spawnChild = this.#opts.spawnChild ?? ((p: string, a: readonly string[]) => spawn(p, [...a], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let child: ChildProcess;
    try {
      child = spawnChild(target.nftPath, args);
    } catch (err) {
      this.#scheduleRestart(w, target, err instanceof Error ? err.message : String(err));
      return;
    }
    w.child = child;
    w.startedAt = Date.now();
    w.stderr = '';
    const lines = new LineSplitter(this.#opts.maxLineBytes ?? maxMonitorLineBytes, (line) => {
      const e = tableEvent(line, target.table);
      if (e !== undefined) this.#event(`${e.op} ${e.object}`);
    });
    child.stdout?.on('data', (b: Buffer) => lines.push(b));
    child.stderr?.on('data', (b: Buffer) => {
      // Keep only the tail: what to show when the child dies.
      w.stderr = (w.stderr + b.toString()).slice(-1024);
    });
    let ended = false;
    const end = (why: string) => {
      if (ended) return;
      ended = true;
      if (w.child !== child) return; // stopped or replaced: nothing to restart
      w.child = undefined;
      if (lines.dropped > 0) this.#opts.log.warn({ kind: w.kind, dropped: lines.dropped }, 'drift monitor: overlong lines were dropped');
      this.#scheduleRestart(w, target, why);
    };
    child.on('error', (err) => end(err.message));
    child.on('close', (code, signal) => end(`exited (${signal ?? `code ${code}`})${w.stderr === '' ? '' : `: ${w.stderr.trim()}`}`));
  }

  #scheduleRestart(w: Watched, target: NftMonitorTarget, why: string): void {
    if (this.#target !== target) return;
    const stable = Date.now() - w.startedAt >= (this.#opts.stableMs ?? 60_000);
    w.attempts = stable ? 1 : w.attempts + 1;
    const delay = backoffDelay(w.attempts, this.#opts.backoff ?? defaultRestartBackoff);
    // Loud the first time, quieter while it keeps failing (the poll still repairs drift meanwhile).
    const level = w.attempts === 1 ? 'error' : 'warn';
    this.#opts.log[level]({ kind: w.kind, error: why, restartInMs: delay, attempt: w.attempts },
      'drift monitor: nft monitor child ended; restarting (the periodic drift check still runs)');
    w.restart = setTimeout(() => {
      w.restart = undefined;
      if (this.#target !== target) return;
      this.#restarts++;
      this.#opts.onRestart?.(w.kind);
      this.#start(w, target);
      // Events may have been missed while it was down.
      this.#event('monitor restarted');
    }, delay);
  }

  #event(reason: string): void {
    if (this.#pending !== undefined) return;
    this.#pendingReason = reason;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      this.#opts.onTrigger(this.#pendingReason);
    }, this.#opts.coalesceMs ?? 20);
  }
}
