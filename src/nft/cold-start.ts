// Cold start: several bounded transactions instead of one that holds the
// nf_tables commit lock for seconds with very large sets (kube-proxy's nftables
// mode had the same problem: kubernetes#139328), and hooks last whatever the
// size: the kernel publishes a set's elements after its transaction made the
// rules visible (make-before-break.ts), so sets filled with the hooks would read
// as empty for a moment. Used when nodewall's table does not exist (and, twice,
// by make-before-break.ts). The invariant: no packet is ever evaluated against a
// partly filled set, because no chain of the table is hooked until every set is
// complete.
//
//   1. `create table` (fails if the table appeared meanwhile: nothing is merged into
//      someone else's table) with the ownership mark, every set declared empty, the
//      audit sets and chains and the policy chains: regular chains, which no packet
//      reaches without a jump from a base chain.
//   2. The elements, at most `maxElements` per transaction, each transaction guarded
//      by a flush of the (empty) ownership mark, so it fails if the table went away.
//      When all of them fit in one transaction they go with the declarations in 1.
//   3. One small transaction: the structure marker and the base chains with their
//      hooks and rules. Only from its commit on do packets see the table, whole.
//      It is idempotent (each base chain flushed before its rules): run twice, one copy.
//
// If any step fails, the half-built table (it has no hooked chain, so it filters
// nothing) is deleted and the error is raised: the kernel is as before the apply.
//
// A chain delta that brings large new sets (a new policy with a 250k CIDR list)
// uses fillScripts the same way (set-delta.ts prefillScripts): the new sets are
// declared and filled first, unreferenced, and the delta that adds the rules
// referring to them commits last. An existing table replaced as a whole (a
// structural change, a mode switch) is built twice with these scripts, make
// before break (make-before-break.ts).

import type { RenderedRuleset } from './render.js';
import { chainLines } from './render.js';
import { type SetSpec, elementText, renderSet } from './render-sets.js';
import { ownerMarkSet } from './ownership.js';

/** Default of config key nft.maxElementsPerTransaction. */
export const defaultMaxElementsPerTransaction = 100_000;

/** Elements per `add element` statement inside a fill transaction. */
const perStatement = 5000;

/**
 * `add element` transactions for `sets` of at most `maxElements` elements each, every one starting with
 * `guard` (a command that fails unless the table is still the one we are filling); the first one then has
 * `firstHead` (set declarations) before its elements.
 */
export function fillScripts(table: string, sets: readonly SetSpec[], maxElements: number, guard: string, firstHead: readonly string[] = []): string[] {
  const limit = Math.max(1, Math.floor(maxElements));
  const scripts: string[] = [];
  let lines: string[] = [guard, ...firstHead];
  let inTransaction = 0;
  const flush = () => {
    if (inTransaction > 0) scripts.push(`${lines.join('\n')}\n`);
    lines = [guard];
    inTransaction = 0;
  };
  for (const s of sets) {
    for (let i = 0; i < s.elements.length; ) {
      const n = Math.min(perStatement, limit - inTransaction, s.elements.length - i);
      const texts: string[] = [];
      for (let j = i; j < i + n; j++) texts.push(elementText(s.elements[j] ?? '', s.family));
      lines.push(`add element inet ${table} ${s.name} { ${texts.join(', ')} }`);
      inTransaction += n;
      i += n;
      if (inTransaction >= limit) flush();
    }
  }
  flush();
  return scripts;
}

export interface StagedOptions {
  /** Build the ruleset in this table instead of r.table (make-before-break.ts: the temporary table). */
  readonly table?: string;
  /**
   * The first transaction replaces a table of that name (`table {}` + `delete table`, then the unhooked copy)
   * instead of `create table`, which fails when it exists. Used only where something else enforces meanwhile.
   */
  readonly replace?: boolean;
  /** Commands added to the end of the last (hook) transaction: they commit together with the hooks. */
  readonly withHook?: readonly string[];
}

/** The scripts of a staged cold start, in order: create, fills, hook. */
export function coldStartScripts(r: RenderedRuleset, maxElements: number, o: StagedOptions = {}): string[] {
  const limit = Math.max(1, Math.floor(maxElements));
  const t = o.table ?? r.table;
  let total = 0;
  for (const s of r.sets.values()) total += s.elements.length;
  // Within the limit the elements go with the sets' declarations: nothing is hooked yet, and nft loads them
  // as fast as a bare `nft -f` of the whole table (a separate fill costs 5-25 % more: `add element` statements).
  const inline = total <= limit;
  const { create, hook } = stagedEnds(r, o, inline);
  return inline ? [create, hook] : [create, ...fillScripts(t, [...r.sets.values()], limit, `flush set inet ${t} ${ownerMarkSet}`), hook];
}

/**
 * One script that builds, in an empty namespace, the structure a staged cold start builds: its first and last
 * transactions, the fills left out (they add elements, no objects). Objects are listed in the order they were
 * made, so a single-transaction load (RenderedRuleset.structureScript) would list differently: this is what the
 * drift hash of a staged cold start is predicted from (predicted-table-hash.ts).
 */
export function coldStartStructureScript(r: RenderedRuleset): string {
  const { create, hook } = stagedEnds(r, {}, false);
  return `${create}${hook}`;
}

function stagedEnds(r: RenderedRuleset, o: StagedOptions, withElements: boolean): { create: string; hook: string } {
  const t = o.table ?? r.table;
  const body = [...r.skeletonLines];
  for (const s of r.sets.values()) for (const l of renderSet(s, withElements)) body.push(l);
  for (const ch of r.chains.values()) if (ch.hook === undefined) for (const l of chainLines(ch)) body.push(l);
  // The table's comment (node, mode) goes with `create`: nft 1.0.6 drops a comment given by a later `table` block
  // of the same transaction, so a cold start would list without it, and otherwise than the same table replaced.
  const comment = body.find((l) => /^\tcomment "/.test(l));
  const start = o.replace === true
    ? [`table inet ${t} {}`, `delete table inet ${t}`]
    : [comment === undefined ? `create table inet ${t}` : `create table inet ${t} { ${comment.trim()}; }`];
  const create = [r.header, ...start, `table inet ${t} {`, ...body, '}', ''].join('\n');

  // Idempotent: sent a second time (the nft launcher runs a change again when it failed without knowing whether
  // nft finished, nft-launcher.ts), it leaves the same table. `add set` and `add chain` of what exists are
  // no-ops; each base chain is flushed before its rules are added, in the same transaction, so a second run
  // does not append a second copy of them, and no packet ever sees the chain empty (one atomic commit).
  const hook = [`flush set inet ${t} ${ownerMarkSet}`, `add set inet ${t} ${r.markerSet} { type inet_proto; comment "nodewall structure marker"; }`];
  for (const ch of r.chains.values()) {
    if (ch.hook === undefined) continue;
    hook.push(`add chain inet ${t} ${ch.name} { type filter hook ${ch.hook} priority filter; policy accept; }`);
    hook.push(`flush chain inet ${t} ${ch.name}`);
    for (const rule of ch.rules) hook.push(`add rule inet ${t} ${ch.name} ${rule}`);
  }
  for (const l of o.withHook ?? []) hook.push(l);
  return { create, hook: `${hook.join('\n')}\n` };
}
