// `nodewall audit`, staged policies: the live flows they would change and the
// candidate flows the kernel recorded (when the agent runs with the staged
// record sets), each evaluated under both models; only changed verdicts are kept.

import { formatTable } from '../../agent/dry-run.js';
import type { ConnectionSnapshot } from '../../agent/dry-run.js';
import { readStagedRecords, stagedLines, stagedLiveLines } from '../../agent/staged-records.js';
import { dedupeKey, type VerdictLine } from '../../agent/verdict-line.js';
import type { HostModel } from '../../policy/model.js';
import { evaluate } from '../../verdict/evaluate.js';

export interface StagedAudit {
  readonly lines: VerdictLine[];
  /** Why the kernel's records are not part of the report, when they are not. */
  readonly note?: string;
}

/** `nft`: the config the model was built from (state.config.nft), not the config file read again. */
export async function stagedAuditLines(model: HostModel, snap: Pick<ConnectionSnapshot, 'sockets' | 'processes'>, nft: { readonly path: string; readonly table: string }): Promise<StagedAudit> {
  if (model.staged === undefined) return { lines: [] };
  const byKey = new Map<string, VerdictLine>();
  for (const l of stagedLiveLines(model, snap, evaluate)) byKey.set(dedupeKey(l), l);
  let note: string | undefined;
  try {
    for (const l of stagedLines(await readStagedRecords(model, nft.path, nft.table), model, evaluate)) byKey.set(dedupeKey(l), l);
  } catch (err) {
    note = `kernel records not read (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): is the agent running in enforce or audit mode with these policies?`;
  }
  return { lines: [...byKey.values()], ...(note === undefined ? {} : { note }) };
}

export function stagedAuditText(policies: readonly string[], a: StagedAudit): string {
  const out = [`staged policies (evaluated, not enforced): ${policies.join(', ')}`];
  if (a.lines.length === 0) out.push('no flow whose verdict they would change');
  else out.push(formatTable(a.lines.map((l) => ({ ...l, rule: `${l.rule} (${l.staged ?? ''}; enforced: ${l.enforcedVerdict ?? '?'})` }))));
  if (a.note !== undefined) out.push(a.note);
  return `${out.join('\n')}\n`;
}
