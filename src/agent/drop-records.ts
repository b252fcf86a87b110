// Drop records of enforce mode (src/nft/render-drop-records.ts): read the
// kernel sets back, name the policy and rule behind each dropped flow from the
// model in force (the evaluator, so `trace` and `nodewall drops` agree), and
// log new drops as structured verdict lines, rate-limited per peer and port.
// The CLI (`nodewall drops`) and the agent's timer (DropRecordReporter) share it.

import type { Logger } from 'pino';
import type { Direction } from '../api/types.js';
import { runNft } from '../nft/nft-exec.js';
import { dropFirstSetName, dropRecordSetName } from '../nft/render-drop-records.js';
import { dropRecordChainNames, fixedComments } from '../nft/render-rules.js';
import { AddressMatcher, parseAddress, parsePrefix, type Address } from '../policy/cidr.js';
import type { HostModel } from '../policy/model.js';
import type { Flow, Verdict } from '../verdict/types.js';
import { listRecordSet, parseRecordSet, recordFlow, type FlowRecord } from './audit-records.js';

export class DropRecordsError extends Error {
  override readonly name = 'DropRecordsError';
}

export interface DropRecordsRead {
  readonly records: readonly FlowRecord[];
  /** Packets the drop-record chains recorded, and the ones they dropped unrecorded (map full, no transport header). */
  readonly recordedPackets: number;
  readonly unrecordedPackets: number;
  /** Set size (entries per set) and timeout, as the kernel has them. */
  readonly size?: number;
  readonly timeoutSeconds?: number;
  /** When the sets were listed (ms since the epoch): the end of the read, the time every expiry is moved to. */
  readonly readAtMs: number;
  /**
   * When the read began (before the first listing). A drop that lands while the sets are listed (after its
   * set was listed, before readAtMs) is missed by this read, so the next read must reach back to here.
   */
  readonly startedAtMs: number;
}

interface ReadOptions {
  readonly netns?: string;
  readonly timeoutMs?: number;
}

function execOpts(o: ReadOptions): { netns?: string; timeoutMs: number } {
  return { timeoutMs: o.timeoutMs ?? 30_000, ...(o.netns === undefined ? {} : { netns: o.netns }) };
}

/** Packets counted by the drop-record chains' rules: recorded ones and the final unrecorded drop. */
export async function readDropCounters(nftPath: string, table: string, opts: ReadOptions = {}): Promise<{ recorded: number; unrecorded: number }> {
  let recorded = 0;
  let unrecorded = 0;
  for (const chain of Object.values(dropRecordChainNames)) {
    const { stdout } = await runNft(nftPath, ['-j', 'list', 'chain', 'inet', table, chain], execOpts(opts));
    const doc = JSON.parse(stdout) as { nftables?: unknown[] };
    for (const item of Array.isArray(doc.nftables) ? doc.nftables : []) {
      const rule = (item as { rule?: { comment?: unknown; expr?: unknown[] } }).rule;
      if (rule === undefined || !Array.isArray(rule.expr)) continue;
      const counter = rule.expr.map((e) => (e as { counter?: { packets?: unknown } }).counter).find((c) => c !== undefined);
      const packets = typeof counter?.packets === 'number' ? counter.packets : 0;
      if (rule.comment === `${fixedComments.dropRecord} unrecorded`) unrecorded += packets;
      else recorded += packets;
    }
  }
  return { recorded, unrecorded };
}

/** The set's size and timeout from `nft -j list set` output. */
function setLimits(json: string): { size?: number; timeout?: number } {
  const doc = JSON.parse(json) as { nftables?: { set?: { size?: unknown; timeout?: unknown } }[] };
  const set = Array.isArray(doc.nftables) ? doc.nftables.find((i) => i.set !== undefined)?.set : undefined;
  return { ...(typeof set?.size === 'number' ? { size: set.size } : {}), ...(typeof set?.timeout === 'number' ? { timeout: set.timeout } : {}) };
}

const recordKey = (r: FlowRecord) => `${r.proto}|${r.port}|${r.peer}`;

/**
 * The drop-record sets (records and first drops, per direction and family) and the chains' counters. Throws DropRecordsError when the table has no drop
 * records (not enforcing, audit mode, dropRecords: off), naming what to do.
 */
export async function readDropRecords(nftPath: string, table: string, opts: ReadOptions = {}): Promise<DropRecordsRead> {
  const startedAtMs = Date.now();
  const records: FlowRecord[] = [];
  let size: number | undefined;
  let timeoutSeconds: number | undefined;
  let counters;
  // Every `expires` is as of its own listing, and on a loaded node listing eight full sets takes many seconds:
  // each set's expiries are moved to one read time (the end), so derived times never lag by the listing time.
  const listed: { direction: Direction; json: string; at: number; firstJson: string; firstAt: number }[] = [];
  try {
    counters = await readDropCounters(nftPath, table, opts);
    for (const direction of ['ingress', 'egress'] as const) {
      for (const family of ['ipv4', 'ipv6'] as const) {
        const json = await listRecordSet(nftPath, table, 'set', dropRecordSetName(direction, family), execOpts(opts));
        const at = Date.now();
        const firstJson = await listRecordSet(nftPath, table, 'set', dropFirstSetName(direction, family), execOpts(opts));
        listed.push({ direction, json, at, firstJson, firstAt: Date.now() });
      }
    }
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DropRecordsError(
      `cannot read the drop records of table inet ${table}: ${why}. Drop records exist in enforce mode with dropRecords on ` +
        '(the default); `nodewall list` shows what the kernel holds',
      { cause: err },
    );
  }
  const readAtMs = Date.now();
  for (const l of listed) {
    const limits = setLimits(l.json);
    if (limits.size !== undefined) size = limits.size;
    if (limits.timeout !== undefined) timeoutSeconds = limits.timeout;
    const firstTimeout = setLimits(l.firstJson).timeout;
    // First drop: listing time - (timeout - expires) of the never-refreshed `_first` element.
    const first = new Map<string, number>();
    for (const f of parseRecordSet(l.firstJson, l.direction, 'proto-port-peer')) {
      if (f.expires !== undefined && firstTimeout !== undefined) first.set(recordKey(f), l.firstAt - Math.max(0, firstTimeout - f.expires) * 1000);
    }
    const lag = (readAtMs - l.at) / 1000;
    for (const r of parseRecordSet(l.json, l.direction, 'proto-port-peer')) {
      const firstSeenMs = first.get(recordKey(r));
      const atRead = r.expires === undefined ? r : { ...r, expires: r.expires - lag };
      records.push(firstSeenMs === undefined ? atRead : { ...atRead, firstSeenMs });
    }
  }
  return {
    records, recordedPackets: counters.recorded, unrecordedPackets: counters.unrecorded, readAtMs, startedAtMs,
    ...(size === undefined ? {} : { size }), ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
  };
}

/** One dropped flow with the rule that drops it under the model in force. */
export interface DropRow {
  readonly direction: Direction;
  readonly peer: string;
  /** "tcp", "udp", "icmp", "icmpv6" or the protocol number. */
  readonly proto: string;
  /** Destination port (tcp/udp/sctp). */
  readonly port?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly packets: number;
  readonly bytes: number;
  /** ISO times, to the second, derived from the records' expiry (render-drop-records.ts says what is exact). */
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
  /** What dropped it: a deny entry, default deny, a datapath drop; "changed" when the model in force now allows the flow. */
  readonly decidedBy: 'deny-entry' | 'default-deny' | 'datapath' | 'changed';
  /** Deny entry's policy, else null. */
  readonly policy: string | null;
  /** Deny entry's field path, else "default-deny", "datapath" or "recorded-before-last-change". */
  readonly rule: string;
  /** Why (for default deny: why it is active in this direction). */
  readonly reason: string;
}

/** The rule behind a recorded drop, from the model (the evaluator `trace` uses). */
export function attributeDrop(model: HostModel, flow: Flow, evaluate: (m: HostModel, f: Flow) => Verdict): Pick<DropRow, 'decidedBy' | 'policy' | 'rule' | 'reason'> {
  const v = evaluate(model, flow);
  const first = v.matched[0];
  if (v.verdict === 'deny' && v.decidedBy === 'deny-entry' && first !== undefined) {
    return { decidedBy: 'deny-entry', policy: first.policy, rule: first.rule, reason: v.reason };
  }
  if (v.verdict === 'deny' && v.decidedBy === 'default-deny') {
    const dp = flow.direction === 'ingress' ? model.ingress : model.egress;
    return { decidedBy: 'default-deny', policy: null, rule: 'default-deny', reason: dp.reason };
  }
  if (v.verdict === 'deny' && v.decidedBy === 'datapath') return { decidedBy: 'datapath', policy: null, rule: 'datapath', reason: v.reason };
  // The kernel dropped it under an earlier ruleset; the model in force allows it now.
  return { decidedBy: 'changed', policy: null, rule: 'recorded-before-last-change', reason: `the policies in force now allow this flow (${v.reason})` };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString();
}

/** Last seen: every packet resets the expiry, so it is the read time minus how much of the timeout has run. */
export function lastSeenMs(r: FlowRecord, readAtMs: number): number | undefined {
  if (r.expires === undefined || r.timeoutSeconds === undefined) return undefined;
  // nft prints expires in whole seconds (rounded down), so this can be up to a second early: never before the first packet.
  const derived = readAtMs - Math.max(0, r.timeoutSeconds - r.expires) * 1000;
  return r.firstSeenMs === undefined ? derived : Math.max(derived, r.firstSeenMs);
}

export function dropRow(r: FlowRecord, readAtMs: number, model: HostModel, evaluate: (m: HostModel, f: Flow) => Verdict): DropRow {
  const flow = recordFlow(r);
  return {
    direction: r.direction,
    peer: r.peer,
    proto: typeof flow.proto === 'number' ? String(flow.proto) : flow.proto,
    ...(flow.port === undefined ? {} : { port: flow.port }),
    ...(flow.icmpType === undefined ? {} : { icmpType: flow.icmpType, icmpCode: flow.icmpCode ?? 0 }),
    packets: r.packets ?? 0,
    bytes: r.bytes ?? 0,
    firstSeen: iso(r.firstSeenMs),
    lastSeen: iso(lastSeenMs(r, readAtMs)),
    ...attributeDrop(model, flow, evaluate),
  };
}

export interface DropFilter {
  /** Only drops last seen at or after this time (ms since the epoch). */
  readonly sinceMs?: number;
  /** Only peers inside this prefix. */
  readonly peer?: string;
}

/** Rows for the records that pass the filter, newest (last seen) first. */
export function dropRows(read: DropRecordsRead, model: HostModel, evaluate: (m: HostModel, f: Flow) => Verdict, filter: DropFilter = {}): DropRow[] {
  const within = filter.peer === undefined ? undefined : new AddressMatcher([parsePrefix(filter.peer)]);
  const rows: { row: DropRow; last: number }[] = [];
  for (const r of read.records) {
    const last = lastSeenMs(r, read.readAtMs) ?? 0;
    if (filter.sinceMs !== undefined && last < filter.sinceMs) continue;
    if (within !== undefined) {
      let a: Address;
      try {
        a = parseAddress(r.peer);
      } catch {
        continue;
      }
      if (!within.has(a)) continue;
    }
    rows.push({ row: dropRow(r, read.readAtMs, model, evaluate), last });
  }
  return rows.sort((a, b) => b.last - a.last || a.row.peer.localeCompare(b.row.peer)).map((x) => x.row);
}

/**
 * At most one log line per key (direction, peer, protocol, port) per interval. Remembers at most `maxKeys`
 * keys, the least recently logged forgotten first, so a flood of distinct peers cannot grow it.
 */
export class DropLogLimiter {
  readonly #last = new Map<string, number>();
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  constructor(intervalMs = 60_000, maxKeys = 4096) {
    this.#intervalMs = intervalMs;
    this.#maxKeys = maxKeys;
  }

  allow(key: string, nowMs: number): boolean {
    const last = this.#last.get(key);
    if (last !== undefined && nowMs - last < this.#intervalMs) return false;
    // Re-insert: Map order is insertion order, so the first key is the least recently logged.
    this.#last.delete(key);
    this.#last.set(key, nowMs);
    while (this.#last.size > this.#maxKeys) {
      const oldest = this.#last.keys().next();
      if (oldest.done === true) break;
      this.#last.delete(oldest.value);
    }
    return true;
  }

  get size(): number {
    return this.#last.size;
  }
}

export function dropKey(r: Pick<DropRow, 'direction' | 'peer' | 'proto' | 'port' | 'icmpType'>): string {
  return `${r.direction}|${r.peer}|${r.proto}|${r.port ?? r.icmpType ?? ''}`;
}

export interface ReporterOptions {
  /** Per peer and port: at most one line per this interval. */
  readonly perKeyIntervalMs?: number;
  readonly maxKeys?: number;
  /** At most this many drop lines per read; the rest is counted in one summary line. */
  readonly maxLinesPerRead?: number;
  /** The sets are listed at most this often (their counters are checked on every tick). */
  readonly minListIntervalMs?: number;
  /** At most this share of the time is spent listing the sets (default 0.05); 1 lifts the bound (tests). */
  readonly maxListShare?: number;
}

/**
 * How long to pause listing, per unit of time a listing took, to spend at most `share` of the time on it.
 * A share that is not a number in (0, 1] is the default's: never a pause that stops listing for good.
 */
export function listPauseFactor(share: number | undefined): number {
  const s = share !== undefined && share > 0 && share <= 1 ? share : 0.05;
  return 1 / s - 1;
}

/**
 * The agent's hook (called from its timer in enforce mode): when the drop-record chains counted new packets,
 * list the maps and log the drops seen since the last read as verdict lines
 * `{verdictLine: true, kind: "drop", direction, peer, proto, port, packets, firstSeen, lastSeen, policy, rule, decidedBy, reason}`.
 */
export class DropRecordReporter {
  readonly #limiter: DropLogLimiter;
  readonly #maxLines: number;
  readonly #minListMs: number;
  readonly #startedAtMs = Date.now();
  #lastCounters: string | undefined;
  readonly #listPauseFactor: number;
  /** When the previous read began: drops last seen since then (less a second) are new to the next read. */
  #lastReadStartMs: number | undefined;
  #nextListAtMs = 0;
  #unrecordedLogged = 0;
  /** Set while a pause keeps recording off (said once; the table loaded at re-arm has fresh counters). */
  #paused = false;

  constructor(opts: ReporterOptions = {}) {
    this.#limiter = new DropLogLimiter(opts.perKeyIntervalMs, opts.maxKeys);
    this.#maxLines = opts.maxLinesPerRead ?? 100;
    this.#minListMs = opts.minListIntervalMs ?? 10_000;
    this.#listPauseFactor = listPauseFactor(opts.maxListShare);
  }

  /**
   * The agent's timer while a break-glass pause renders the audit ruleset: nothing is dropped, so nothing is
   * recorded. Says so once (the drop records are not silently stale), and forgets the counters it last saw: the
   * enforce table loaded at re-arm starts from 0, and a counter key equal by chance must not hide new drops.
   */
  paused(log: Logger): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#lastCounters = undefined;
    this.#unrecordedLogged = 0;
    log.info({ dropRecords: 'paused' }, 'drop records: not recorded while paused (nothing is dropped; would-be drops are logged as audit records)');
  }

  async tick(ctx: { nftPath: string; table: string; model: HostModel; log: Logger; evaluate: (m: HostModel, f: Flow) => Verdict; netns?: string }): Promise<void> {
    if (this.#paused) {
      this.#paused = false;
      ctx.log.info({ dropRecords: 'on' }, 'drop records: enforcement is back, recording drops again');
    }
    const exec = ctx.netns === undefined ? {} : { netns: ctx.netns };
    let counters;
    try {
      counters = await readDropCounters(ctx.nftPath, ctx.table, exec);
    } catch (err) {
      ctx.log.debug({ err }, 'drop records: no drop-record chains (table being replaced, or dropRecords off)');
      return;
    }
    const key = `${counters.recorded}|${counters.unrecorded}`;
    if (key === this.#lastCounters) return;
    const now = Date.now();
    if (now < this.#nextListAtMs) return;
    let read: DropRecordsRead;
    try {
      read = await readDropRecords(ctx.nftPath, ctx.table, exec);
    } catch (err) {
      this.#nextListAtMs = Date.now() + this.#minListMs;
      ctx.log.warn({ err }, 'drop records: cannot read the sets');
      return;
    } finally {
      // Full sets take seconds to list (nft and JSON): under a sustained flood, spend at most ~5% of the time on it.
      this.#nextListAtMs = Math.max(this.#nextListAtMs, now + this.#minListMs, Date.now() + this.#listPauseFactor * (Date.now() - now));
    }
    this.#lastCounters = key;
    // Drops last seen since the previous read began (a second of slack: nft prints whole seconds), or since the
    // agent started. From its start, not its end: on a loaded node listing the eight sets takes seconds, and a
    // drop landing in a set already listed was not in that read (it was missed, not seen: e2e flake, session 16).
    const since = (this.#lastReadStartMs ?? this.#startedAtMs) - 1000;
    this.#lastReadStartMs = read.startedAtMs;
    let logged = 0;
    let limited = 0;
    for (const row of dropRows(read, ctx.model, ctx.evaluate, { sinceMs: since })) {
      if (!this.#limiter.allow(dropKey(row), now)) {
        limited++;
        continue;
      }
      if (logged >= this.#maxLines) {
        limited++;
        continue;
      }
      logged++;
      ctx.log.warn({ verdictLine: true, kind: 'drop', ...row },
        `drop: ${row.direction} ${row.proto}/${row.port ?? row.icmpType ?? '-'} ${row.peer} (${row.policy === null ? row.rule : `${row.policy} ${row.rule}`})`);
    }
    if (limited > 0) ctx.log.info({ dropsNotLogged: limited }, 'drop records: more new drops than the log rate limit lets through (see `nodewall drops`)');
    if (read.unrecordedPackets > this.#unrecordedLogged) {
      ctx.log.warn({ unrecordedPackets: read.unrecordedPackets, size: read.size ?? null, records: read.records.length },
        'drop records: a drop-record set is full, new drops are dropped without a record (raise dropRecords.size or lower timeoutSeconds)');
      this.#unrecordedLogged = read.unrecordedPackets;
    }
  }
}
