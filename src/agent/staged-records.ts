// Staged policies, the agent's side: read the kernel's staged record sets
// (nft/render-staged.ts), evaluate each record under the enforced model and
// under the model with the staged policies (verdict/staged-verdict.ts), and
// keep exactly the records whose verdicts differ. A record the kernel made is
// only a candidate: the report equals what `trace` says for the same flow.

import type { Logger } from 'pino';
import type { Direction } from '../api/types.js';
import { stagedSetName } from '../nft/render-staged.js';
import type { HostModel } from '../policy/model.js';
import { stagedRecordDirections, stagedView } from '../policy/staged.js';
import { stagedDecider, stagedPhrase, stagedVerdicts, type Evaluate } from '../verdict/staged-verdict.js';
import { listRecordSet, parseAuditSet, recordFlow, type AuditRecord } from './audit-records.js';
import { dedupeKey, verdictLine, type VerdictLine } from './verdict-line.js';
import type { ConnectionSnapshot } from './dry-run.js';
import { liveFlows } from './live-flows.js';

/** Read the staged record sets of the directions the model records. */
export async function readStagedRecords(model: HostModel, nftPath: string, table: string, netns?: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (const direction of stagedRecordDirections(model)) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      out.push(...parseAuditSet(await listRecordSet(nftPath, table, 'set', stagedSetName(direction, family), netns === undefined ? {} : { netns }), direction as Direction));
    }
  }
  return out;
}

/**
 * One line per record whose staged verdict differs from the enforced one:
 * verdict would-deny/would-allow (the staged outcome), policy/rule of the staged
 * decider, `staged` the phrase "would deny (staged: POLICY RULE)", `enforcedVerdict`
 * what the kernel does.
 */
export function stagedLines(records: readonly AuditRecord[], model: HostModel, evaluate: Evaluate): VerdictLine[] {
  const out: VerdictLine[] = [];
  for (const r of records) {
    const flow = recordFlow(r);
    let v;
    try {
      v = stagedVerdicts(model, flow, evaluate);
    } catch {
      continue; // not an address (cannot come from the kernel's typed set)
    }
    if (!v.changed || v.staged === undefined) continue;
    const d = stagedDecider(v.staged);
    out.push({
      direction: r.direction,
      peer: r.peer,
      proto: typeof flow.proto === 'number' ? String(flow.proto) : flow.proto,
      ...(flow.port !== undefined ? { port: flow.port } : flow.icmpType !== undefined ? { port: flow.icmpType } : {}),
      verdict: v.staged.verdict === 'deny' ? 'would-deny' : 'would-allow',
      policy: d.policy,
      rule: d.rule,
      kind: 'staged-record',
      staged: stagedPhrase(v.staged),
      enforcedVerdict: v.enforced.verdict,
    });
  }
  return out;
}

const seenByModel = new WeakMap<HostModel, Set<string>>();
/** Bound of the memo per model (4 sets x 65535 records). */
const maxSeen = 4 * 65_536;

/** The records not evaluated under `model` before (and remember them). */
export function unseen(model: HostModel, records: readonly AuditRecord[]): AuditRecord[] {
  let seen = seenByModel.get(model);
  if (seen === undefined) seenByModel.set(model, (seen = new Set()));
  const out: AuditRecord[] = [];
  for (const r of records) {
    const key = `${r.direction}|${r.peer}|${r.proto}|${r.port}`;
    if (seen.has(key)) continue;
    if (seen.size >= maxSeen) seen.clear();
    seen.add(key);
    out.push(r);
  }
  return out;
}

/**
 * The agent's periodic report: log each staged-changed record once (deduped
 * like audit records). A read failure is logged and retried on the next tick.
 */
export async function reportStaged(
  model: HostModel,
  nft: { readonly nftPath: string; readonly table: string },
  fresh: (l: VerdictLine) => boolean,
  log: Logger,
  evaluate: Evaluate,
): Promise<void> {
  if (model.staged === undefined || stagedRecordDirections(model).length === 0) return;
  let records;
  try {
    records = await readStagedRecords(model, nft.nftPath, nft.table);
  } catch (err) {
    log.warn({ err }, 'staged: cannot read the staged record sets');
    return;
  }
  // The sets hold up to 65535 records per family for 10 minutes: evaluate each record once per model.
  const lines = stagedLines(unseen(model, records), model, evaluate);
  const news = lines.filter(fresh);
  for (const l of news) log.warn({ verdictLine: true, ...l }, `${l.staged ?? l.verdict} ${l.direction} ${l.proto}/${l.port ?? '-'} ${l.peer}`);
  if (news.length > 0) log.info({ records: records.length, changed: lines.length, new: news.length, staged: model.staged.policies }, 'staged: flows whose verdict the staged policies would change');
}

/** Live connections and listeners (dry-run.ts) whose verdict the staged policies would change. */
export function stagedLiveLines(
  model: HostModel,
  snapshot: Pick<ConnectionSnapshot, 'sockets' | 'processes'>,
  evaluate: Evaluate,
): VerdictLine[] {
  const view = stagedView(model);
  if (view === undefined) return [];
  const byKey = new Map<string, VerdictLine>();
  // Flows of both models: a staged policy may add identity sets the enforced model has no listener line for.
  for (const m of [model, view]) {
    for (const lf of liveFlows(snapshot.sockets, m, snapshot.processes)) {
      const v = stagedVerdicts(model, lf.flow, evaluate);
      if (!v.changed || v.staged === undefined) continue;
      const line: VerdictLine = { ...verdictLine(lf, v.staged), staged: stagedPhrase(v.staged), enforcedVerdict: v.enforced.verdict };
      byKey.set(dedupeKey(line), line);
    }
  }
  return [...byKey.values()];
}

/** Dry-run: live connections and listeners whose verdict the staged policies would change, each once. */
export function reportStagedLive(
  model: HostModel,
  snap: Pick<ConnectionSnapshot, 'sockets' | 'processes'>,
  fresh: (l: VerdictLine) => boolean,
  log: Logger,
  evaluate: Evaluate,
): void {
  for (const l of stagedLiveLines(model, snap, evaluate).filter(fresh)) {
    log.info({ verdictLine: true, ...l }, `${l.staged ?? l.verdict} ${l.direction} ${l.proto}/${l.port ?? '-'} ${l.peer}`);
  }
}
