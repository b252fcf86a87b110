// The per-node policy model: the contract between the policy stage and its
// two readers, the verdict evaluator and the nft renderer. Both must derive
// every decision from this structure alone, so `trace` and the kernel agree.

import type { Direction } from '../api/types.js';
import type { EnforcementMode, RunMode } from '../inventory/types.js';
import type { Failsafes } from './failsafe.js';

export type Family = 'ipv4' | 'ipv6';

/**
 * A named set of addresses that one peer (entity, endpoint selector, node
 * selector, CIDR rule) resolves to. Addresses are canonical CIDR strings
 * ("192.0.2.1/32", "2001:db8::/64"), sorted and merged (no element contains
 * another). An identity is never split by family: v4 and v6 are both here.
 */
export interface IdentitySet {
  /** Stable nft-safe name derived from what the peer selects, e.g. "world", "cidr_3f2a9c1e". Max 40 chars, [a-z0-9_]. */
  readonly name: string;
  /**
   * What it selects, for humans: "entity:world", "cidr:10.0.0.0/8 except 10.1.0.0/16", "endpoints:{k8s-app=kube-dns}";
   * a whole CIDR list is one set: "cidr:10.0.0.0/8, 192.0.2.0/24, 203.0.113.0/24 and 7997 more (8000 CIDRs)".
   */
  readonly label: string;
  readonly kind: 'entity' | 'cidr' | 'endpoints' | 'nodes' | 'any';
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  /**
   * Addresses that must not match even when inside v4/v6: the cluster
   * addresses a CIDR or world peer never selects (reference §4.4). Names one of
   * HostModel.exclusions, so pod churn changes only that shared set.
   */
  readonly exclude?: ExclusionName;
}

export type ExclusionName = 'cluster' | 'cluster_non_node';

/** L4 part of an entry. An entry matches a packet if its peer matches AND any of its L4 matches does. */
export type L4Match =
  /** Every IP protocol (peer-only rule). */
  | { readonly kind: 'all' }
  /** Ports of one transport protocol; inclusive ranges, [0, 65535] = all ports. */
  | { readonly kind: 'ports'; readonly proto: 'tcp' | 'udp' | 'sctp'; readonly ranges: readonly (readonly [number, number])[] }
  /** ICMP (family ipv4) or ICMPv6 (family ipv6) types; the code is ignored. */
  | { readonly kind: 'icmp'; readonly family: Family; readonly types: readonly number[] }
  /** A port-less IP protocol by number (VRRP 112, GRE 47, ...), only with enableExtendedIPProtocols. */
  | { readonly kind: 'proto'; readonly proto: number; readonly name: string };

export interface Entry {
  readonly action: 'allow' | 'deny';
  readonly policy: string;
  /** Field path inside the policy object: "spec.ingress[1]", "specs[0].egressDeny[2]". */
  readonly rule: string;
  /** IdentitySet name, or null = any peer (no peer field in the rule). */
  readonly peer: string | null;
  /** Empty = the entry matches nothing (e.g. `toPorts: [{}]`, an empty peer list). */
  readonly l4: readonly L4Match[];
  /** Why an entry matches nothing or is weaker than written, for `trace`/`list`. */
  readonly note?: string;
}

export interface DirectionPolicy {
  /** False: no entry selects the host in this direction (or mode never): everything passes. */
  readonly enforced: boolean;
  /** True when at least one entry asks for default deny (reference §6.4). Only meaningful when enforced. */
  readonly defaultDeny: boolean;
  /** Deny entries first, then allow entries, each in policy-name then rule order. */
  readonly entries: readonly Entry[];
  /** One sentence for operators: why enforced / default-deny or not. */
  readonly reason: string;
}

export interface HostModel {
  readonly node: string;
  readonly enforcementMode: EnforcementMode;
  readonly runMode: RunMode;
  /** Policies (by name) whose nodeSelector selects this node, sorted. */
  readonly selectedPolicies: readonly string[];
  readonly ingress: DirectionPolicy;
  readonly egress: DirectionPolicy;
  /** Every IdentitySet referenced by an entry, by name. */
  readonly sets: Readonly<Record<string, IdentitySet>>;
  /** Shared exclusion sets: cluster = all cluster addresses; cluster_non_node = cluster minus node IPs. */
  readonly exclusions: Readonly<Record<ExclusionName, { readonly v4: readonly string[]; readonly v6: readonly string[] }>>;
  /** Addresses of this node (for `host`-related explanations and the lockout guard). */
  readonly hostAddresses: readonly string[];
  /** Datapath behaviour (reference §8). Applied before policy entries, in every enforcement mode. */
  readonly datapath: {
    /** ICMPv4 type 3 code 4 (fragmentation needed) passes in both directions whatever the policy. */
    readonly allowICMPFragNeeded: boolean;
    /** ICMPv6 types accepted before policy in both directions (ingress: Cilium's icmp6_host_handle;
     *  egress: nodewall's choice so that neighbour discovery keeps working, reference §13). */
    readonly icmpv6AlwaysAllow: readonly number[];
    /** ICMPv6 types left to policy on ingress (echo request/reply). Any other ICMPv6 type arriving at the
     *  host is dropped whatever the policy. On egress every type outside icmpv6AlwaysAllow goes to policy. */
    readonly icmpv6IngressPolicyTypes: readonly number[];
    /** enableExtendedIPProtocols: port-less protocols (VRRP, GRE, ...) can be allowed by `proto` entries. */
    readonly extendedProtocols: boolean;
  };
  /**
   * Config `failsafe` (src/policy/failsafe.ts): tcp/udp/sctp flows accepted after the datapath rules and
   * before anything else (enforcement, deny and allow entries), in every mode. Empty lists = Cilium's verdicts.
   */
  readonly failsafe: Failsafes;
  /** Absent: no staged policy selects this node (the usual case; nothing is recorded for staging). */
  readonly staged?: StagedPart;
}

/**
 * Staged policies (src/policy/staged.ts): evaluated, never enforced. The enforced parts of HostModel
 * exclude them; this is the model as it would be with them included, for the evaluator (a second
 * verdict) and the renderer (which only records candidate flows of `recordDirections`, never drops).
 */
export interface StagedPart {
  /** Staged policies selecting this node, sorted. */
  readonly policies: readonly string[];
  readonly ingress: DirectionPolicy;
  readonly egress: DirectionPolicy;
  /** Identity sets the staged direction policies refer to (a superset of what the enforced part uses). */
  readonly sets: Readonly<Record<string, IdentitySet>>;
}

export const directions: readonly Direction[] = ['ingress', 'egress'];
