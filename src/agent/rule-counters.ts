// Packets and bytes per policy and rule, from the kernel's rule counters.
// One `nft -j -t -n list table inet T`: terse (-t) leaves every set element
// out of the output, so it stays a few kB whatever the identity sets hold;
// rule counters are kept. nft 1.0.6 still fetches the elements from the
// kernel for any listing of a table or chain (about 1 s of CPU at 100k
// addresses, measured), so the read is bounded and kept off the scrape path:
// at most one nft call in flight, a timeout per call, and a scrape gets the
// last result at once (stale-while-revalidate: older than `cacheMs` starts a
// refresh in the background; nodewall_rule_counters_age_seconds says how old).
// Only the very first scrape waits for a read. Never takes the NftWriteLock (a
// read does not need it, and a scrape must never wait behind an apply).

import { runNft, parseNftJson } from '../nft/nft-exec.js';
import { isMissingTableError } from '../nft/ownership.js';
import { parseTableDoc, type KernelRule } from '../nft/read-kernel.js';
import { auditChainNames, baseChainOf, chainNames, dropRecordChainNames, fixedComments } from '../nft/render-rules.js';

export interface RuleCounterRow {
  readonly direction: 'ingress' | 'egress';
  /** The policy name, or "(nodewall)" for nodewall's fixed rules (default deny, conntrack, datapath...). */
  readonly policy: string;
  /** "spec.ingress[0]", or the fixed rule's name ("default-deny"). */
  readonly rule: string;
  /** accept, drop, or audit (a would-be drop of audit mode, accepted). */
  readonly action: 'accept' | 'drop' | 'audit';
  readonly packets: number;
  readonly bytes: number;
}

/** Label of nodewall's own rules: not a valid Kubernetes object name, so never a policy's. */
export const fixedPolicyLabel = '(nodewall)';
/** Label of the failsafe accepts (config `failsafe`); rule = the entry ("tcp/22 from 192.0.2.0/24"). */
export const failsafePolicyLabel = '(failsafe)';

const gotoAction = new Map<string, RuleCounterRow['action']>([
  // Drop records (enforce): a drop rule ends in `goto nw_drop_in|out`, which records the packet and drops it.
  ...Object.values(dropRecordChainNames).map((c) => [`goto ${c}`, 'drop'] as const),
  // Audit mode (and a pause): a would-be drop goes to the audit chain, which records it and accepts.
  ...Object.values(auditChainNames).map((c) => [`goto ${c}`, 'audit'] as const),
]);

function action(verdict: string): RuleCounterRow['action'] | undefined {
  if (verdict === 'accept') return 'accept';
  if (verdict === 'drop') return 'drop';
  return gotoAction.get(verdict); // jump (no counter), continue, staged records (no verdict), ...: none
}

/** Rows per (direction, policy, rule, action), summed over the rule's nft rules (families, protocols). Pure. */
export function counterRows(rules: readonly KernelRule[]): RuleCounterRow[] {
  const out = new Map<string, { -readonly [K in keyof RuleCounterRow]: RuleCounterRow[K] }>();
  for (const r of rules) {
    const base = baseChainOf(r.chain);
    const act = action(r.verdict);
    if (base === undefined || act === undefined) continue;
    const direction = base === chainNames.ingress ? 'ingress' : 'egress';
    const fixed = r.policy === undefined;
    // A failsafe accept is nodewall's, not a policy's (a policy may well be named "failsafe").
    const failsafe = r.comment?.startsWith(`${fixedComments.failsafe} `) === true;
    const policy = fixed ? fixedPolicyLabel : failsafe ? failsafePolicyLabel : r.policy;
    const rule = fixed ? fixedRuleName(r.comment) : (r.rule ?? '');
    const key = JSON.stringify([direction, policy, rule, act]);
    const row = out.get(key);
    if (row === undefined) out.set(key, { direction, policy: policy ?? '', rule, action: act, packets: r.packets, bytes: r.bytes });
    else {
      row.packets += r.packets;
      row.bytes += r.bytes;
    }
  }
  return [...out.values()];
}

function fixedRuleName(comment: string | undefined): string {
  if (comment === undefined) return 'unnamed';
  const prefix = 'nodewall ';
  const name = comment.startsWith(prefix) ? comment.slice(prefix.length) : comment;
  return name === fixedComments.defaultDeny.slice(prefix.length) ? 'default-deny' : name.replace(/ /g, '-');
}

export interface CounterTarget {
  readonly nftPath: string;
  readonly table: string;
}

export type CounterRead = { readonly ok: true; readonly rows: readonly RuleCounterRow[]; readonly rules: number } | { readonly ok: false; readonly error: string };

export type ListTable = (target: CounterTarget, timeoutMs: number) => Promise<KernelRule[] | null>;

const listTerse: ListTable = async (t, timeoutMs) => {
  const args = ['-j', '-t', '-n', 'list', 'table', 'inet', t.table];
  try {
    const { stdout } = await runNft(t.nftPath, args, { timeoutMs });
    return [...parseTableDoc(parseNftJson(stdout, t.nftPath, args), t.table).rules];
  } catch (err) {
    if (isMissingTableError(err)) return null;
    throw err;
  }
};

/** Cached, single-flight reader of the rule counters. */
export class RuleCounterReader {
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #list: ListTable;
  #cached: { at: number; key: string; value: CounterRead } | undefined;
  #inFlight: { key: string; promise: Promise<CounterRead> } | undefined;
  /** nft calls made (tests, the bench). */
  calls = 0;

  constructor(opts: { cacheMs?: number; timeoutMs?: number; list?: ListTable } = {}) {
    this.#cacheMs = opts.cacheMs ?? 1500;
    // Off the scrape path (but the first), so it may take long on a loaded node; still bounded.
    this.#timeoutMs = opts.timeoutMs ?? 20_000;
    this.#list = opts.list ?? listTerse;
  }

  /** When the result `read` returns now was read (ms since the epoch), undefined before any. */
  get readAt(): number | undefined {
    return this.#cached?.at;
  }

  read(target: CounterTarget, now = Date.now()): Promise<CounterRead> {
    const key = `${target.nftPath}\0${target.table}`;
    const c = this.#cached;
    const usable = c !== undefined && c.key === key;
    if (usable && now - c.at < this.#cacheMs) return Promise.resolve(c.value);
    const refresh = this.#refresh(target, key);
    // Stale but of this table: answer now, the refresh lands for the next scrape.
    return usable ? Promise.resolve(c.value) : refresh;
  }

  #refresh(target: CounterTarget, key: string): Promise<CounterRead> {
    if (this.#inFlight !== undefined && this.#inFlight.key === key) return this.#inFlight.promise;
    this.calls++;
    const promise = this.#list(target, this.#timeoutMs).then(
      (rules): CounterRead => (rules === null ? { ok: false, error: `table inet ${target.table} is absent` } : { ok: true, rows: counterRows(rules), rules: rules.length }),
      (err: unknown): CounterRead => ({ ok: false, error: err instanceof Error ? err.message : String(err) }),
    ).then((value) => {
      this.#cached = { at: Date.now(), key, value };
      if (this.#inFlight?.promise === promise) this.#inFlight = undefined;
      return value;
    });
    this.#inFlight = { key, promise };
    return promise;
  }
}

/**
 * Elements in force in the named sets of nodewall's table (the drop-record sets), 0 for a set that is absent.
 * nft 1.0.6 has no element count: this lists those sets' elements, so use it only for sets bounded by a
 * `size` (drop records: 65,536 by default), never for identity sets, and cache it (cachedCount). The drops
 * module, which reads these sets anyway, can hand its own count to PromMetrics.setDropRecordSource instead.
 */
export async function countSetElements(nftPath: string, table: string, sets: readonly string[], opts: { timeoutMs?: number; netns?: string } = {}): Promise<number> {
  let n = 0;
  for (const set of sets) {
    const args = ['-j', 'list', 'set', 'inet', table, set];
    try {
      const { stdout } = await runNft(nftPath, args, { timeoutMs: opts.timeoutMs ?? 5000, ...(opts.netns === undefined ? {} : { netns: opts.netns }) });
      const items = (parseNftJson(stdout, nftPath, args) as { nftables?: unknown }).nftables;
      if (!Array.isArray(items)) continue;
      for (const item of items) {
        const s = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)['set'] : undefined;
        const elem = typeof s === 'object' && s !== null ? (s as Record<string, unknown>)['elem'] : undefined;
        if (Array.isArray(elem)) n += elem.length;
      }
    } catch (err) {
      if (isMissingTableError(err)) continue; // table or set absent: 0
      throw err;
    }
  }
  return n;
}

/** `fn` at most once per `ttlMs`, one call in flight; a failure keeps the last value (0 before any). */
export function cachedCount(fn: () => Promise<number>, ttlMs = 30_000): () => Promise<number> {
  let value = 0;
  let at = -Infinity;
  let inFlight: Promise<number> | undefined;
  return () => {
    if (Date.now() - at < ttlMs) return Promise.resolve(value);
    inFlight ??= fn().then((v) => (value = v), () => value).finally(() => {
      at = Date.now();
      inFlight = undefined;
    });
    return inFlight;
  };
}
