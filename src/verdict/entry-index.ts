// One direction's entries indexed by what a flow's L4 part can match: for a flow, the candidate
// entries (ascending entry order) are those with an any-protocol match plus those whose port range,
// ICMP type or protocol number covers it. Built once per DirectionPolicy object (an incremental
// model keeps the object while only addresses change), so a pod event does not rebuild it.

import type { DirectionPolicy, Entry, L4Match } from '../policy/model.js';
import { lastAtOrBelow } from './address-ranges.js';
import type { MatchedEntry } from './types.js';

export type NormalizedProto = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6' | number;

const none = new Int32Array(0);

/** Entries by port: piece k covers ports [starts[k], starts[k+1]) (the last up to 65535). */
interface PortIndex {
  readonly starts: Int32Array;
  readonly lists: readonly Int32Array[];
  /** Entries matching a flow without a port: a [0, 65535] range. */
  readonly noPort: Int32Array;
}

export interface DirectionIndex {
  readonly entries: readonly Entry[];
  /** What a verdict lists per matching entry (shared, frozen). */
  readonly matched: readonly MatchedEntry[];
  /** The reason of a verdict this entry decides. */
  readonly decides: readonly string[];
  readonly deny: Uint8Array;
  /** Entries with a match of kind 'all'. */
  readonly anyL4: Int32Array;
  readonly ports: ReadonlyMap<'tcp' | 'udp' | 'sctp', PortIndex>;
  /** False when some port range bound is not an integer: pieces cannot stand for their ports, so flows take the scan. */
  readonly portsExact: boolean;
  readonly icmp: { readonly ipv4: ReadonlyMap<number, Int32Array>; readonly ipv6: ReadonlyMap<number, Int32Array> };
  readonly protos: ReadonlyMap<number, Int32Array>;
}

const byPolicy = new WeakMap<DirectionPolicy, DirectionIndex>();

export function directionIndex(dp: DirectionPolicy): DirectionIndex {
  let ix = byPolicy.get(dp);
  if (ix === undefined) {
    ix = buildIndex(dp.entries);
    byPolicy.set(dp, ix);
  }
  return ix;
}

function pushTo<K>(m: Map<K, number[]>, k: K, i: number): void {
  const l = m.get(k);
  if (l === undefined) m.set(k, [i]);
  else if (l[l.length - 1] !== i) l.push(i);
}

const packed = <K>(m: Map<K, number[]>): Map<K, Int32Array> => new Map([...m].map(([k, l]) => [k, Int32Array.from(l)]));

function buildIndex(entries: readonly Entry[]): DirectionIndex {
  const anyL4: number[] = [];
  const portRanges = new Map<'tcp' | 'udp' | 'sctp', [number, number, number][]>();
  const icmp4 = new Map<number, number[]>();
  const icmp6 = new Map<number, number[]>();
  const protos = new Map<number, number[]>();
  entries.forEach((e, i) => {
    for (const m of e.l4 as readonly L4Match[]) {
      switch (m.kind) {
        case 'all':
          if (anyL4[anyL4.length - 1] !== i) anyL4.push(i);
          break;
        case 'ports': {
          let l = portRanges.get(m.proto);
          if (l === undefined) portRanges.set(m.proto, (l = []));
          for (const [lo, hi] of m.ranges) l.push([lo, hi, i]);
          break;
        }
        case 'icmp':
          for (const t of m.types) pushTo(m.family === 'ipv4' ? icmp4 : icmp6, t, i);
          break;
        case 'proto':
          pushTo(protos, m.proto, i);
          break;
      }
    }
  });
  return {
    entries,
    matched: entries.map((e) => Object.freeze({ policy: e.policy, rule: e.rule, action: e.action, peer: e.peer })),
    decides: entries.map((e) =>
      `${e.action === 'deny' ? 'Denied' : 'Allowed'} by policy ${e.policy} ${e.rule}` + (e.action === 'deny' ? ' (deny entries win over allow entries).' : '.')),
    deny: Uint8Array.from(entries.map((e) => (e.action === 'deny' ? 1 : 0))),
    anyL4: Int32Array.from(anyL4),
    ports: new Map([...portRanges].map(([proto, rs]) => [proto, portIndex(rs)])),
    portsExact: [...portRanges.values()].every((rs) => rs.every(([lo, hi]) => Number.isInteger(lo) && Number.isInteger(hi))),
    icmp: { ipv4: packed(icmp4), ipv6: packed(icmp6) },
    protos: packed(protos),
  };
}

/** Cuts 0..65535 at every range boundary (one sweep); each piece lists the entries covering it. */
function portIndex(ranges: readonly [number, number, number][]): PortIndex {
  // (position, entry, +1 at lo / -1 after hi); a range starting below 0 counts from 0.
  const events: [number, number, number][] = [];
  for (const [lo, hi, i] of ranges) {
    if (lo > hi || hi < 0 || lo > 65535) continue;
    events.push([Math.max(lo, 0), i, 1]);
    if (hi + 1 <= 65535) events.push([hi + 1, i, -1]);
  }
  events.sort((a, b) => a[0] - b[0]);
  const covering = new Map<number, number>();
  const interned = new Map<string, Int32Array>([['', none]]);
  const starts: number[] = [0];
  const lists: Int32Array[] = [none];
  let k = 0;
  while (k < events.length) {
    const at = events[k]![0];
    for (; k < events.length && events[k]![0] === at; k++) {
      const [, i, d] = events[k]!;
      const n = (covering.get(i) ?? 0) + d;
      if (n === 0) covering.delete(i);
      else covering.set(i, n);
    }
    const ids = [...covering.keys()].sort((a, b) => a - b);
    const key = ids.join(',');
    let l = interned.get(key);
    if (l === undefined) interned.set(key, (l = Int32Array.from(ids)));
    if (at === starts[starts.length - 1]) lists[lists.length - 1] = l;
    else if (l !== lists[lists.length - 1]) {
      starts.push(at);
      lists.push(l);
    }
  }
  const noPort = [...new Set(ranges.filter(([lo, hi]) => lo === 0 && hi === 65535).map(([, , i]) => i))].sort((a, b) => a - b);
  return { starts: Int32Array.from(starts), lists, noPort: Int32Array.from(noPort) };
}

/**
 * The entries whose L4 part may cover the flow besides the any-protocol ones, or undefined when the
 * flow's fields are outside what the index cuts (a fractional port, a NaN protocol): the caller then
 * checks every entry with l4Matches.
 */
export function l4Candidates(ix: DirectionIndex, proto: NormalizedProto, port: number | undefined, icmpType: number | undefined): Int32Array | undefined {
  switch (proto) {
    case 'tcp':
    case 'udp':
    case 'sctp': {
      const p = ix.ports.get(proto);
      if (p === undefined) return none;
      if (port === undefined) return p.noPort;
      if (!Number.isInteger(port) || !ix.portsExact) return undefined;
      if (port < 0 || port > 65535) return none;
      return p.lists[lastAtOrBelow(p.starts, port)] ?? none;
    }
    case 'icmp':
      return icmpType === undefined ? none : (ix.icmp.ipv4.get(icmpType) ?? none);
    case 'icmpv6':
      return icmpType === undefined ? none : (ix.icmp.ipv6.get(icmpType) ?? none);
    default:
      if (Number.isNaN(proto)) return undefined;
      return ix.protos.get(proto) ?? none;
  }
}
