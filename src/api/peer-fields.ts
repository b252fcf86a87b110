// YAML field names of the direction-neutral PeerRule members, per rule list.
import type { PeerRule, RuleListName } from './types.js';

export type PeerKey = 'endpoints' | 'cidr' | 'cidrSet' | 'entities' | 'nodes' | 'groups' | 'services' | 'fqdns' | 'requires';

const INGRESS: Partial<Record<PeerKey, string>> = {
  endpoints: 'fromEndpoints', cidr: 'fromCIDR', cidrSet: 'fromCIDRSet', entities: 'fromEntities',
  nodes: 'fromNodes', groups: 'fromGroups', requires: 'fromRequires',
};
const EGRESS_DENY: Partial<Record<PeerKey, string>> = {
  endpoints: 'toEndpoints', cidr: 'toCIDR', cidrSet: 'toCIDRSet', entities: 'toEntities',
  services: 'toServices', groups: 'toGroups', nodes: 'toNodes', requires: 'toRequires',
};
const EGRESS: Partial<Record<PeerKey, string>> = { ...EGRESS_DENY, fqdns: 'toFQDNs' };

/** Peer fields accepted in each rule list, in Cilium's declaration order. */
export function peerFields(list: RuleListName): ReadonlyArray<readonly [PeerKey, string]> {
  const table = list === 'ingress' || list === 'ingressDeny' ? INGRESS : list === 'egress' ? EGRESS : EGRESS_DENY;
  return Object.entries(table) as Array<[PeerKey, string]>;
}

export function peerFieldName(list: RuleListName, key: PeerKey): string {
  return peerFields(list).find(([k]) => k === key)?.[1] ?? key;
}

/** Non-L3 keys accepted in each rule list (deny rules have no L7/auth extras). */
export function otherRuleFields(list: RuleListName): readonly string[] {
  return list === 'ingress' || list === 'egress' ? ['toPorts', 'icmps', 'authentication'] : ['toPorts', 'icmps'];
}

export function isDenyList(list: RuleListName): boolean {
  return list === 'ingressDeny' || list === 'egressDeny';
}

export function peerList(rule: PeerRule, key: PeerKey): readonly unknown[] | undefined {
  return rule[key];
}
