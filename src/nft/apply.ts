// Render and load: the only path by which nodewall changes the kernel.
// An element delta is one `nft -f` transaction; a chain delta, a cold start and a
// full replace are several, ordered so that no transaction shows packets a rule
// together with a set it fills (make-before-break.ts says why), and each failure
// leaves a ruleset in force that the old or the new one defines (the old one,
// except where make-before-break.ts says otherwise). The NftError says why. There is no separate
// `nft -c` step: nft evaluates the whole script before it sends the batch, and
// the kernel commits the batch all or nothing, so a check would only repeat
// the work (test/e2e/apply.test.ts proves a script failing late changes
// nothing). Dry runs still check, since they must not commit.

import { performance } from 'node:perf_hooks';
import type { DropRecordSettings, RunMode } from '../inventory/types.js';
import type { HostModel } from '../policy/model.js';
import { defaultMaxElementsPerTransaction, coldStartScripts, coldStartStructureScript } from './cold-start.js';
import { NftError, checkScript, loadScript, runNft } from './nft-exec.js';
import { ForeignTableError, type Ownership, readOwnership } from './ownership.js';
import { NftRerunError, NftStillRunningError } from './nft-launcher.js';
import { findTemporaryTables, makeBeforeBreakScripts, removeTemporaryTables, stillWhole, temporaryTableNames } from './make-before-break.js';
import { type KernelTable, readTable } from './read-kernel.js';
import { type RenderedRuleset, renderPlan } from './render.js';
import { type ModelDeltaLookup, elementDelta, noteApplied } from './render-delta.js';
import { type ApplyPlan, type PlanChanges, type PreviousState, type SetDelta, describeChanges, planApply, renderDelta } from './set-delta.js';

export interface ApplyOptions {
  readonly nftPath: string;
  readonly table: string;
  readonly mode: RunMode;
  /** Plan and check (`nft -c`) only; the kernel is not changed. */
  readonly dryRun?: boolean;
  /**
   * What the kernel held after the last successful apply (ApplyResult.state).
   * Saves reading the table back; a stale value only costs a fallback to a full replace.
   */
  readonly previous?: PreviousState;
  /** Run nft inside this named network namespace (tests, bench). */
  readonly netns?: string;
  /** Kill nft after this long (config nft.timeoutSeconds). */
  readonly timeoutMs?: number;
  /**
   * Replace the table even when it lacks nodewall's ownership mark (`nodewall apply --adopt`).
   * Without it a full replace of a foreign table throws ForeignTableError. The agent never sets it.
   */
  readonly adopt?: boolean;
  /**
   * Set elements per transaction of a staged build: a cold start (always staged when there are elements, base
   * chains hooked last: cold-start.ts), the two builds of a make-before-break replace and a chain delta's new
   * sets. Config nft.maxElementsPerTransaction.
   */
  readonly maxElementsPerTransaction?: number;
  /**
   * Replace the whole table whatever the kernel holds (drift repair). Without it the plan trusts the structure
   * marker set, which a stray `nft delete rule` leaves in place: the edit would be planned as a noop.
   */
  readonly replace?: boolean;
  /** Config dropRecords (enforce mode): record every drop in the kernel (render-drop-records.ts); undefined = off. */
  readonly dropRecords?: DropRecordSettings | undefined;
  /**
   * How a model was made from another by set element changes alone (the agent's StateBuilder). With `previous`,
   * an element delta is then taken from the model's set deltas instead of a render and a diff of every set,
   * where that is provably the same (render-delta.ts); anything else renders and diffs as before.
   */
  readonly modelDeltas?: ModelDeltaLookup | undefined;
  /**
   * Called right before a cold start is sent (the table is built from nothing), with its structure hash and a
   * script that builds the same structure in an empty namespace (the agent predicts the drift hash from it
   * meanwhile: predicted-table-hash.ts). Not for a delta, a make-before-break replace, a cold start after a
   * failed delta (the apply's result is then of other transactions too, which no prediction serves) or a dry
   * run. ApplyResult.predictable says whether it was called.
   */
  readonly onFullLoad?: ((load: PredictableLoad) => void) | undefined;
}

/** What the drift hash of a cold start is predicted from. */
export interface PredictableLoad {
  readonly structureHash: string;
  /** Loaded into an empty namespace, it builds the structure (no elements) the cold start builds. */
  readonly structureScript: string;
}

export interface ApplyResult {
  readonly kind: 'full' | 'delta' | 'noop';
  readonly dryRun: boolean;
  /** Why this kind was chosen (and, after a failed delta, why it fell back). */
  readonly reason: string;
  readonly structureHash: string;
  readonly rules: number;
  readonly sets: number;
  readonly elements: number;
  readonly added: number;
  readonly removed: number;
  /** nft transactions sent (a staged cold start sends several; 0 for a noop or a dry run). */
  readonly transactions: number;
  /** The table was built from nothing by this apply alone and onFullLoad was called for it. */
  readonly predictable: boolean;
  /**
   * How a full apply made the table's objects, which sets the order its listing (and so the drift hash) shows
   * them in: in one transaction (a cold start without set elements) or staged, base chains and structure marker
   * last (a cold start with elements, a make-before-break replace). Undefined for a delta, a noop, a dry run.
   */
  readonly build?: 'one-transaction' | 'staged';
  /** Wall time of the longest of them: an upper bound of how long it held the nf_tables commit lock. */
  readonly maxTransactionMs: number;
  /** Chains a delta created, flushed and refilled, or deleted (empty for a full replace or an element-only delta). */
  readonly chains: readonly string[];
  /** The script sent (or, in a dry run, that would be sent). */
  readonly script: string;
  readonly durationsMs: { readonly render: number; readonly read: number; readonly check: number; readonly load: number; readonly total: number };
  /** Pass as `previous` to the next apply. */
  readonly state: PreviousState;
  /** True when a table without nodewall's mark was (or, in a dry run, would be) taken over (`adopt`). */
  readonly adopted: boolean;
  /** In a dry run: what would change, by set element and by rule comment. */
  readonly changes?: PlanChanges;
}

function elementCount(r: RenderedRuleset): number {
  let n = 0;
  for (const s of r.sets.values()) n += s.elements.length;
  return n;
}

/** The plan of an element delta taken from the model (render-delta.ts): what planApply gives for the same change. */
function planFromElementDelta(next: RenderedRuleset, deltas: readonly SetDelta[]): ApplyPlan {
  if (deltas.length === 0) return { kind: 'noop', reason: 'the kernel already holds this ruleset' };
  const added = deltas.reduce((n, d) => n + d.add.length, 0);
  const removed = deltas.reduce((n, d) => n + d.remove.length, 0);
  return {
    kind: 'delta', script: renderDelta(next.table, next.markerSet, deltas), prefill: [], deltas, added, removed, chains: [],
    reason: `${removed} removed, ${added} added elements (from the model's set deltas)`,
  };
}

export async function applyModel(model: HostModel, opts: ApplyOptions): Promise<ApplyResult> {
  const t0 = performance.now();
  const exec = { ...(opts.netns === undefined ? {} : { netns: opts.netns }), ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }) };
  const replace = opts.replace === true;
  const dryRun = opts.dryRun === true;
  const renderOpts = { table: opts.table, mode: opts.mode, dropRecords: opts.dropRecords };
  const fast = !dryRun && !replace && opts.adopt !== true && opts.previous !== undefined && opts.modelDeltas !== undefined
    ? elementDelta(model, renderOpts, opts.previous, opts.modelDeltas)
    : undefined;
  const rendered = fast?.rendered ?? renderPlan(model, renderOpts);
  const t1 = performance.now();
  // A replace needs no elements read back (a terse ownership read says whether the table exists: cold start).
  const kernel: KernelTable | null | undefined = replace
    ? ((await readOwnership(opts.nftPath, opts.table, exec)) === 'absent' ? null : undefined)
    : opts.previous === undefined ? await readTable(opts.nftPath, opts.table, exec) : undefined;
  const previous = replace ? null : (opts.previous ?? kernel ?? null);
  const t2 = performance.now();
  let adopted = false;
  // Before anything that replaces the table (a full load, or its dry run): is it ours to replace?
  // A delta needs no check: it flushes (element delta) or deletes (chain delta) nodewall's structure marker
  // first, so it fails on any other table, and its fallback is a full load, which is checked.
  const ensureOwned = async (): Promise<void> => {
    const owner: Ownership = kernel === undefined ? await readOwnership(opts.nftPath, opts.table, exec) : kernel === null ? 'absent' : kernel.ownership;
    if (owner !== 'foreign') return;
    if (opts.adopt !== true) throw new ForeignTableError(opts.table);
    adopted = true;
  };
  const limit = opts.maxElementsPerTransaction ?? defaultMaxElementsPerTransaction;
  let plan: ApplyPlan = fast === undefined ? planApply(previous, rendered, { maxElementsPerTransaction: limit }) : planFromElementDelta(rendered, fast.deltas);
  if (replace && kernel !== null) plan = { kind: 'full', script: rendered.script, reason: 'replace requested (drift repair)' };
  if (kernel?.ownership === 'legacy' && plan.kind !== 'full') {
    // An older nodewall's table: rewrite it once so that it carries the ownership mark.
    plan = { kind: 'full', script: rendered.script, reason: 'table of an older nodewall without the ownership mark' };
  }
  let check = 0;
  let predictable = false;
  let build: 'one-transaction' | 'staged' | undefined;
  let load = 0;
  let transactions = 0;
  let maxTransactionMs = 0;
  /** One `nft -f` transaction, timed. */
  const send = async (script: string): Promise<void> => {
    const s0 = performance.now();
    transactions++;
    try {
      await loadScript(opts.nftPath, script, exec);
    } finally {
      const ms = performance.now() - s0;
      load += ms;
      maxTransactionMs = Math.max(maxTransactionMs, ms);
    }
  };
  let reason = plan.reason;

  if (dryRun) {
    const c0 = performance.now();
    if (plan.kind === 'full') {
      await ensureOwned();
      await checkScript(opts.nftPath, plan.script, exec);
    }
    check = performance.now() - c0;
  } else if (plan.kind === 'delta') {
    try {
      for (const script of plan.prefill) await send(script);
      await send(plan.script);
    } catch (err) {
      if (!(err instanceof NftError)) throw err;
      // The kernel drifted from what we believed (table replaced, elements edited): rewrite it all.
      reason = `${plan.chains.length > 0 ? 'chain' : 'element'} delta failed (${err.message}); full replace`;
      plan = { kind: 'full', script: rendered.script, reason };
    }
  }
  if (!dryRun && plan.kind === 'full') {
    await ensureOwned();
    if (adopted) reason = `adopted table inet ${opts.table}, which had no nodewall ownership mark (--adopt); ${reason}`;
    const elements = fast?.elements ?? elementCount(rendered);
    if (kernel === null && elements > 0) {
      // Staged, hooks last, whatever the size: a set filled in the transaction that hooks the chains reading it
      // reads as empty for a moment (make-before-break.ts), which would drop allowed traffic at start.
      const scripts = coldStartScripts(rendered, limit);
      if (transactions === 0) {
        opts.onFullLoad?.({ structureHash: rendered.structureHash, structureScript: coldStartStructureScript(rendered) });
        predictable = opts.onFullLoad !== undefined;
      }
      let created = false;
      try {
        for (const script of scripts) {
          await send(script);
          created = true;
        }
      } catch (err) {
        // Nothing is hooked before the last transaction commits: the half-built table filters nothing, remove
        // it. Only when we made it: the first transaction (`create table`) fails if the table appeared meanwhile.
        if (created || (err instanceof NftRerunError && (await halfBuiltByUs(opts.nftPath, opts.table, exec)))) {
          await runNft(opts.nftPath, ['delete', 'table', 'inet', opts.table], exec).catch(() => undefined);
        }
        throw err;
      }
      reason = `${reason}; cold start of ${elements} elements in ${scripts.length} transactions (at most ${limit} elements each, hooks last)`;
      build = 'staged';
    } else if (kernel === null) {
      // No set elements: one transaction, nothing can read as half filled.
      // Only for a full load that is this apply's one transaction: the prediction describes no other result
      // (a fallback after a failed delta sent others first: table-hash-after-apply.ts predictedFor).
      if (transactions === 0) {
        opts.onFullLoad?.(rendered);
        predictable = opts.onFullLoad !== undefined;
      }
      await send(rendered.script);
      build = 'one-transaction';
    } else {
      const n = await replaceMakingBeforeBreaking(rendered, limit, opts.nftPath, exec, send);
      reason = `${reason}; made before break: the new ruleset filtered from a temporary table first (${n} transactions)`;
      build = 'staged';
    }
  }
  // Also after a noop planned against the table as read now (its structure marker matched: whole, hooked): the
  // first apply of a process is often one (a restart with unchanged input), and a temporary table left by a
  // crash would otherwise keep filtering next to it, intersecting its ruleset, until some later change. A noop
  // against remembered state says nothing of the kernel: no cleanup then.
  if (!dryRun && (plan.kind !== 'noop' || (kernel !== undefined && kernel !== null))) await cleanUpTemporaryTables(opts.nftPath, opts.table, exec);
  const t3 = performance.now();
  const delta = plan.kind === 'delta' ? plan : undefined;
  const elements = fast?.elements ?? elementCount(rendered);
  // What this state was rendered from: the next apply may take its element delta from the model (render-delta.ts).
  if (!dryRun) noteApplied(rendered, model, renderOpts, elements);
  return {
    kind: plan.kind,
    dryRun,
    reason,
    structureHash: rendered.structureHash,
    rules: rendered.ruleCount,
    sets: rendered.sets.size,
    elements,
    added: delta?.added ?? 0,
    removed: delta?.removed ?? 0,
    chains: delta?.chains ?? [],
    transactions,
    predictable,
    ...(build === undefined ? {} : { build }),
    maxTransactionMs,
    script: plan.kind === 'noop' ? '' : plan.script,
    adopted,
    durationsMs: { render: t1 - t0, read: t2 - t1, check, load, total: t3 - t0 },
    state: dryRun ? (previous ?? { structureHash: null, sets: new Map() }) : rendered,
    ...(dryRun ? { changes: describeChanges(previous, rendered) } : {}),
  };
}

/**
 * Full replace of an existing table by the scripts of make-before-break.ts; returns how many transactions it sent.
 * Throws when it fails: while the temporary table was being built it is removed and the old ruleset stays; once
 * the table's own rebuild may have begun, the temporary table stays and filters with the new ruleset until a later
 * full apply replaces it. "May have begun": a transaction that failed can still have committed (nft killed after
 * the commit by a timeout, or still blocked on the nf_tables lock: NftStillRunningError), and deleting the
 * temporary table next to the unhooked copy would leave the node with no nodewall filtering at all. So after a
 * failure of the table's first transaction the temporary table goes only when no nft of it can still commit and
 * the table still holds its structure marker and hooks (make-before-break.ts stillWhole). The same holds for a
 * failure while the temporary table is built when stale temporary tables existed: its hook transaction deletes
 * them, and may have committed; if the table is not whole (a replace that failed before), they filtered alone.
 */
async function replaceMakingBeforeBreaking(
  rendered: RenderedRuleset,
  limit: number,
  nftPath: string,
  exec: { netns?: string; timeoutMs?: number },
  send: (script: string) => Promise<void>,
): Promise<number> {
  const found = await findTemporaryTables(nftPath, rendered.table, exec);
  if (found.free === undefined) {
    throw new Error(
      `cannot replace table inet ${rendered.table}: every temporary table name (${temporaryTableNames(rendered.table).join(', ')}) is taken; ` +
        'the old ruleset stays in force. Delete the ones that are not needed.',
    );
  }
  const scripts = makeBeforeBreakScripts(rendered, limit, found.free, found.ours);
  let stage: 'temporary' | 'table' | 'touched' = 'temporary';
  try {
    for (const s of scripts.temporary) await send(s);
    stage = 'table';
    for (const s of scripts.table) {
      await send(s);
      stage = 'touched';
    }
  } catch (err) {
    // Without stale temporary tables, a failure while the temporary one is built leaves the table as it was:
    // deleting the temporary one restores the state before the apply. Otherwise (its hook transaction deletes
    // the stale ones; the table's own rebuild may have begun) it goes only while the table is whole, hooked,
    // and no nft of this apply can still commit.
    const restoresBefore = stage === 'temporary' && found.ours.length === 0;
    const drop = restoresBefore
      || (stage !== 'touched' && !(err instanceof NftStillRunningError) && (await stillWhole(nftPath, rendered.table, exec)));
    if (drop) await runNft(nftPath, ['delete', 'table', 'inet', found.free], exec).catch(() => undefined);
    tablesCleaned.delete(cleanKey(rendered.table, exec));
    throw err;
  }
  return scripts.temporary.length + scripts.table.length;
}

/** Tables (per namespace) whose temporary tables this process has checked for since it last left one. */
const tablesCleaned = new Set<string>();

function cleanKey(table: string, exec: { netns?: string }): string {
  return `${exec.netns ?? ''}\u0000${table}`;
}

/**
 * After the first full or delta apply of this process (the table is whole then: a full apply built it, a delta's
 * marker check found it), or its first noop planned from a fresh read of the table, and after one that failed
 * halfway: delete temporary tables an earlier run left
 * (make-before-break.ts). A failure here is no apply failure: it is tried again after the next apply.
 */
async function cleanUpTemporaryTables(nftPath: string, table: string, exec: { netns?: string; timeoutMs?: number }): Promise<void> {
  const key = cleanKey(table, exec);
  if (tablesCleaned.has(key)) return;
  try {
    await removeTemporaryTables(nftPath, table, exec);
    tablesCleaned.add(key);
  } catch {
    // Left for the next apply.
  }
}

/**
 * The table is what the first cold-start transaction makes and nothing more: our ownership mark, no structure
 * marker, no hooked chain (it filters nothing, so removing it never opens anything). A rerun of that transaction
 * (NftRerunError: the nft launcher ran it again after its first run may have committed) fails on the table its
 * first run made: without this, that half-built table would stay until the next pass replaced it.
 */
async function halfBuiltByUs(nftPath: string, table: string, exec: { netns?: string; timeoutMs?: number }): Promise<boolean> {
  const k = await readTable(nftPath, table, exec).catch(() => null);
  return k !== null && k.ownership === 'mark' && k.structureHash === null && k.chains.every((c) => c.hook === undefined);
}
