// Decoded CiliumClusterwideNetworkPolicy content (cilium.io/v2), L3/L4 view.
//
// Convention for lists: `undefined` means the field was absent or YAML null
// (`toEndpoints:` with nothing after it); `[]` means an explicitly empty list.
// Cilium gives the two different meanings (reference §4.1), so the decoder
// must never turn one into the other.

import type { Problem } from './problem.js';

export interface SourcePos {
  readonly file: string;
  /** 1-based */
  readonly line: number;
  /** 1-based */
  readonly col: number;
}

export interface Requirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly Requirement[];
}

export interface PortProtocol {
  /** As written: a decimal number, an IANA service name, or absent. */
  readonly port?: string;
  readonly endPort?: number;
  /** As written (upper-case in valid input); absent = ANY. */
  readonly protocol?: string;
}

export interface PortRule {
  readonly ports?: readonly PortProtocol[];
  /** True when the rule carries L7 content (`rules`, TLS, serverNames, listener). */
  readonly l7?: {
    readonly http: boolean;
    readonly dns: boolean;
    readonly kafka: boolean;
    readonly other: readonly string[];
    /** DNS `matchName` / `matchPattern` values, for messages (additive). */
    readonly dnsPatterns?: readonly string[];
    /** `serverNames` as written (additive; empty entries are invalid). */
    readonly serverNames?: readonly string[];
  };
}

export interface ICMPField {
  /** A number (0..255) or a CamelCase name from the table of its family. */
  readonly type: number | string;
  readonly family?: string;
}

export interface ICMPRule {
  readonly fields?: readonly ICMPField[];
}

export interface CIDRRule {
  readonly cidr?: string;
  readonly cidrGroupRef?: string;
  readonly cidrGroupSelector?: LabelSelector;
  readonly except?: readonly string[];
}

/** One element of ingress / ingressDeny / egress / egressDeny, direction-neutral. */
export interface PeerRule {
  /** fromEndpoints / toEndpoints */
  readonly endpoints?: readonly LabelSelector[];
  /** fromCIDR / toCIDR */
  readonly cidr?: readonly string[];
  /** fromCIDRSet / toCIDRSet */
  readonly cidrSet?: readonly CIDRRule[];
  /** fromEntities / toEntities */
  readonly entities?: readonly string[];
  /** fromNodes / toNodes */
  readonly nodes?: readonly LabelSelector[];
  /** fromGroups / toGroups (unsupported: cloud provider lookups) */
  readonly groups?: readonly unknown[];
  /** toServices (egress only; unsupported) */
  readonly services?: readonly unknown[];
  /** toFQDNs (egress allow only; unsupported) */
  readonly fqdns?: readonly unknown[];
  /** fromRequires / toRequires (deprecated) */
  readonly requires?: readonly LabelSelector[];
  readonly toPorts?: readonly PortRule[];
  readonly icmps?: readonly ICMPRule[];
  /** `authentication` present (mutual auth; not L3/L4) */
  readonly authentication?: boolean;
  /** Peer fields written with a null value (`toEndpoints:` and nothing after it), as written.
   *  They count as absent (reference §4.1); kept only so lint can warn. Absent when there are none. */
  readonly nullPeers?: readonly string[];
}

export type Direction = 'ingress' | 'egress';
export type RuleListName = 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny';

export interface Rule {
  /** Field path of this rule inside the object: "spec" or "specs[2]". */
  readonly path: string;
  readonly endpointSelector?: LabelSelector;
  readonly nodeSelector?: LabelSelector;
  readonly ingress?: readonly PeerRule[];
  readonly ingressDeny?: readonly PeerRule[];
  readonly egress?: readonly PeerRule[];
  readonly egressDeny?: readonly PeerRule[];
  readonly enableDefaultDeny?: { readonly ingress?: boolean; readonly egress?: boolean };
  readonly description?: string;
}

/** A decoded CCNP plus where it came from. */
export interface PolicyDocument {
  readonly kind: 'CiliumClusterwideNetworkPolicy' | 'CiliumNetworkPolicy';
  readonly name: string;
  /** Only for CiliumNetworkPolicy. */
  readonly namespace?: string;
  /** The `nodewall.io/stage` annotation (stage-annotation.ts); absent = enforce. (additive) */
  readonly stage?: 'audit' | 'enforce';
  readonly rules: readonly Rule[];
  readonly pos: SourcePos;
  /** Position of a field path such as "spec.ingress[0].toPorts[0].ports[1].port";
   *  falls back to the nearest enclosing node that exists, then to `pos`. */
  readonly locate: (fieldPath: string) => SourcePos;
  /** Stable content hash of the object (for change detection and set naming). */
  readonly hash: string;
  /** Problems found while decoding (wrong types, unknown fields). validatePolicy()
   *  returns them first; the loader does not repeat them in LoadResult.problems. (additive) */
  readonly decodeProblems?: readonly Problem[];
}

/** Any other Kubernetes object read from a source (Node, Pod, ...), as plain JSON. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly [k: string]: unknown;
  };
  readonly [k: string]: unknown;
  readonly pos?: SourcePos;
}
