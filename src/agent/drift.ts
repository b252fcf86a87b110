// Cheap drift check: hash of `nft -t list table inet T` (terse: set elements
// are left out, so set churn and the audit sets' timed elements do not count,
// and the listing stays small at 100k addresses). Counters are stripped.
// Someone else's `nft flush ruleset`, a firewall reload or a hand edit of a
// chain changes the hash or makes the table disappear.

import { sha256 } from '../inventory/read-manifest-files.js';
import { NftError, runNft } from '../nft/nft-exec.js';
import { removeTemporaryTables } from '../nft/make-before-break.js';
import { ForeignTableError, readOwnership } from '../nft/ownership.js';

export type TableState = { readonly present: false; readonly error: string } | { readonly present: true; readonly hash: string };

export function structureHash(listing: string): string {
  const normalized = listing
    .replace(/counter packets \d+ bytes \d+/g, 'counter')
    .replace(/\s+/g, ' ')
    .trim();
  return sha256(normalized);
}

export async function tableState(nftPath: string, table: string, timeoutMs = 10_000): Promise<TableState> {
  try {
    const { stdout } = await runNft(nftPath, ['-t', 'list', 'table', 'inet', table], { timeoutMs });
    return { present: true, hash: structureHash(stdout) };
  } catch (err) {
    // NftError says what failed and what to do (missing table, nft.path wrong, timeout).
    return { present: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** The drift check's hash of the table as it is now, or undefined when it is absent (or cannot be listed). */
export async function tableHashNow(nftPath: string, table: string, timeoutMs = 10_000): Promise<string | undefined> {
  const st = await tableState(nftPath, table, timeoutMs);
  return st.present ? st.hash : undefined;
}

/**
 * Our table's block of a listing of several tables (`nft list chains inet` lists every inet table):
 * its lines from `table inet T {` to the closing `}`, or undefined when the table is not listed.
 */
export function tableBlock(listing: string, table: string): string | undefined {
  const lines = listing.split('\n');
  const start = lines.indexOf(`table inet ${table} {`);
  if (start < 0) return undefined;
  const end = lines.indexOf('}', start + 1);
  return lines.slice(start, end < 0 ? undefined : end + 1).join('\n');
}

/**
 * The cheap structural state: the table's chains (names, hooks, policies; no rules) and its sets'
 * declarations (no elements). On nft 1.0.6 every listing that shows rules fetches every set element
 * first (about a second of kernel CPU at 100k elements); these two listings do not (milliseconds).
 * A flushed or deleted table, a chain or set added, removed or redeclared changes it; a rule edited
 * inside a chain does not (the nft monitor and the periodic full check see that).
 */
export async function structureState(nftPath: string, table: string, timeoutMs = 10_000): Promise<TableState> {
  try {
    const chains = tableBlock((await runNft(nftPath, ['list', 'chains', 'inet'], { timeoutMs })).stdout, table);
    if (chains === undefined) return { present: false, error: `table inet ${table} is not listed` };
    // nft 1.0.6 lists the sets of every inet table for `list sets table inet T`: only ours count.
    const { stdout: sets } = await runNft(nftPath, ['-t', 'list', 'sets', 'table', 'inet', table], { timeoutMs });
    return { present: true, hash: structureHash(`${chains}\n${tableBlock(sets, table) ?? ''}`) };
  } catch (err) {
    return { present: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Delete nodewall's table (removeOnStop, uninstall); a missing table is fine, a foreign one is never deleted. */
export async function deleteTable(nftPath: string, table: string, timeoutMs = 10_000): Promise<{ deleted: boolean; error?: string }> {
  try {
    if ((await readOwnership(nftPath, table, { timeoutMs })) === 'foreign') return { deleted: false, error: new ForeignTableError(table, 'delete').message };
  } catch (err) {
    return { deleted: false, error: err instanceof Error ? err.message : String(err) };
  }
  // Temporary tables a full replace left (make-before-break.ts) filter too: they go first, with the mark only.
  const leftovers = await removeTemporaryTables(nftPath, table, { timeoutMs }).then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  try {
    await runNft(nftPath, ['delete', 'table', 'inet', table], { timeoutMs });
    return leftovers === undefined ? { deleted: true } : { deleted: true, error: `temporary tables: ${leftovers}` };
  } catch (err) {
    if (err instanceof NftError && /No such file or directory/.test(err.stderr)) return leftovers === undefined ? { deleted: false } : { deleted: false, error: `temporary tables: ${leftovers}` };
    return { deleted: false, error: err instanceof Error ? err.message : String(err) };
  }
}
