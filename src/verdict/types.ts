import type { Direction } from '../api/types.js';

export type FlowProto = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6' | number;

/** One new connection (or the forward packets of one), from the host's point of view. */
export interface Flow {
  readonly direction: Direction;
  /** Source address for ingress, destination address for egress. */
  readonly peer: string;
  readonly proto: FlowProto;
  /** Local destination port (ingress) or remote destination port (egress); tcp/udp/sctp only. */
  readonly port?: number;
  /** ICMP/ICMPv6 type. */
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

export interface MatchedEntry {
  readonly policy: string;
  readonly rule: string;
  readonly action: 'allow' | 'deny';
  /** The identity set the peer matched, or null for "any peer". */
  readonly peer: string | null;
}

export interface Verdict {
  readonly verdict: 'allow' | 'deny';
  /** Whether the direction is under policy at all. */
  readonly enforced: boolean;
  /** Why, in one or more sentences an operator can act on. */
  readonly reason: string;
  /** Entries that matched, the deciding one first. */
  readonly matched: readonly MatchedEntry[];
  /** Identity sets the peer address belongs to (names), for the explanation. */
  readonly peerIdentities: readonly string[];
  /**
   * What decided: a datapath exception, a failsafe entry (matched[0] is {policy: "failsafe", rule: the entry's
   * text}), a deny entry, an allow entry, default deny, or not enforced.
   */
  readonly decidedBy: 'not-enforced' | 'datapath' | 'failsafe' | 'deny-entry' | 'allow-entry' | 'default-deny' | 'default-allow';
}
