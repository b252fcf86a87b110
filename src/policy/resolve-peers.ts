// Identity resolution (reference §4): every peer of a rule (entity, endpoint
// selector, node selector, CIDR, CIDRSet) becomes one IdentitySet whose name is
// derived from what the peer selects, never from the addresses, so address
// churn changes set elements and never set names.
//
// Decisions where the reference is open:
// - Cluster pod CIDRs (Inventory.clusterPodCIDRs) are cluster addresses: never world, never CIDR-matchable.
// - kube-apiserver addresses that are not node addresses (an external control plane) carry the
//   kube-apiserver identity AND stay world/CIDR-matchable: they are in the `cluster` entity set but
//   not in the `cluster` exclusion.
// - `cluster-mesh` = `cluster` (one cluster known); `init`/`unmanaged` have no addresses here.
// - `0.0.0.0/0` / `::/0` (also as a CIDRSet cidr) = that family's world (set world_ipv4 / world_ipv6).

import { createHash } from 'node:crypto';
import type { CIDRRule, Direction, LabelSelector, PeerRule, Requirement } from '../api/types.js';
import type { Inventory, EngineConfig, LabelFilter, Labels, NodeInfo, PodInfo } from '../inventory/types.js';
import {
  canonicalIPv4,
  formatHostPrefixesByFamily,
  formatPrefix,
  formatPrefixesByFamily,
  mergeHostPrefixes,
  mergePrefixes,
  parseAddress,
  parsePrefix,
  parsePrefixOrAddress,
  plainIPv6,
  subtractPrefixes,
  type HostAddresses,
  type Prefix,
} from './cidr.js';
import { filterLabels, hostEndpointLabels, type SourcedLabel } from './label-filter.js';
import { canonicalSelector, matchSelector, selectorKeys } from './match-selector.js';
import type { ExclusionName, Family, IdentitySet } from './model.js';

export const entityNames: readonly string[] = [
  'all', 'world', 'world-ipv4', 'world-ipv6', 'cluster', 'cluster-mesh', 'host', 'init', 'ingress',
  'unmanaged', 'remote-node', 'health', 'none', 'kube-apiserver',
];

const namespaceKey = 'io.kubernetes.pod.namespace';
const clusterKey = 'io.cilium.k8s.policy.cluster';

const worldV4: Prefix = { family: 'ipv4', bits: 0n, len: 0 };
const worldV6: Prefix = { family: 'ipv6', bits: 0n, len: 0 };

/** A node address may come with an interface prefix length ("192.0.2.1/24"): keep the address. */
export function addressOf(s: string): Prefix | undefined {
  const v = addressValueOf(s);
  if (v === undefined) return undefined;
  return typeof v === 'number' ? { family: 'ipv4', bits: BigInt(v), len: 32 } : { family: 'ipv6', bits: v, len: 128 };
}

/**
 * The address addressOf reads from `s`, as a number (IPv4) or a bigint (IPv6), or undefined: what the
 * pools and pod identities hold per pod address instead of a Prefix object.
 */
export function addressValueOf(s: string): number | bigint | undefined {
  // Canonical IPv4 and plain IPv6 (nearly every pod and node address): no exception frame, no object.
  const v4 = canonicalIPv4(s);
  if (v4 !== undefined) return v4;
  const slash = s.indexOf('/');
  const text = slash < 0 ? s : s.slice(0, slash);
  const v6 = plainIPv6(text);
  if (v6 !== undefined) return v6;
  try {
    const a = parseAddress(text);
    return a.family === 'ipv4' ? Number(a.bits) : a.bits;
  } catch {
    return undefined;
  }
}

/** Host addresses gathered one text at a time (unparsable ones left out, as addressOf does). */
class HostCollector implements HostAddresses {
  readonly v4: number[] = [];
  readonly v6: bigint[] = [];

  add(text: string): void {
    const v = addressValueOf(text);
    if (typeof v === 'number') this.v4.push(v);
    else if (v !== undefined) this.v6.push(v);
  }
}

export function prefixOf(s: string): Prefix | undefined {
  try {
    return parsePrefixOrAddress(s);
  } catch {
    return undefined;
  }
}

function defined<T>(xs: readonly (T | undefined)[]): T[] {
  return xs.filter((x): x is T => x !== undefined);
}

function nodeAddrs(nodes: readonly NodeInfo[], pick: (n: NodeInfo) => readonly string[]): Prefix[] {
  return defined(nodes.flatMap((n) => pick(n).map(addressOf)));
}

/** The address pools of the cluster, computed once per model. */
export interface AddressPools {
  readonly host: readonly Prefix[];
  readonly remoteNodes: readonly Prefix[];
  readonly health: readonly Prefix[];
  readonly ingress: readonly Prefix[];
  readonly apiServer: readonly Prefix[];
  readonly pods: readonly Prefix[];
  /** Everything a CIDR/world peer never selects: nodes, health, ingress, pods (pod CIDRs included). */
  readonly cluster: readonly Prefix[];
  /** `cluster` minus node addresses (policyCIDRMatchMode: nodes). */
  readonly clusterNonNode: readonly Prefix[];
  /** The `cluster` entity: `cluster` plus kube-apiserver addresses. */
  readonly clusterEntity: readonly Prefix[];
}

// Inventories are immutable values; the policy stage and lint share their parsed pools.
const poolCache = new WeakMap<Inventory, AddressPools>();

export function addressPools(inv: Inventory): AddressPools {
  let pools = poolCache.get(inv);
  if (pools === undefined) {
    pools = computeAddressPools(inv);
    poolCache.set(inv, pools);
  }
  return pools;
}

function computeAddressPools(inv: Inventory): AddressPools {
  const all = [inv.self, ...inv.remoteNodes];
  const host = defined(inv.self.addresses.map(addressOf));
  const remoteNodes = nodeAddrs(inv.remoteNodes, (n) => n.addresses);
  const health = nodeAddrs(all, (n) => n.healthAddresses);
  const ingress = nodeAddrs(all, (n) => n.ingressAddresses);
  const apiServer = defined(inv.apiServerAddresses.map(addressOf));
  // Pod addresses as numbers, merged with the pod CIDRs without a Prefix object each (100k+ at scale).
  const podHosts = new HostCollector();
  for (const p of inv.pods) for (const a of p.addresses) podHosts.add(a);
  const pods = mergeHostPrefixes([...defined(inv.clusterPodCIDRs.map(prefixOf)), ...defined(all.flatMap((n) => n.podCIDRs.map(prefixOf)))], [podHosts]);
  // Merging is canonical (the fewest prefixes covering the union), so the merged pod pool stands for its inputs.
  const cluster = mergePrefixes([...host, ...remoteNodes, ...health, ...ingress, ...pods]);
  return {
    host: mergePrefixes(host),
    remoteNodes: mergePrefixes(remoteNodes),
    health: mergePrefixes(health),
    ingress: mergePrefixes(ingress),
    apiServer: mergePrefixes(apiServer),
    pods,
    cluster,
    clusterNonNode: subtractPrefixes(cluster, [...host, ...remoteNodes]),
    clusterEntity: mergePrefixes([...cluster, ...apiServer]),
  };
}

/** Short stable hash for set names. */
export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * `kind_<hash of label>`: stable for the same selector/CIDR text. Should two
 * different labels ever share the 8-digit hash, the later one gets 16 digits.
 */
export function hashedSetName(ctx: ResolveContext, kind: string, label: string): string {
  const short = `${kind}_${shortHash(label)}`;
  const taken = ctx.sets.get(short);
  return taken === undefined || taken.label === label ? short : `${kind}_${shortHash(label, 16)}`;
}

export interface ResolveContext {
  readonly inventory: Inventory;
  readonly cfg: EngineConfig;
  readonly pools: AddressPools;
  /** Every set created so far, by name; identical peers share one entry. */
  readonly sets: Map<string, IdentitySet>;
}

export function resolveContext(inventory: Inventory, cfg: EngineConfig): ResolveContext {
  return { inventory, cfg, pools: addressPools(inventory), sets: new Map() };
}

export interface PeerResolution {
  /** 'any': no peer field (every peer); 'none': selects nothing; 'sets': the named IdentitySets. */
  readonly kind: 'any' | 'none' | 'sets';
  readonly sets: readonly string[];
  readonly notes: readonly string[];
}

function makeSet(
  ctx: ResolveContext,
  name: string,
  label: string,
  kind: IdentitySet['kind'],
  prefixes: readonly Prefix[],
  exclude?: ExclusionName,
  hosts?: readonly HostAddresses[],
): string {
  if (!ctx.sets.has(name)) {
    const { v4, v6 } = hosts === undefined ? formatPrefixesByFamily(prefixes) : formatHostPrefixesByFamily(prefixes, hosts);
    ctx.sets.set(name, exclude === undefined ? { name, label, kind, v4, v6 } : { name, label, kind, v4, v6, exclude });
  }
  return name;
}

/** nft-safe name of an entity's set: "remote-node" -> "remote_node". */
export function entitySetName(entity: string): string {
  return entity.replace(/-/g, '_');
}

function worldFamilySet(ctx: ResolveContext, family: Family): string {
  const entity = family === 'ipv4' ? 'world-ipv4' : 'world-ipv6';
  return makeSet(ctx, entitySetName(entity), `entity:${entity}`, 'entity', [family === 'ipv4' ? worldV4 : worldV6], 'cluster');
}

const entityNotes: Readonly<Record<string, string>> = {
  init: 'entity init: endpoints without an identity yet have no stable address, so it matches no address here',
  unmanaged: 'entity unmanaged: pods not managed by Cilium are unknown to nodewall, so it matches no address here',
  none: 'entity none selects nothing',
};

function resolveEntity(ctx: ResolveContext, entity: string, notes: string[]): string | undefined {
  const p = ctx.pools;
  const mk = (prefixes: readonly Prefix[], exclude?: ExclusionName): string =>
    makeSet(ctx, entitySetName(entity), `entity:${entity}`, 'entity', prefixes, exclude);
  const note = entityNotes[entity];
  if (note !== undefined) notes.push(note);
  switch (entity) {
    case 'host': return mk(p.host);
    case 'remote-node': return mk(p.remoteNodes);
    case 'kube-apiserver': return mk(p.apiServer);
    case 'health': return mk(p.health);
    case 'ingress': return mk(p.ingress);
    case 'init':
    case 'unmanaged':
    case 'none': return mk([]);
    case 'world': return mk([worldV4, worldV6], 'cluster');
    case 'world-ipv4': return worldFamilySet(ctx, 'ipv4');
    case 'world-ipv6': return worldFamilySet(ctx, 'ipv6');
    case 'cluster':
    case 'cluster-mesh': return mk(p.clusterEntity);
    case 'all': return mk([worldV4, worldV6]);
    default:
      notes.push(`unknown entity "${entity}" selects nothing`);
      return undefined;
  }
}

/** A selector candidate's addresses: prefixes (a reserved identity's pool) or host addresses (a pod identity's). */
interface Candidate {
  readonly labels: readonly SourcedLabel[];
  readonly prefixes: readonly Prefix[];
  readonly hosts: HostAddresses;
}

const noHostAddresses: HostAddresses = { v4: [], v6: [] };

export function reservedLabel(key: string): SourcedLabel {
  return { source: 'reserved', key, value: '' };
}

/**
 * Pods as selector candidates: their labels as k8s: labels, after the label
 * filter. Pods with equal labels share an identity, as in Cilium, so each
 * selector is matched once per identity rather than once per pod.
 */
const podIdentityCache = new WeakMap<Inventory, Map<string, Candidate[]>>();

function podCandidates(ctx: ResolveContext): Candidate[] {
  const inv = ctx.inventory;
  let perFilter = podIdentityCache.get(inv);
  if (perFilter === undefined) {
    perFilter = new Map();
    podIdentityCache.set(inv, perFilter);
  }
  const cached = perFilter.get(ctx.cfg.labelFilter);
  if (cached !== undefined) return cached;
  // Addresses as numbers (kept with the inventory while it lives: 8 bytes per IPv4 address, not a Prefix and a bigint).
  const byLabels = new Map<string, { labels: SourcedLabel[]; prefixes: readonly Prefix[]; hosts: HostCollector }>();
  for (const pod of inv.pods) {
    const { labels, key } = podSelectorLabels(pod, inv.clusterName, ctx.cfg.labelFilter);
    let id = byLabels.get(key);
    if (id === undefined) {
      id = { labels, prefixes: [], hosts: new HostCollector() };
      byLabels.set(key, id);
    }
    for (const a of pod.addresses) id.hosts.add(a);
  }
  const out = [...byLabels.values()];
  perFilter.set(ctx.cfg.labelFilter, out);
  return out;
}

/**
 * A pod's labels as endpoint selectors see them (k8s: source, after the label filter, sorted by key),
 * and a text key equal for pods that share an identity.
 */
export function podSelectorLabels(pod: PodInfo, clusterName: string, filter: LabelFilter): { labels: SourcedLabel[]; key: string } {
  // Pods share Labels objects (build-inventory.ts): compute once per labels object and inputs. Looked up
  // by the strings as they are (no key string made per call: this runs once per pod in a full build).
  let byNamespace = selectorLabelMemo.get(pod.labels);
  if (byNamespace === undefined) {
    byNamespace = new Map();
    selectorLabelMemo.set(pod.labels, byNamespace);
  }
  let byCluster = byNamespace.get(pod.namespace);
  if (byCluster === undefined) {
    byCluster = new Map();
    byNamespace.set(pod.namespace, byCluster);
  }
  let byFilter = byCluster.get(clusterName);
  if (byFilter === undefined) {
    byFilter = new Map();
    byCluster.set(clusterName, byFilter);
  }
  let out = byFilter.get(filter);
  if (out === undefined) {
    out = computePodSelectorLabels(pod, clusterName, filter);
    byFilter.set(filter, out);
  }
  return out;
}

type SelectorLabels = { labels: SourcedLabel[]; key: string };

/** podSelectorLabels results by the pod's Labels object, namespace, cluster name and label filter; the result's array must not be changed. */
const selectorLabelMemo = new WeakMap<Labels, Map<string, Map<string, Map<LabelFilter, SelectorLabels>>>>();

function computePodSelectorLabels(pod: PodInfo, clusterName: string, filter: LabelFilter): { labels: SourcedLabel[]; key: string } {
  const raw = { [namespaceKey]: pod.namespace, [clusterKey]: clusterName, ...pod.labels };
  const labels = filterLabels(raw, filter, 'k8s').sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  let key = '';
  for (const l of labels) key += `${l.key}\u0000${l.value}\u0001`;
  return { labels, key };
}

/** A remote node's labels as fromNodes/toNodes selectors see them. */
export function remoteNodeSelectorLabels(node: NodeInfo, filter: LabelFilter): SourcedLabel[] {
  return [reservedLabel('remote-node'), ...filterLabels(node.labels, filter, 'node')];
}

/** Reserved identities an endpoint selector with a `reserved:` key can select. */
function reservedCandidates(ctx: ResolveContext): Candidate[] {
  const p = ctx.pools;
  const reserved = (labels: readonly SourcedLabel[], prefixes: readonly Prefix[]): Candidate => ({ labels, prefixes, hosts: noHostAddresses });
  return [
    reserved(hostEndpointLabels(ctx.inventory.self.labels, ctx.cfg.labelFilter), p.host),
    reserved([reservedLabel('remote-node')], p.remoteNodes),
    reserved([reservedLabel('health')], p.health),
    reserved([reservedLabel('ingress')], p.ingress),
    reserved([reservedLabel('kube-apiserver')], p.apiServer),
  ];
}

/**
 * The selector Cilium actually uses for a CCNP endpoint selector (§4.2): unless it
 * mentions a reserved: key, require a namespace label (pods only) and, unless it
 * constrains the cluster key, the local cluster.
 */
export function effectiveEndpointSelector(sel: LabelSelector, clusterName: string): LabelSelector {
  const keys = selectorKeys(sel);
  if (keys.some((k) => k.source === 'reserved')) return sel;
  const extra: Requirement[] = [];
  if (!keys.some((k) => k.key === namespaceKey)) extra.push({ key: `k8s:${namespaceKey}`, operator: 'Exists' });
  if (!keys.some((k) => k.key === clusterKey)) extra.push({ key: `k8s:${clusterKey}`, operator: 'In', values: [clusterName] });
  if (extra.length === 0) return sel;
  const out: { matchLabels?: Readonly<Record<string, string>>; matchExpressions: Requirement[] } = {
    matchExpressions: [...(sel.matchExpressions ?? []), ...extra],
  };
  if (sel.matchLabels !== undefined) out.matchLabels = sel.matchLabels;
  return out;
}

function resolveEndpoints(ctx: ResolveContext, sel: LabelSelector, notes: string[]): string {
  const canon = canonicalSelector(sel);
  const name = hashedSetName(ctx, 'endpoints', `endpoints:${canon}`);
  const eff = effectiveEndpointSelector(sel, ctx.inventory.clusterName);
  const withReserved = eff === sel && selectorKeys(sel).some((k) => k.source === 'reserved');
  // The note belongs to every entry with this selector, not only to the first one resolved
  // (an entry's notes must not depend on other rules or policies).
  if (withReserved && matchSelector(eff, [reservedLabel('world')])) {
    notes.push(`endpoint selector ${canon} also selects reserved:world, which nodewall does not resolve from a selector; use the world entity`);
  }
  if (ctx.sets.has(name)) return name;
  const candidates = withReserved ? [...reservedCandidates(ctx), ...podCandidates(ctx)] : podCandidates(ctx);
  const prefixes: Prefix[] = [];
  const hosts: HostAddresses[] = [];
  for (const c of candidates) {
    if (!matchSelector(eff, c.labels)) continue;
    for (const x of c.prefixes) prefixes.push(x);
    hosts.push(c.hosts);
  }
  return makeSet(ctx, name, `endpoints:${canon}`, 'endpoints', prefixes, undefined, hosts);
}

function resolveNodes(ctx: ResolveContext, sel: LabelSelector): string {
  const canon = canonicalSelector(sel);
  const name = hashedSetName(ctx, 'nodes', `nodes:${canon}`);
  if (ctx.sets.has(name)) return name;
  // fromNodes/toNodes select remote-node identities by their node: labels; never the local host.
  const addrs = ctx.inventory.remoteNodes
    .filter((n) => matchSelector(sel, remoteNodeSelectorLabels(n, ctx.cfg.labelFilter)))
    .flatMap((n) => defined(n.addresses.map(addressOf)));
  return makeSet(ctx, name, `nodes:${canon}`, 'nodes', addrs);
}

function cidrExclusion(ctx: ResolveContext): ExclusionName {
  return ctx.cfg.policyCIDRMatchMode === 'nodes' ? 'cluster_non_node' : 'cluster';
}

/** One written CIDR peer (a fromCIDR item or a CIDRSet entry), parsed, before it becomes a set. */
interface CidrPeer {
  /** "cidr:10.0.0.0/8" or "cidr:10.0.0.0/8 except 10.1.0.0/16": what the single-peer set is named after. */
  readonly label: string;
  readonly prefixes: readonly Prefix[];
  readonly exclude: ExclusionName;
}

/**
 * A parsed CIDR peer, or the family's world set name for a bare zero-length prefix (which is the
 * world entity, shared with world-ipv4/world-ipv6), or undefined when it does not parse.
 */
function parseCidrPeer(ctx: ResolveContext, text: string, except: readonly string[], notes: string[]): CidrPeer | string | undefined {
  let base: Prefix;
  let cuts: Prefix[];
  try {
    base = parsePrefix(text);
    cuts = except.map((e) => parsePrefix(e));
  } catch (err) {
    notes.push(`${err instanceof Error ? err.message : String(err)}; this CIDR peer selects nothing`);
    return undefined;
  }
  const canonCuts = [...new Set(cuts.map(formatPrefix))].sort();
  if (base.len === 0 && canonCuts.length === 0) return worldFamilySet(ctx, base.family);
  const label = canonCuts.length === 0 ? `cidr:${formatPrefix(base)}` : `cidr:${formatPrefix(base)} except ${canonCuts.join(',')}`;
  const prefixes = canonCuts.length === 0 ? [base] : subtractPrefixes([base], cuts);
  // A zero-length prefix is that family's world (§4.4): never cluster addresses, whatever the match mode.
  return { label, prefixes, exclude: base.len === 0 ? 'cluster' : cidrExclusion(ctx) };
}

/** Labels shown for a merged set: the first few members, then a count (a 100k-CIDR label helps nobody). */
const labelMembers = 3;

// Full identity keys of merged CIDR sets by name, per resolve context: their labels are abbreviated,
// so a hash collision must be detected on the key, not on the label.
const mergedKeys = new WeakMap<Map<string, IdentitySet>, Map<string, string>>();

/**
 * The CIDR peers of one rule field (fromCIDR / toCIDR / fromCIDRSet / toCIDRSet) as few sets as the
 * semantics allow: one set per exclusion (the cluster-address exclusion differs only for a zero-length
 * CIDRSet entry under policyCIDRMatchMode: nodes). The union is exact: every member's `except` is
 * subtracted from that member alone before the union, and all members of a set share its exclusion,
 * so "in some member and not excluded" equals "in the union and not excluded" — the same test the
 * verdict and the kernel run per set. A field with a single CIDR keeps the single-CIDR set name.
 * A merged set is named after its sorted member list, so identical lists share one set and an edit
 * of the list renames it: a full replace, not an element delta (a list edit is a policy change;
 * address churn, which deltas are for, never changes a CIDR set).
 */
function resolveCidrField(ctx: ResolveContext, peers: readonly (CidrPeer | string | undefined)[]): string[] {
  const names: string[] = [];
  const groups = new Map<ExclusionName, Map<string, CidrPeer>>();
  for (const p of peers) {
    if (p === undefined) continue;
    if (typeof p === 'string') {
      names.push(p);
      continue;
    }
    let g = groups.get(p.exclude);
    if (g === undefined) {
      g = new Map();
      groups.set(p.exclude, g);
    }
    g.set(p.label, p);
  }
  for (const [exclude, group] of groups) {
    const members = [...group.values()];
    const only = members.length === 1 ? members[0] : undefined;
    if (only !== undefined) {
      names.push(makeSet(ctx, hashedSetName(ctx, 'cidr', only.label), only.label, 'cidr', only.prefixes, exclude));
      continue;
    }
    const labels = [...group.keys()].sort();
    const key = `cidrs:${exclude}\n${labels.join('\n')}`;
    let keys = mergedKeys.get(ctx.sets);
    if (keys === undefined) {
      keys = new Map();
      mergedKeys.set(ctx.sets, keys);
    }
    const short = `cidr_${shortHash(key)}`;
    // Single-CIDR sets share the cidr_ namespace: any other holder of the short name is a collision.
    const name = !ctx.sets.has(short) || keys.get(short) === key ? short : `cidr_${shortHash(key, 16)}`;
    keys.set(name, key);
    const shown = labels.slice(0, labelMembers).map((l) => l.slice('cidr:'.length)).join(', ');
    const label = `cidr:${shown}${labels.length > labelMembers ? ` and ${labels.length - labelMembers} more` : ''} (${labels.length} CIDRs)`;
    const prefixes: Prefix[] = [];
    for (const m of members) for (const x of m.prefixes) prefixes.push(x);
    names.push(makeSet(ctx, name, label, 'cidr', prefixes, exclude));
  }
  return names;
}

function resolveCidrRule(ctx: ResolveContext, r: CIDRRule, notes: string[]): CidrPeer | string | undefined {
  if (r.cidr !== undefined) return parseCidrPeer(ctx, r.cidr, r.except ?? [], notes);
  notes.push('cidrGroupRef/cidrGroupSelector (CiliumCIDRGroup) is not supported; this CIDRSet entry selects nothing');
  return undefined;
}

/** Direction-specific YAML field name of a peer kind. */
export function peerFieldName(direction: Direction, kind: keyof PeerRule): string {
  const from = direction === 'ingress';
  const names: Partial<Record<keyof PeerRule, string>> = {
    endpoints: from ? 'fromEndpoints' : 'toEndpoints',
    cidr: from ? 'fromCIDR' : 'toCIDR',
    cidrSet: from ? 'fromCIDRSet' : 'toCIDRSet',
    entities: from ? 'fromEntities' : 'toEntities',
    nodes: from ? 'fromNodes' : 'toNodes',
    groups: from ? 'fromGroups' : 'toGroups',
    services: 'toServices',
    fqdns: 'toFQDNs',
    requires: from ? 'fromRequires' : 'toRequires',
  };
  return names[kind] ?? kind;
}

/** Peer kinds that select peers (fromRequires is deprecated and ignored, §1.3). */
export const peerKinds = ['endpoints', 'cidr', 'cidrSet', 'entities', 'nodes', 'groups', 'services', 'fqdns'] as const;
export type PeerKind = (typeof peerKinds)[number];

/** Peer fields present in the rule (a null field is absent; an empty list is present). */
export function presentPeerKinds(rule: PeerRule): PeerKind[] {
  return peerKinds.filter((k) => rule[k] !== undefined);
}

/** Resolve the peers of one entry of `direction`. */
export function resolvePeers(rule: PeerRule, direction: Direction, ctx: ResolveContext): PeerResolution {
  const present = presentPeerKinds(rule);
  if (present.length === 0) return { kind: 'any', sets: [], notes: [] };
  const empty = present.filter((k) => (rule[k] ?? []).length === 0);
  if (empty.length > 0) {
    const fields = empty.map((k) => `${peerFieldName(direction, k)}: []`).join(', ');
    return { kind: 'none', sets: [], notes: [`${fields}: an empty peer list makes the whole rule select nothing`] };
  }
  const notes: string[] = [];
  const names: (string | undefined)[] = [];
  for (const kind of present) {
    switch (kind) {
      case 'entities':
        for (const e of rule.entities ?? []) names.push(resolveEntity(ctx, e, notes));
        break;
      case 'endpoints':
        for (const s of rule.endpoints ?? []) names.push(resolveEndpoints(ctx, s, notes));
        break;
      case 'nodes':
        for (const s of rule.nodes ?? []) names.push(resolveNodes(ctx, s));
        break;
      // A whole CIDR field is one set (per exclusion), not one set and one rule per CIDR.
      case 'cidr':
        names.push(...resolveCidrField(ctx, (rule.cidr ?? []).map((c) => parseCidrPeer(ctx, c, [], notes))));
        break;
      case 'cidrSet':
        names.push(...resolveCidrField(ctx, (rule.cidrSet ?? []).map((r) => resolveCidrRule(ctx, r, notes))));
        break;
      case 'groups':
      case 'services':
      case 'fqdns':
        notes.push(`${peerFieldName(direction, kind)} is not supported by nodewall (needs ${kind === 'fqdns' ? 'DNS observation' : kind === 'services' ? 'service endpoint watching' : 'a cloud provider integration'}); these peers select nothing`);
        break;
    }
  }
  const sets = [...new Set(defined(names))];
  return { kind: sets.length === 0 ? 'none' : 'sets', sets, notes: [...new Set(notes)] };
}
