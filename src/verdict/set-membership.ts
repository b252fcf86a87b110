// Which identity sets an address belongs to (exclusions honoured), two ways with the same answer:
// - scan: every set's ranges bisected in turn (cost per flow grows with the number of sets);
// - interval index: the address line cut at every range boundary of every set and exclusion, each
//   piece holding its membership list; one bisection per flow. It costs about as much to build as
//   a few flows per range, so a model gets one only once it has evaluated enough flows to pay for it
//   (compiled-model.ts): `trace` of 20k flows, not the lint's or the lockout guard's few.

import type { ExclusionName } from '../policy/model.js';
import { lastAtOrBelow, lastAtOrBelowBig, type AddressRanges, type FlowAddress } from './address-ranges.js';

/** The sets an address belongs to: names sorted, and their indexes in the compiled set list (ascending). */
export interface Membership {
  readonly names: readonly string[];
  readonly idx: Int32Array;
}

export const noMembership: Membership = Object.freeze({ names: Object.freeze([]) as readonly string[], idx: new Int32Array(0) });

/** One identity set as the evaluator holds it: its ranges, and those of its exclusion (if any). */
export interface CompiledSet {
  readonly name: string;
  readonly exclude: ExclusionName | undefined;
  readonly ranges: () => AddressRanges;
  readonly exclusion: (() => AddressRanges) | undefined;
}

/** Membership by scanning every set (sets sorted by name). */
export function scanMembership(sets: readonly CompiledSet[], a: FlowAddress): Membership {
  const names: string[] = [];
  const idx: number[] = [];
  for (let i = 0; i < sets.length; i++) {
    const s = sets[i]!;
    if (!s.ranges().has(a)) continue;
    if (s.exclusion !== undefined && s.exclusion().has(a)) continue;
    names.push(s.name);
    idx.push(i);
  }
  return names.length === 0 ? noMembership : { names, idx: Int32Array.from(idx) };
}

/** Starts of the pieces of one family's address line and the membership of each. */
interface FamilyIndex<T> {
  readonly starts: T;
  readonly members: readonly Membership[];
}

export class IntervalMembership {
  readonly #v4: FamilyIndex<Float64Array>;
  readonly #v6: FamilyIndex<bigint[]>;

  constructor(sets: readonly CompiledSet[]) {
    // Range holders: the sets (0..n-1), then each distinct exclusion.
    const holders: AddressRanges[] = sets.map((s) => s.ranges());
    const exclusionOf = new Int32Array(sets.length).fill(-1);
    const exclusionIds = new Map<AddressRanges, number>();
    sets.forEach((s, i) => {
      if (s.exclusion === undefined) return;
      const ex = s.exclusion();
      let id = exclusionIds.get(ex);
      if (id === undefined) {
        id = holders.length;
        holders.push(ex);
        exclusionIds.set(ex, id);
      }
      exclusionOf[i] = id;
    });
    const interned = new Map<string, Membership>([['', noMembership]]);
    const membershipOf = (active: Int32Array, activeSets: ReadonlySet<number>): Membership => {
      const idx: number[] = [];
      for (const i of activeSets) {
        const ex = exclusionOf[i]!;
        if (ex < 0 || active[ex] === 0) idx.push(i);
      }
      idx.sort((a, b) => a - b);
      const key = idx.join(',');
      let m = interned.get(key);
      if (m === undefined) {
        m = Object.freeze({ names: Object.freeze(idx.map((i) => sets[i]!.name)), idx: Int32Array.from(idx) });
        interned.set(key, m);
      }
      return m;
    };

    // IPv4: boundaries as numbers (range ends + 1 up to 2^32, which needs no piece of its own).
    const v4Events: [number, number, number][] = [];
    holders.forEach((h, id) => {
      for (let k = 0; k < h.v4Starts.length; k++) {
        v4Events.push([h.v4Starts[k]!, id, 1]);
        const after = h.v4Ends[k]! + 1;
        if (after <= 0xffffffff) v4Events.push([after, id, -1]);
      }
    });
    v4Events.sort((a, b) => a[0] - b[0]);
    this.#v4 = sweep(v4Events, 0, holders.length, sets.length, membershipOf, (xs) => Float64Array.from(xs));

    const max6 = (1n << 128n) - 1n;
    const v6Events: [bigint, number, number][] = [];
    holders.forEach((h, id) => {
      for (let k = 0; k < h.v6Starts.length; k++) {
        v6Events.push([h.v6Starts[k]!, id, 1]);
        if (h.v6Ends[k]! < max6) v6Events.push([h.v6Ends[k]! + 1n, id, -1]);
      }
    });
    v6Events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#v6 = sweep(v6Events, 0n, holders.length, sets.length, membershipOf, (xs) => xs);
  }

  lookup(a: FlowAddress): Membership {
    if (a.family === 'ipv4') {
      const i = lastAtOrBelow(this.#v4.starts, a.v4);
      return i < 0 ? noMembership : this.#v4.members[i]!;
    }
    const i = lastAtOrBelowBig(this.#v6.starts, a.v6);
    return i < 0 ? noMembership : this.#v6.members[i]!;
  }
}

/** Walks sorted (position, holder, +1/-1) events; one piece per distinct position, starting at `zero`. */
function sweep<P, T>(
  events: readonly (readonly [P, number, number])[],
  zero: P,
  holders: number,
  setCount: number,
  membershipOf: (active: Int32Array, activeSets: ReadonlySet<number>) => Membership,
  pack: (starts: P[]) => T,
): FamilyIndex<T> {
  const active = new Int32Array(holders);
  // Holders below setCount are sets (the membership candidates); the others are exclusions.
  const activeSets = new Set<number>();
  const starts: P[] = [zero];
  const members: Membership[] = [noMembership];
  let i = 0;
  while (i < events.length) {
    const at = events[i]![0];
    while (i < events.length && events[i]![0] === at) {
      const [, id, d] = events[i]!;
      active[id]! += d;
      if (id < setCount) {
        if (active[id] === 0) activeSets.delete(id);
        else activeSets.add(id);
      }
      i++;
    }
    const m = membershipOf(active, activeSets);
    if (at === starts[starts.length - 1]) members[members.length - 1] = m;
    else if (m !== members[members.length - 1]) {
      starts.push(at);
      members.push(m);
    }
  }
  return { starts: pack(starts), members };
}
