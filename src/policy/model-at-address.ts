// A HostModel narrowed to one peer address: every set and exclusion holds that
// address alone (as a host prefix) when it held it, nothing otherwise. For flows
// whose peer is that address, evaluate() decides exactly as on the whole model
// (it reads sets only through "is the peer in this set / its exclusion").
//
// Why: lint's apiserver-blocked check evaluates a few flows per pass. On the
// whole model that builds an address matcher for every set a pod event changed,
// the ~100k-address cluster exclusion included (tens of ms per event at 100k
// pods). Here a changed list costs a binary search over its text (O(log n)
// parses), and unchanged lists are answered from a cache kept per list object
// (models are immutable; an incremental update keeps the lists it did not change).

import { addressInPrefix, formatPrefix, hostPrefix, parsePrefix, type Address } from './cidr.js';
import { lastAtOrBefore } from './last-at-or-before.js';
import type { HostModel, IdentitySet } from './model.js';

type Lists = { readonly v4: readonly string[]; readonly v6: readonly string[] };

/** Per list: address text -> member? */
const membership = new WeakMap<readonly string[], Map<string, boolean>>();

/**
 * Is `addr` in `list`, a model list of one family (canonical prefixes, sorted by address, disjoint:
 * model.ts IdentitySet)? The only candidate is the last prefix starting at or before the address.
 */
export function sortedListHas(list: readonly string[], addr: Address): boolean {
  const found = addr.family === 'ipv4' ? lastAtOrBefore(list, addr.bits, Number(addr.bits), v4StartsAtOrBefore) : lastAtOrBefore(list, addr.bits, 0, startsAtOrBefore);
  return found >= 0 && addressInPrefix(addr, parsePrefix(list[found]!));
}

/** Does the prefix `text` start at or before the address `bits`? */
function startsAtOrBefore(text: string, bits: bigint, _unused: number): boolean {
  return parsePrefix(text).bits <= bits;
}

/**
 * The network of an IPv4 prefix text "a.b.c.d/len" as a number, read without the strict parser (a
 * pod event searches every changed list: the parses were ~1 ms per pass at 1k policies). Only texts
 * Go's netip.ParsePrefix accepts are read (octets and length in decimal without leading zeros, in
 * range, nothing else); anything else gives -1 and the caller uses the strict parser.
 */
export function ipv4PrefixStart(text: string): number {
  let bits = 0;
  let i = 0;
  const n = text.length;
  for (let octet = 0; octet < 4; octet++) {
    const start = i;
    let v = 0;
    while (i < n && i - start < 4) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && text.charCodeAt(start) === 48)) return -1;
    bits = bits * 256 + v;
    if (i >= n || text.charCodeAt(i) !== (octet < 3 ? 46 : 47)) return -1;
    i++;
  }
  const lenStart = i;
  let len = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57 || i - lenStart >= 2) return -1;
    len = len * 10 + (c - 48);
    i++;
  }
  const lenDigits = i - lenStart;
  if (lenDigits === 0 || len > 32 || (lenDigits > 1 && text.charCodeAt(lenStart) === 48)) return -1;
  // Host bits masked off, as the strict parser does (plain arithmetic: bits may exceed 2^31).
  const size = 2 ** (32 - len);
  return bits - (bits % size);
}

/** Does the IPv4 prefix `text` start at or before the address `bits` (`num`: the same as a number)? */
function v4StartsAtOrBefore(text: string, bits: bigint, num: number): boolean {
  const fast = ipv4PrefixStart(text);
  return fast >= 0 ? fast <= num : parsePrefix(text).bits <= bits;
}

function listHas(lists: Lists, addr: Address, key: string): boolean {
  const list = addr.family === 'ipv4' ? lists.v4 : lists.v6;
  let known = membership.get(list);
  if (known === undefined) {
    known = new Map();
    membership.set(list, known);
  }
  let hit = known.get(key);
  if (hit === undefined) {
    hit = sortedListHas(list, addr);
    known.set(key, hit);
  }
  return hit;
}

const empty: readonly string[] = [];

/** The narrowed copies, per original set object and address (so evaluate's per-set caches keep hitting). */
const narrowedSets = new WeakMap<object, Map<string, IdentitySet>>();
const narrowedLists = new WeakMap<object, Map<string, Lists>>();

function narrow<T extends Lists>(cache: WeakMap<object, Map<string, T>>, original: T, addr: Address, key: string, only: readonly string[]): T {
  let byAddr = cache.get(original);
  if (byAddr === undefined) {
    byAddr = new Map();
    cache.set(original, byAddr);
  }
  let out = byAddr.get(key);
  if (out === undefined) {
    const has = listHas(original, addr, key);
    const list = has ? only : empty;
    out = { ...original, v4: addr.family === 'ipv4' ? list : empty, v6: addr.family === 'ipv6' ? list : empty };
    byAddr.set(key, out);
  }
  return out;
}

/** `model` with every set and exclusion cut down to `addr` (a bare address, e.g. "192.0.2.1"). */
export function modelAtAddress(model: HostModel, addrText: string): HostModel {
  const host = hostPrefix(addrText);
  const addr: Address = { family: host.family, bits: host.bits };
  const key = `${host.family}/${host.bits.toString(16)}`;
  const only = [formatPrefix(host)];
  const sets: Record<string, IdentitySet> = {};
  for (const name of Object.keys(model.sets)) sets[name] = narrow(narrowedSets, model.sets[name]!, addr, key, only);
  return {
    ...model,
    sets,
    exclusions: {
      cluster: narrow(narrowedLists, model.exclusions.cluster, addr, key, only),
      cluster_non_node: narrow(narrowedLists, model.exclusions.cluster_non_node, addr, key, only),
    },
  };
}
