// A canonical form of an nft table read from the kernel, for comparing a table
// built by deltas with one loaded whole: handles, counter values, the table
// name, the structure marker's name and the order of chains, sets and elements left out, and the elements of
// record sets (kernel-written, like counters); rule order within a chain kept.

import { parseNftJson, runNft } from '../../src/nft/nft-exec.js';
import { nftPath, type Lab } from './lab.js';

export interface CanonTable {
  /** The structure hash its marker set carries (it covers the table name, so it is compared apart). */
  readonly marker: string | null;
  readonly sets: readonly string[];
  readonly chains: readonly string[];
  readonly rules: Readonly<Record<string, readonly string[]>>;
}

function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'handle' || k === 'table') continue;
    out[k] = k === 'counter' ? 'counter' : strip(x);
  }
  return out;
}

export async function canonTable(netns: string, table: string): Promise<CanonTable> {
  const args = ['-n', '-j', 'list', 'table', 'inet', table];
  const doc = parseNftJson((await runNft(nftPath, args, { netns })).stdout, nftPath, args) as { nftables: Record<string, unknown>[] };
  const sets: string[] = [];
  const chains: string[] = [];
  const rules: Record<string, string[]> = {};
  let marker: string | null = null;
  for (const item of doc.nftables) {
    const set = item['set'] as Record<string, unknown> | undefined;
    if (set !== undefined) {
      const { elem, ...decl } = set;
      if (typeof decl['name'] === 'string' && decl['name'].startsWith('nw_structure_')) {
        marker = decl['name'].slice('nw_structure_'.length);
        decl['name'] = 'nw_structure_*';
      }
      // Record sets (a set timeout: audit, drop and staged records) are filled by the traffic, like counters: their
      // elements are not part of the ruleset (a dropped probe adds one).
      const records = decl['timeout'] !== undefined;
      const elements = Array.isArray(elem) && !records ? elem.map((e) => JSON.stringify(e)).sort() : [];
      sets.push(JSON.stringify({ ...(strip(decl) as object), elements }));
    }
    const chain = item['chain'] as Record<string, unknown> | undefined;
    if (chain !== undefined) chains.push(JSON.stringify(strip(chain)));
    const rule = item['rule'] as Record<string, unknown> | undefined;
    if (rule !== undefined) {
      const name = String(rule['chain']);
      (rules[name] ??= []).push(JSON.stringify(strip({ expr: rule['expr'], comment: rule['comment'] })));
    }
  }
  return { marker, sets: sets.sort(), chains: chains.sort(), rules };
}

/**
 * The canonical form of the table a full load of `script` builds: `script` (a render into `refTable`) is
 * loaded into the lab's node namespace, read back, and the reference table deleted again whatever happens.
 */
export async function canonReference(lab: Lab, script: string, refTable: string): Promise<CanonTable> {
  await lab.load(script);
  try {
    return await canonTable(lab.nodeNs, refTable);
  } finally {
    await lab.nft(['delete', 'table', 'inet', refTable]);
  }
}

/**
 * `nft list table` text without the elements of the drop-record sets (render-drop-records.ts): like counter
 * values, they follow the traffic (a probe that is dropped adds one, time moves their expiry), not the ruleset.
 */
export function withoutDropRecords(listing: string): string {
  return listing.replace(/(set nw_drop_\w+ \{[^}]*?)\s*elements = \{[^}]*\}/g, '$1');
}
