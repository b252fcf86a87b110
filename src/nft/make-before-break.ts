// Full replace of an existing table, make before break.
//
// One transaction that deletes the table and creates it anew is atomic for the
// rule set, but not for set lookups: the kernel (6.18; nf_tables interval sets,
// rbtree and pipapo) publishes the elements of a set created in a transaction
// only after that transaction has made the rules using it visible. For that
// moment every new set reads as empty: allow rules match nothing (allowed traffic
// dropped), and deny rules and `!= @exclusion` matches fail open. Measured with
// packets: ~50 ms for one 100k-element set, thousands of packets per replace
// (README "Transactions and the kernel"; test/e2e/commit-window.test.ts).
// Elements of sets that already exist are never missed.
//
// So no transaction here makes a rule visible together with a set it reads:
//   1. the new ruleset is built in a temporary table (nodewall's own, with the
//      ownership mark) staged as a cold start: sets and regular chains unhooked,
//      elements in bounded transactions, base chains hooked last. From then on
//      both tables filter: a packet passes only if both accept it, so nothing is
//      allowed that the old or the new ruleset drops;
//   2. the table itself is rebuilt the same way: its first transaction replaces it
//      with an unhooked copy (the temporary table alone filters: the new ruleset),
//      its last one hooks its base chains and deletes the temporary table(s).
// A failure while the temporary table is built changes nothing (it is deleted,
// the old ruleset stays), unless its hook transaction, which deletes stale
// temporary tables, may have committed while the table is not whole (a replace
// failed before): then it is kept. A failure once the table's own rebuild may have begun
// leaves the temporary table filtering with the new ruleset (also when nft was
// killed and may have committed: then the table may be the unhooked copy, and
// the temporary table is all that filters). The next full apply builds anew
// beside it (under another temporary name); the hook transaction of that new
// temporary table deletes the old one, so at most one left-over temporary table
// ever filters next to the table (two would filter the intersection of two
// rulesets).
// The price: the elements go to the kernel twice. Only full replaces of an
// existing table pay it (structural changes a chain delta cannot make, mode
// switches, drift repair); element and chain deltas and cold starts do not.

import { parseNftJson, runNft } from './nft-exec.js';
import { coldStartScripts } from './cold-start.js';
import { isMissingTableError, ownershipOfJson, type Ownership } from './ownership.js';
import { parseTableDoc } from './read-kernel.js';
import type { RenderedRuleset } from './render.js';

type Exec = { readonly netns?: string; readonly timeoutMs?: number };

/** How many temporary names there are: one per full apply that failed halfway and left its table behind. */
const maxTemporaryTables = 4;

/** The temporary tables' names for `table`, in the order they are tried. */
export function temporaryTableNames(table: string): string[] {
  return Array.from({ length: maxTemporaryTables }, (_, i) => `${table}_next${i}`);
}

export interface TemporaryTables {
  /** Existing temporary tables with nodewall's mark (left by a failed apply or a crash). */
  readonly ours: readonly string[];
  /** The first temporary name no table has; undefined when every name is taken. */
  readonly free: string | undefined;
}

/**
 * The temporary tables in the kernel. A table of such a name without nodewall's mark is neither ours nor free.
 * One terse listing of each name's sets, all at once: `nft list tables` would cost seconds at 1M elements
 * (nft 1.0.6 fetches every element for it), a set listing without elements some milliseconds.
 */
export async function findTemporaryTables(nftPath: string, table: string, exec: Exec): Promise<TemporaryTables> {
  const names = temporaryTableNames(table);
  const owners = await Promise.all(names.map((name) => ownershipBySets(nftPath, name, exec)));
  const ours = names.filter((_, i) => owners[i] === 'mark');
  return { ours, free: names.find((_, i) => owners[i] === 'absent') };
}

async function ownershipBySets(nftPath: string, name: string, exec: Exec): Promise<Ownership> {
  const args = ['-j', '-t', 'list', 'sets', 'table', 'inet', name];
  try {
    const { stdout } = await runNft(nftPath, args, exec);
    // nft 1.0.6 lists the sets of every inet table here (it only fails when `name` does not exist): the other
    // tables' sets, nodewall's own mark among them, must not count.
    const items = (parseNftJson(stdout, nftPath, args) as { nftables?: unknown }).nftables;
    const own = Array.isArray(items) ? items.filter((i) => (i as { set?: { table?: unknown } } | null)?.set?.table === name) : [];
    return ownershipOfJson({ nftables: own });
  } catch (err) {
    if (isMissingTableError(err)) return 'absent';
    throw err;
  }
}

/**
 * The transactions of a make-before-break replace of `r.table` (see the top of this file): first those that build
 * the ruleset in `temporary`, then those that rebuild the table itself. The `stale` temporary tables (left by an
 * earlier replace that failed) go with the hook transaction of `temporary`: from that commit on the new ruleset
 * filters whole, so the ruleset a stale table holds is not intersected with it any longer. The table's own hook
 * transaction deletes `temporary` (and, idempotently, the stale ones again).
 */
export function makeBeforeBreakScripts(
  r: RenderedRuleset,
  maxElements: number,
  temporary: string,
  stale: readonly string[],
): { readonly temporary: string[]; readonly table: string[] } {
  // `table {}` first: the hook transactions stay idempotent (the nft launcher may run one a second time).
  const drop = (names: readonly string[]) => names.flatMap((name) => [`table inet ${name} {}`, `delete table inet ${name}`]);
  return {
    temporary: coldStartScripts(r, maxElements, { table: temporary, withHook: drop(stale) }),
    table: coldStartScripts(r, maxElements, { replace: true, withHook: drop([temporary, ...stale]) }),
  };
}

/**
 * True when `table` still carries a structure marker and a hooked base chain: a whole ruleset that filters. The
 * first transaction of the table's rebuild replaces it with an unhooked copy without a marker (the marker comes
 * with the hooks, in the transaction that also deletes the temporary table), so this says whether that first
 * transaction has committed. Any doubt (the listing fails) is false. Terse: no elements are fetched.
 */
export async function stillWhole(nftPath: string, table: string, exec: Exec): Promise<boolean> {
  const args = ['-j', '-t', 'list', 'table', 'inet', table];
  try {
    const k = parseTableDoc(parseNftJson((await runNft(nftPath, args, exec)).stdout, nftPath, args), table);
    return k.structureHash !== null && k.chains.some((c) => c.hook !== undefined);
  } catch {
    return false;
  }
}

/** Delete the temporary tables nodewall left (after a crash, or a failed apply). Never a table without the mark. */
export async function removeTemporaryTables(nftPath: string, table: string, exec: Exec): Promise<readonly string[]> {
  const { ours } = await findTemporaryTables(nftPath, table, exec);
  for (const name of ours) await runNft(nftPath, ['delete', 'table', 'inet', name], exec);
  return ours;
}
