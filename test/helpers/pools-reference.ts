// Reference for src/policy/resolve-peers.ts's address handling as it was before
// session 15: one Prefix object per pod address (addressOf), pools and endpoint
// sets merged from those lists by the bigint range path and formatted the old
// way (cidr-reference.ts). The new paths carry numbers instead; tests compare.

import type { LabelSelector } from '../../src/api/types.js';
import type { EngineConfig, Inventory, NodeInfo } from '../../src/inventory/types.js';
import { canonicalIPv4, hostPrefix, parsePrefixOrAddress, prefixesToRanges, rangesToPrefixes, subtractPrefixes, type Prefix } from '../../src/policy/cidr.js';
import { hostEndpointLabels, type SourcedLabel } from '../../src/policy/label-filter.js';
import { matchSelector, selectorKeys } from '../../src/policy/match-selector.js';
import { effectiveEndpointSelector, podSelectorLabels, reservedLabel, type AddressPools } from '../../src/policy/resolve-peers.js';
import { formatPrefixReference } from './cidr-reference.js';

/** addressOf as it was. */
export function addressOfReference(s: string): Prefix | undefined {
  const v4 = canonicalIPv4(s);
  if (v4 !== undefined) return { family: 'ipv4', bits: BigInt(v4), len: 32 };
  try {
    const slash = s.indexOf('/');
    return hostPrefix(slash < 0 ? s : s.slice(0, slash));
  } catch {
    return undefined;
  }
}

function prefixOfReference(s: string): Prefix | undefined {
  try {
    return parsePrefixOrAddress(s);
  } catch {
    return undefined;
  }
}

const merged = (ps: readonly Prefix[]): Prefix[] => rangesToPrefixes(prefixesToRanges(ps));
const defined = <T>(xs: readonly (T | undefined)[]): T[] => xs.filter((x): x is T => x !== undefined);
const nodeAddrs = (nodes: readonly NodeInfo[], pick: (n: NodeInfo) => readonly string[]): Prefix[] => defined(nodes.flatMap((n) => pick(n).map(addressOfReference)));

/** computeAddressPools as it was: every pod address a Prefix, every pool merged from the full lists. */
export function addressPoolsReference(inv: Inventory): AddressPools {
  const all = [inv.self, ...inv.remoteNodes];
  const host = defined(inv.self.addresses.map(addressOfReference));
  const remoteNodes = nodeAddrs(inv.remoteNodes, (n) => n.addresses);
  const health = nodeAddrs(all, (n) => n.healthAddresses);
  const ingress = nodeAddrs(all, (n) => n.ingressAddresses);
  const apiServer = defined(inv.apiServerAddresses.map(addressOfReference));
  const pods = [
    ...defined(inv.clusterPodCIDRs.map(prefixOfReference)),
    ...defined(all.flatMap((n) => n.podCIDRs.map(prefixOfReference))),
    ...defined(inv.pods.flatMap((p) => p.addresses.map(addressOfReference))),
  ];
  const cluster = merged([...host, ...remoteNodes, ...health, ...ingress, ...pods]);
  return {
    host: merged(host),
    remoteNodes: merged(remoteNodes),
    health: merged(health),
    ingress: merged(ingress),
    apiServer: merged(apiServer),
    pods: merged(pods),
    cluster,
    clusterNonNode: subtractPrefixes(cluster, [...host, ...remoteNodes]),
    clusterEntity: merged([...cluster, ...apiServer]),
  };
}

/** The elements of the endpoint set of `sel` as resolveEndpoints made them: candidates' Prefix lists, flattened, merged, formatted. */
export function endpointSetReference(inv: Inventory, cfg: EngineConfig, sel: LabelSelector): { v4: string[]; v6: string[] } {
  const pools = addressPoolsReference(inv);
  const eff = effectiveEndpointSelector(sel, inv.clusterName);
  const withReserved = eff === sel && selectorKeys(sel).some((k) => k.source === 'reserved');
  const candidates: { labels: readonly SourcedLabel[]; addresses: readonly Prefix[] }[] = [];
  if (withReserved) {
    candidates.push(
      { labels: hostEndpointLabels(inv.self.labels, cfg.labelFilter), addresses: pools.host },
      { labels: [reservedLabel('remote-node')], addresses: pools.remoteNodes },
      { labels: [reservedLabel('health')], addresses: pools.health },
      { labels: [reservedLabel('ingress')], addresses: pools.ingress },
      { labels: [reservedLabel('kube-apiserver')], addresses: pools.apiServer },
    );
  }
  for (const pod of inv.pods) candidates.push({ labels: podSelectorLabels(pod, inv.clusterName, cfg.labelFilter).labels, addresses: defined(pod.addresses.map(addressOfReference)) });
  const addrs = candidates.filter((c) => matchSelector(eff, c.labels)).flatMap((c) => c.addresses);
  const out = { v4: [] as string[], v6: [] as string[] };
  for (const p of merged(addrs)) (p.family === 'ipv4' ? out.v4 : out.v6).push(formatPrefixReference(p));
  return out;
}
