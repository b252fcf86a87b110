// Ownership of the table named by nft.table. nodewall replaces (`delete table` +
// create, in one transaction) and deletes its table, so it must never do that to
// a table someone else made (`nft.table: filter` next to a distro's
// `table inet filter`).
//
// The mark: an empty set `nw_owner` (type inet_proto) with a fixed comment,
// declared in every table nodewall renders. A set, not the table comment: nft
// 1.0.6 drops table comments from `nft -j list` output, a set survives any
// listing (also terse `-t`, which leaves out elements and so stays cheap at
// 100k addresses).
//
// Tables written before the mark existed are recognised by their structure
// marker set (`nw_structure_<16 hex>`, comment "nodewall structure marker"),
// which every table nodewall ever wrote carries. Anything else is foreign:
// apply, the element-delta fallback and removeOnStop refuse to touch it unless
// the operator adopts it explicitly (`nodewall apply --adopt`). The agent never
// adopts: it reports the refusal as an apply error and keeps retrying, so a
// later `nodewall apply --adopt` or a config fix takes effect.

import { NftError, parseNftJson, runNft } from './nft-exec.js';
import { reservedPrefix } from './render-sets.js';

export const ownerMarkSet = `${reservedPrefix}owner`;
export const ownerMarkComment = 'nodewall ownership mark: this table is managed by nodewall';
export const legacyMarkerComment = 'nodewall structure marker';
const legacyMarkerName = new RegExp(`^${reservedPrefix}structure_[0-9a-f]{16}$`);

/** absent: no such table; mark: carries nw_owner; legacy: an older nodewall's table; foreign: someone else's. */
export type Ownership = 'absent' | 'mark' | 'legacy' | 'foreign';

/** The declaration of the mark, as rendered into the table body. */
export function ownerMarkLines(): string[] {
  return [`\tset ${ownerMarkSet} {`, '\t\ttype inet_proto', `\t\tcomment "${ownerMarkComment}"`, '\t}'];
}

interface SetLike {
  readonly name: string;
  readonly type?: unknown;
  readonly comment?: string | undefined;
}

/** Ownership from the sets of an existing table. Pure. */
export function ownershipOfSets(sets: Iterable<SetLike>): Exclude<Ownership, 'absent'> {
  let legacy = false;
  for (const s of sets) {
    if (s.name === ownerMarkSet && s.comment === ownerMarkComment) return 'mark';
    if (legacyMarkerName.test(s.name) && s.comment === legacyMarkerComment && s.type === 'inet_proto') legacy = true;
  }
  return legacy ? 'legacy' : 'foreign';
}

/** Ownership from `nft -j list table` output (terse or not). Pure. */
export function ownershipOfJson(doc: unknown): Exclude<Ownership, 'absent'> {
  const items = (doc as { nftables?: unknown }).nftables;
  const sets: SetLike[] = [];
  if (Array.isArray(items)) {
    for (const item of items) {
      const s = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)['set'] : undefined;
      if (typeof s !== 'object' || s === null) continue;
      const r = s as Record<string, unknown>;
      if (typeof r['name'] !== 'string') continue;
      sets.push({ name: r['name'], type: r['type'], comment: typeof r['comment'] === 'string' ? r['comment'] : undefined });
    }
  }
  return ownershipOfSets(sets);
}

export function isMissingTableError(err: unknown): boolean {
  return err instanceof NftError && err.failure === 'exit' && /No such file or directory/.test(err.stderr);
}

/** Who owns `table inet T` in the kernel: one terse listing (no set elements). */
export async function readOwnership(nftPath: string, table: string, opts: { netns?: string; timeoutMs?: number } = {}): Promise<Ownership> {
  const args = ['-j', '-t', 'list', 'table', 'inet', table];
  let stdout: string;
  try {
    ({ stdout } = await runNft(nftPath, args, opts));
  } catch (err) {
    if (isMissingTableError(err)) return 'absent';
    throw err;
  }
  return ownershipOfJson(parseNftJson(stdout, nftPath, args));
}

export type TableAction = 'replace' | 'delete';

/** A table without nodewall's mark was about to be replaced or deleted. */
export class ForeignTableError extends Error {
  override readonly name = 'ForeignTableError';
  readonly table: string;
  readonly action: TableAction;

  constructor(table: string, action: TableAction = 'replace', options?: { cause?: unknown }) {
    const verb = action === 'replace' ? 'replace' : 'delete';
    super(
      `refusing to ${verb} table inet ${table}: it exists but was not created by nodewall (no ${ownerMarkSet} ownership mark), ` +
        'so it probably belongs to another firewall (an nftables.conf, firewalld, docker) and nothing was changed. ' +
        `Set nft.table in the config to a name of nodewall's own (default: nodewall)` +
        (action === 'replace'
          ? `, or, if this table may be overwritten, take it over once with \`nodewall apply --adopt\` (the agent never adopts a table by itself)`
          : `, or delete it by hand (\`nft delete table inet ${table}\`) if it is not needed`),
      options,
    );
    this.table = table;
    this.action = action;
  }
}

/**
 * Throws ForeignTableError unless `table inet T` is absent, nodewall's, or `adopt` is set.
 * Returns what it found, so callers can log an adoption.
 */
export async function assertOwnedOrAbsent(
  nftPath: string,
  table: string,
  action: TableAction,
  opts: { netns?: string; timeoutMs?: number; adopt?: boolean } = {},
): Promise<Ownership> {
  const { adopt, ...exec } = opts;
  const owner = await readOwnership(nftPath, table, exec);
  if (owner === 'foreign' && adopt !== true) throw new ForeignTableError(table, action);
  return owner;
}
