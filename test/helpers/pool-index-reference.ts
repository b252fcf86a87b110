// Reference for the pool index (src/policy/pool-index.ts): the overlap test lint
// used before it, a subtraction over the whole pool.

import { parsePrefix, subtractPrefixes, type Prefix } from '../../src/policy/cidr.js';
import type { LintPool, PoolIndex } from '../../src/policy/pool-index.js';
import type { AddressPools } from '../../src/policy/resolve-peers.js';

export const lintPools: readonly LintPool[] = ['host', 'remoteNodes', 'pods', 'health', 'ingress'];

/** Does `p` overlap `pool`? By subtraction: P minus the pool is not P itself. */
export function overlapsBySubtraction(p: Prefix, pool: readonly Prefix[]): boolean {
  const rest = subtractPrefixes([p], pool);
  return !(rest.length === 1 && rest[0]!.len === p.len && rest[0]!.bits === p.bits);
}

/** Probes around the test address ranges: every length from the /16 down to single addresses, both families. */
export const defaultProbes: readonly Prefix[] = [
  ...['0.0.0.0/0', '192.0.0.0/16', '198.51.0.0/16', '203.0.113.0/24', '::/0', '2001:db8::/32', '2001:db8:100::/64', '2001:db8:200::/120'].map((s) => parsePrefix(s)),
  ...[24, 25, 26, 27, 28, 29, 30, 31, 32].flatMap((len) =>
    [0, 1, 2, 3, 5, 8, 13, 16, 21, 31, 34, 55, 99, 100, 101, 103, 128, 200, 255]
      .map((i) => (i >> (32 - len)) << (32 - len))
      .flatMap((i) => [`192.0.2.${i}/${len}`, `198.51.100.${i}/${len}`])
      .map((s) => parsePrefix(s)),
  ),
  ...[116, 120, 124, 126, 127, 128].flatMap((len) => [0, 1, 2, 3, 7, 8, 15].map((i) => parsePrefix(`2001:db8:100::${((i >> (128 - len)) << (128 - len)).toString(16)}/${len}`))),
];

/** The first probe and pool where `index` and the subtraction over `pools` disagree, or undefined. */
export function poolIndexDisagreement(index: PoolIndex, pools: AddressPools, probes: readonly Prefix[] = defaultProbes): string | undefined {
  for (const pool of lintPools) {
    for (const p of probes) {
      const want = overlapsBySubtraction(p, pools[pool]);
      if (index.overlaps(pool, p) !== want) return `${pool} ${p.family} ${p.bits.toString(16)}/${p.len}: expected ${want}`;
    }
  }
  return undefined;
}
