// The drift check's table hash after an apply, without reading the table back
// when the apply cannot have changed it.
//
// The hash is of `nft -t list table` (drift.ts): set elements are left out. An
// element-only delta (flush of the empty structure marker, then element adds
// and deletes) and a noop leave that listing as it was, so the hash recorded
// after the previous apply still describes the table. Reusing it is also the
// stricter choice: had someone changed a chain since, a read-back would adopt
// their change as the expected table, where the kept hash still flags it as
// drift on the next check. Anything else (a full replace, a chain delta, no
// earlier hash, the kernel read instead of memory, another table, path or
// mode) reads the table back, as before. Called inside the NftWriteLock.

import type { RunMode } from '../inventory/types.js';
import type { ApplyResult } from '../nft/apply.js';
import type { AppliedRuleset } from './drift-repair.js';
import { tableHashNow } from './drift.js';

export interface AfterApply {
  readonly nftPath: string;
  readonly table: string;
  readonly mode: RunMode;
  /** The apply trusted the previous state in memory (did not read the kernel). */
  readonly fromMemory: boolean;
  readonly result: ApplyResult;
}

/** The earlier recorded hash when it still holds, else undefined (read the table back). */
export function keptTableHash(before: AppliedRuleset | undefined, a: AfterApply): string | undefined {
  if (before?.tableHash === undefined || !a.fromMemory) return undefined;
  if (before.nftPath !== a.nftPath || before.table !== a.table || before.mode !== a.mode) return undefined;
  const unchangedLayout = a.result.kind === 'noop' || (a.result.kind === 'delta' && a.result.chains.length === 0 && a.result.structureHash === structureOf(before));
  return unchangedLayout ? before.tableHash : undefined;
}

function structureOf(r: AppliedRuleset): string | undefined {
  return r.structureHash;
}

/** The hash to record after an apply: kept, or read back (undefined: the table is absent). */
export async function tableHashAfterApply(before: AppliedRuleset | undefined, a: AfterApply): Promise<string | undefined> {
  const kept = keptTableHash(before, a);
  if (kept !== undefined) return kept;
  return tableHashNow(a.nftPath, a.table);
}
