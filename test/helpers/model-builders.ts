// Hand-built HostModels for nft tests (independent of the policy engine).

import type { DirectionPolicy, Entry, HostModel, IdentitySet, L4Match } from '../../src/policy/model.js';
import { noFailsafes, type Failsafes } from '../../src/policy/failsafe.js';

export const datapathDefaults: HostModel['datapath'] = {
  allowICMPFragNeeded: true,
  icmpv6AlwaysAllow: [1, 2, 3, 4, 130, 131, 132, 133, 134, 135, 136, 141, 142, 143, 148, 149, 151, 152, 153],
  icmpv6IngressPolicyTypes: [128, 129],
  extendedProtocols: false,
};

export function identity(name: string, v4: readonly string[], v6: readonly string[] = [], extra: Partial<IdentitySet> = {}): IdentitySet {
  return { name, label: `test:${name}`, kind: 'cidr', v4, v6, ...extra };
}

export function tcp(...ports: (number | readonly [number, number])[]): L4Match {
  return { kind: 'ports', proto: 'tcp', ranges: ports.map((p) => (typeof p === 'number' ? ([p, p] as const) : p)) };
}

export function udp(...ports: (number | readonly [number, number])[]): L4Match {
  return { kind: 'ports', proto: 'udp', ranges: ports.map((p) => (typeof p === 'number' ? ([p, p] as const) : p)) };
}

export function icmp(family: 'ipv4' | 'ipv6', ...types: number[]): L4Match {
  return { kind: 'icmp', family, types };
}

export const anyL4: L4Match = { kind: 'all' };

export function allow(peer: string | null, l4: readonly L4Match[], rule = 'spec.ingress[0]', policy = 'p1'): Entry {
  return { action: 'allow', policy, rule, peer, l4 };
}

export function deny(peer: string | null, l4: readonly L4Match[], rule = 'spec.ingressDeny[0]', policy = 'p1'): Entry {
  return { action: 'deny', policy, rule, peer, l4 };
}

export function enforced(entries: readonly Entry[], defaultDeny = true): DirectionPolicy {
  return { enforced: true, defaultDeny, entries, reason: 'test' };
}

export const notEnforced: DirectionPolicy = { enforced: false, defaultDeny: false, entries: [], reason: 'test: no policy' };

export interface ModelParts {
  readonly ingress?: DirectionPolicy;
  readonly egress?: DirectionPolicy;
  readonly sets?: readonly IdentitySet[];
  readonly exclusions?: HostModel['exclusions'];
  readonly datapath?: Partial<HostModel['datapath']>;
  readonly node?: string;
  readonly failsafe?: Failsafes;
}

export function model(parts: ModelParts = {}): HostModel {
  const sets: Record<string, IdentitySet> = {};
  for (const s of parts.sets ?? []) sets[s.name] = s;
  return {
    node: parts.node ?? 'node-a',
    enforcementMode: 'default',
    runMode: 'enforce',
    selectedPolicies: ['p1'],
    ingress: parts.ingress ?? notEnforced,
    egress: parts.egress ?? notEnforced,
    sets,
    exclusions: parts.exclusions ?? { cluster: { v4: [], v6: [] }, cluster_non_node: { v4: [], v6: [] } },
    hostAddresses: ['192.0.2.1', '2001:db8::1'],
    datapath: { ...datapathDefaults, ...parts.datapath },
    failsafe: parts.failsafe ?? noFailsafes,
  };
}

/** n distinct /32 addresses from 10.0.0.0/8 (offset shifts the window): for scale tests. */
export function podAddresses(n: number, offset = 0): string[] {
  const out: string[] = [];
  for (let i = offset; i < offset + n; i++) out.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);
  return out;
}
