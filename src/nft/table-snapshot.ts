// The kernel's version of nodewall's table, kept aside so that a commit-confirm
// apply can be undone: either "no table" or the full `nft list table inet T`
// listing (elements, counters, timed audit elements included: nft 1.0.6 loads
// its own listing back, `expires` and all).
//
// Restoring is one transaction (`add table; delete table; <listing>`), so it
// is idempotent: the watchdog and the agent may both do it and the result is
// the same. It touches only `table inet T` and the temporary tables of a full
// replace of T that did not finish (`T_next0` ..., with nodewall's mark only,
// deleted in the same transaction; make-before-break.ts):
// - "no table" deletes the table only when it carries nodewall's mark (or the
//   legacy marker); someone else's table of that name is left alone;
// - a listing is loaded only when it is exactly one `table inet T { ... }`
//   block (the snapshot comes from a state file that may be corrupt or
//   hostile: no second table, no `include`/`define`, balanced braces), and
//   never over a table that is not nodewall's unless the snapshot itself was
//   that table (an `apply --adopt` being undone).

import { NftError, runNft } from './nft-exec.js';
import { findTemporaryTables } from './make-before-break.js';
import { isMissingTableError, readOwnership, type Ownership } from './ownership.js';

export type TableSnapshot =
  | { readonly kind: 'absent' }
  | { readonly kind: 'table'; readonly ownership: Exclude<Ownership, 'absent'>; readonly script: string };

export interface SnapshotExec {
  readonly netns?: string;
  readonly timeoutMs?: number;
}

/** A snapshot that cannot be restored (bad listing, someone else's table in the way). */
export class RestoreError extends Error {
  override readonly name = 'RestoreError';
}

/** Read `table inet T` as it is now. Throws NftError when nft fails (other than "no such table"). */
export async function snapshotTable(nftPath: string, table: string, exec: SnapshotExec = {}): Promise<TableSnapshot> {
  const ownership = await readOwnership(nftPath, table, exec);
  if (ownership === 'absent') return { kind: 'absent' };
  try {
    const { stdout } = await runNft(nftPath, ['list', 'table', 'inet', table], exec);
    const problem = snapshotProblem(stdout, table);
    if (problem !== undefined) throw new RestoreError(`the listing of table inet ${table} cannot be kept for a rollback: ${problem}`);
    // The table unhooked (the copy a full replace that did not finish left): what filters is the temporary table
    // beside it. Kept under the table's name, a rollback puts that ruleset back; the unhooked copy would restore
    // a node with no nodewall filtering at all (restoreTable deletes the temporary tables).
    const filtering = hooked(stdout) ? undefined : await filteringTemporaryTable(nftPath, table, exec);
    return { kind: 'table', ownership, script: filtering ?? stdout };
  } catch (err) {
    // Deleted between the two reads.
    if (isMissingTableError(err)) return { kind: 'absent' };
    throw err;
  }
}

/** A listing with a base chain (`type filter hook input priority ...`): the table filters. */
function hooked(listing: string): boolean {
  return /\btype \w+ hook \w+/.test(listing);
}

/**
 * The listing, renamed to `table`, of the one hooked temporary table of nodewall's for `table`, or undefined when
 * there is none. Two hooked ones filter the intersection of two rulesets, which no single table can be.
 */
async function filteringTemporaryTable(nftPath: string, table: string, exec: SnapshotExec): Promise<string | undefined> {
  const listings: string[] = [];
  for (const name of (await findTemporaryTables(nftPath, table, exec)).ours) {
    const { stdout } = await runNft(nftPath, ['list', 'table', 'inet', name], exec);
    if (hooked(stdout) && snapshotProblem(stdout, name) === undefined) listings.push(stdout.replace(`table inet ${name} {`, `table inet ${table} {`));
  }
  if (listings.length > 1) {
    throw new RestoreError(`table inet ${table} is unhooked and ${listings.length} temporary tables of it filter: no single table restores that; a plain apply or drift repair rebuilds it first`);
  }
  return listings[0];
}

const forbiddenWords = /(^|[\s;{}])(include|define|redefine|undefine)\b/;

/**
 * Why `script` is not a single `table inet T { ... }` block, or undefined when it is. Braces inside
 * double-quoted strings (comments) do not count; nft strings have no escapes.
 */
export function snapshotProblem(script: string, table: string): string | undefined {
  const text = script.replace(/\r/g, '');
  const header = `table inet ${table} {`;
  const start = text.search(/\S/);
  if (start < 0) return 'it is empty';
  if (!text.startsWith(header, start)) return `it does not start with "${header}"`;
  let depth = 0;
  let inString = false;
  let outside = '';
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '\0') return 'it contains a NUL byte';
    if (inString) {
      if (c === '"') inString = false;
      else if (c === '\n') return 'a string runs past the end of its line';
      continue;
    }
    if (c === '"') {
      inString = true;
      continue;
    }
    outside += c;
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) {
        if (text.slice(i + 1).trim() !== '') return 'there is more after the table block';
        if (forbiddenWords.test(outside)) return 'it uses include/define';
        return undefined;
      }
    }
  }
  return inString ? 'a string is not closed' : 'the table block is not closed';
}

/** The transaction that puts `snapshot` back (for a listing), or undefined for "no table". Throws RestoreError. */
export function restoreScript(snapshot: TableSnapshot, table: string): string | undefined {
  if (snapshot.kind === 'absent') return undefined;
  const problem = snapshotProblem(snapshot.script, table);
  if (problem !== undefined) throw new RestoreError(`the kept listing of table inet ${table} is not restorable: ${problem}`);
  return `add table inet ${table}\ndelete table inet ${table}\n${snapshot.script}${snapshot.script.endsWith('\n') ? '' : '\n'}`;
}

export type RestoreOutcome = 'restored' | 'deleted' | 'already-absent';

/**
 * Put `snapshot` back in the kernel, in one transaction. Throws RestoreError or NftError; changes nothing then.
 * The same transaction deletes the temporary tables (with nodewall's mark) of a full replace that did not finish
 * (make-before-break.ts): an apply killed or failed halfway leaves one hooked with the very ruleset being rolled
 * back, and it filters next to the restored table (a lockout the rollback is there to undo would stay).
 */
export async function restoreTable(snapshot: TableSnapshot, nftPath: string, table: string, exec: SnapshotExec = {}): Promise<RestoreOutcome> {
  const script = restoreScript(snapshot, table);
  const now = await readOwnership(nftPath, table, exec);
  if (now === 'foreign' && !(snapshot.kind === 'table' && snapshot.ownership === 'foreign')) {
    throw new RestoreError(
      `table inet ${table} is no longer nodewall's (no ownership mark): someone else replaced it, so the rollback leaves it alone`,
    );
  }
  // `table {}` first: idempotent, as the watchdog and the agent may both restore.
  const temporary = (await findTemporaryTables(nftPath, table, exec)).ours.flatMap((name) => [`table inet ${name} {}`, `delete table inet ${name}`]);
  if (script === undefined) {
    if (temporary.length > 0) {
      const lines = [...(now === 'absent' ? [] : [`table inet ${table} {}`, `delete table inet ${table}`]), ...temporary];
      await runNft(nftPath, ['-f', '-'], { ...exec, stdin: `${lines.join('\n')}\n` });
      return now === 'absent' ? 'already-absent' : 'deleted';
    }
    if (now === 'absent') return 'already-absent';
    try {
      await runNft(nftPath, ['delete', 'table', 'inet', table], exec);
    } catch (err) {
      if (err instanceof NftError && isMissingTableError(err)) return 'already-absent';
      throw err;
    }
    return 'deleted';
  }
  await runNft(nftPath, ['-f', '-'], { ...exec, stdin: temporary.length === 0 ? script : `${script}${temporary.join('\n')}\n` });
  return 'restored';
}
