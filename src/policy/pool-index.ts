// "Does this prefix overlap the cluster's pod / node / health addresses?", the
// question lint's cidr-covers-cluster warning asks for every CIDR peer, answered
// by binary search instead of a subtraction over every address of the pool.
//
// Every AddressPools list is merged (mergePrefixes, or a CoverSet's output
// blocks): sorted, IPv4 first, disjoint. In such a list the only block that can
// overlap P is the last one starting at or before P's last address.
//
// The agent's StateBuilder seeds each inventory with the incremental model's
// index, which reads the model's CoverSets directly: no pool is copied, and a pod
// event allocates nothing here (issue 9: the per-event cost at 100k pods).

import type { Inventory } from '../inventory/types.js';
import { familyWidth, type Prefix } from './cidr.js';
import { lastAtOrBefore } from './last-at-or-before.js';
import { addressPools, type AddressPools } from './resolve-peers.js';

/** The pools lint asks about. */
export type LintPool = 'host' | 'remoteNodes' | 'pods' | 'health' | 'ingress';

export interface PoolIndex {
  /** True when `p` shares at least one address with `pool`. */
  overlaps(pool: LintPool, p: Prefix): boolean;
}

const lastAddress = (p: Prefix): bigint => p.bits + (1n << BigInt(familyWidth(p.family) - p.len)) - 1n;

/** Orders prefix starts: IPv4 before IPv6, then by address. */
function before(a: Prefix, family: Prefix['family'], bits: bigint): boolean {
  if (a.family !== family) return a.family === 'ipv4';
  return a.bits <= bits;
}

/** Does `p` overlap the merged (sorted, disjoint, IPv4 first) prefix list `list`? O(log n). */
export function mergedListOverlaps(list: readonly Prefix[], p: Prefix): boolean {
  const end = lastAddress(p);
  // Last block whose start is <= end (in the list's order).
  const found = lastAtOrBefore(list, p.family, end, before);
  if (found < 0) return false;
  const b = list[found]!;
  return b.family === p.family && lastAddress(b) >= p.bits;
}

/** An index over pools computed in full (addressPools). */
export function poolIndexOf(pools: AddressPools): PoolIndex {
  return { overlaps: (pool, p) => mergedListOverlaps(pools[pool], p) };
}

/** A seeded index and whether it still describes the pools it was seeded for. */
interface Seeded {
  readonly index: PoolIndex;
  readonly current: () => boolean;
}

const seeded = new WeakMap<Inventory, Seeded>();

/**
 * Hands poolIndex the index of `inv` kept elsewhere (the incremental model's), for as long as `current`
 * says it still answers for `inv` (a live index moves on with the next event).
 */
export function seedPoolIndex(inv: Inventory, index: PoolIndex, current: () => boolean = () => true): void {
  seeded.set(inv, { index, current });
}

/** The pool index of `inv`: the seeded one while current, or one over its address pools. */
export function poolIndex(inv: Inventory): PoolIndex {
  const s = seeded.get(inv);
  if (s !== undefined && s.current()) return s.index;
  const index = poolIndexOf(addressPools(inv));
  seeded.set(inv, { index, current: () => true });
  return index;
}
