// The policy model kept up to date event by event (issue 9). buildHostModel stays
// the reference: after any sequence of events, `model` deep-equals
// buildHostModel(policies, inventory) of the same state (test/policy/
// incremental-model.test.ts proves it on random event sequences). Pure: no I/O.
//
// What an event costs:
// - pod added/changed/deleted: the pod's identity (pods with equal labels share one) is found or made;
//   a new identity is tested only against the endpoint selectors the label index names as candidates.
//   Each address then changes the CoverSets of the identity's sets and of the cluster pools:
//   O(sets of that identity x address width), whatever the cluster size.
// - remote node added/changed/deleted: node pools, cluster pools and fromNodes/toNodes sets, per field
//   that changed.
// - CCNP added/changed/deleted: that policy's rules are resolved alone; sets no other policy uses are
//   created (one pass over the identities) or dropped; entries and the set list are re-assembled.
// - this node's own labels or addresses, the cluster name or the config: not an event; build anew.
//
// Set names come from the same resolver as the full build. Should two different selectors or CIDR
// lists ever share a hashed name (the full build then gives one of them a longer name, in build
// order), the model stops being incremental and rebuilds in full on every event (`degraded`).

import type { Direction, LabelSelector, PolicyDocument, Rule } from '../api/types.js';
import { NameIndex } from '../inventory/name-index.js';
import { isPodListArray } from '../inventory/pod-list.js';
import type { EngineConfig, Inventory, Labels, NodeInfo, PodInfo, RunMode } from '../inventory/types.js';
import type { Prefix } from './cidr.js';
import { CoverSet, type ElementChanges } from './cover-set.js';
import type { PoolIndex } from './pool-index.js';
import {
  buildHostModel,
  canonicalHostAddresses,
  collect,
  comparePaths,
  directionPolicy,
  icmpv6AlwaysAllow,
  icmpv6IngressPolicyTypes,
  type EntryWithFlag,
} from './build-model.js';
import { hostEndpointLabels, type SourcedLabel } from './label-filter.js';
import { canonicalSelector, matchSelector, parseSelectorKey, selectorKeys, selectorRequirements } from './match-selector.js';
import type { Family, HostModel, IdentitySet } from './model.js';
import { noFailsafes } from './failsafe.js';
import { PodBag } from './pod-bag.js';
import {
  addressOf,
  effectiveEndpointSelector,
  podSelectorLabels,
  prefixOf,
  remoteNodeSelectorLabels,
  reservedLabel,
  resolveContext,
  type AddressPools,
} from './resolve-peers.js';
import { selectingRules, type SelectedRule } from './select-nodes.js';

export type ModelEvent =
  /** A pod added or changed (its PodInfo as the inventory has it). */
  | { readonly kind: 'pod'; readonly pod: PodInfo }
  | { readonly kind: 'pod-deleted'; readonly namespace: string; readonly name: string }
  /** A node other than this one added or changed. */
  | { readonly kind: 'node'; readonly node: NodeInfo }
  | { readonly kind: 'node-deleted'; readonly name: string }
  /** Inventory.apiServerAddresses, all of them. */
  | { readonly kind: 'api-server'; readonly addresses: readonly string[] }
  /** Inventory.clusterPodCIDRs, all of them. */
  | { readonly kind: 'cluster-pod-cidrs'; readonly cidrs: readonly string[] }
  /** This node's labels changed, nothing else about it (its addresses, health/ingress addresses and pod CIDRs are the same). */
  | { readonly kind: 'self-labels'; readonly labels: Labels }
  /** A valid CCNP added or changed. */
  | { readonly kind: 'policy'; readonly policy: PolicyDocument }
  | { readonly kind: 'policy-deleted'; readonly name: string };

/** Elements one model set gained and lost (set = IdentitySet name, or the exclusion's name). */
export interface ModelSetDelta {
  readonly set: string;
  readonly exclusion: boolean;
  readonly family: Family;
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

export interface ModelUpdate {
  readonly model: HostModel;
  /** Element changes of sets present in both the old and the new model. */
  readonly setDeltas: readonly ModelSetDelta[];
  /** Policies whose entries or sets were recomputed. */
  readonly changedPolicies: readonly string[];
  /** Entries, set list or anything but set elements changed: the whole ruleset must be rendered anew. */
  readonly structureChanged: boolean;
}

export class IncrementalModelError extends Error {
  override readonly name = 'IncrementalModelError';
}

type PoolName = 'host' | 'remoteNodes' | 'health' | 'ingress' | 'apiServer' | 'pods' | 'cluster' | 'clusterNonNode' | 'clusterEntity';

/** Entities whose set is a pool's content; every other entity's set never changes. */
const entityPools: Readonly<Record<string, PoolName>> = {
  host: 'host',
  'remote-node': 'remoteNodes',
  'kube-apiserver': 'apiServer',
  health: 'health',
  ingress: 'ingress',
  cluster: 'clusterEntity',
  'cluster-mesh': 'clusterEntity',
};

/** Reserved identities an endpoint selector with a reserved: key can select, and the pool holding their addresses. */
const reservedPools: readonly (readonly [string, PoolName])[] = [
  ['host', 'host'],
  ['remote-node', 'remoteNodes'],
  ['health', 'health'],
  ['ingress', 'ingress'],
  ['kube-apiserver', 'apiServer'],
];

const namespaceKey = 'io.kubernetes.pod.namespace';
const clusterKey = 'io.cilium.k8s.policy.cluster';

/**
 * Pods with equal selector labels: one identity, matched against selectors once. It holds its pods (the
 * inventory's PodInfo objects, nothing copied), not a count per address: every pod address is an input
 * of each endpoint set selecting the identity, counted once per pod by the set's CoverSet, so two pods
 * sharing an address keep it until both are gone.
 */
interface Identity {
  readonly key: string;
  readonly labels: readonly SourcedLabel[];
  readonly pods: PodBag<PodInfo>;
  /** Endpoint sets selecting it. */
  readonly sets: Set<LiveSet>;
}

interface LiveSet {
  readonly template: IdentitySet;
  /** Policies using it. */
  refs: number;
  /** Where its addresses come from. */
  readonly source:
    | { readonly kind: 'static' }
    | { readonly kind: 'pool'; readonly pool: PoolName }
    | { readonly kind: 'endpoints'; readonly selector: LabelSelector; readonly cover: CoverSet; readonly unfeed: (() => void)[] }
    | { readonly kind: 'nodes'; readonly selector: LabelSelector; readonly cover: CoverSet };
  current: IdentitySet;
}

interface PolicyState {
  readonly doc: PolicyDocument;
  /** Its rules selecting this node, in rule path order. */
  readonly selected: readonly SelectedRule[];
  readonly deny: Readonly<Record<Direction, readonly EntryWithFlag[]>>;
  readonly allow: Readonly<Record<Direction, readonly EntryWithFlag[]>>;
  /** Sets its entries use, as its own resolution made them (addresses of live sets not filled in). */
  readonly sets: ReadonlyMap<string, IdentitySet>;
  /** What each endpoint/node set of it selects, by set label. */
  readonly selectors: ReadonlyMap<string, LabelSelector>;
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameSetContent(a: IdentitySet, b: IdentitySet): boolean {
  return a.label === b.label && a.kind === b.kind && a.exclude === b.exclude && sameStrings(a.v4, b.v4) && sameStrings(a.v6, b.v6);
}

function withElements(t: IdentitySet, e: { v4: readonly string[]; v6: readonly string[] }): IdentitySet {
  return t.exclude === undefined
    ? { name: t.name, label: t.label, kind: t.kind, v4: e.v4, v6: e.v6 }
    : { name: t.name, label: t.label, kind: t.kind, v4: e.v4, v6: e.v6, exclude: t.exclude };
}

function addresses(xs: readonly string[]): Prefix[] {
  const out: Prefix[] = [];
  pushAddresses(xs, out);
  return out;
}

/** addresses(xs) appended to `out` (no array per pod in a full build). */
function pushAddresses(xs: readonly string[], out: Prefix[]): void {
  for (const x of xs) {
    const p = addressOf(x);
    if (p !== undefined) out.push(p);
  }
}

function prefixes(xs: readonly string[]): Prefix[] {
  const out: Prefix[] = [];
  for (const x of xs) {
    const p = prefixOf(x);
    if (p !== undefined) out.push(p);
  }
  return out;
}

const prefixKey = (p: Prefix): string => `${p.family === 'ipv4' ? 4 : 6}:${p.bits.toString(16)}/${p.len}`;

/** An address as one bigint (bits, family flag, length): no object per pod address per identity. */

/** a minus b, as multisets of prefixes. */
function minus(a: readonly Prefix[], b: readonly Prefix[]): Prefix[] {
  const counts = new Map<string, number>();
  for (const p of b) counts.set(prefixKey(p), (counts.get(prefixKey(p)) ?? 0) + 1);
  const out: Prefix[] = [];
  for (const p of a) {
    const k = prefixKey(p);
    const c = counts.get(k) ?? 0;
    if (c > 0) counts.set(k, c - 1);
    else out.push(p);
  }
  return out;
}

/**
 * Pods by namespace and name, in sorted chunks keyed by the PodInfo objects' own strings
 * (inventory/name-index.ts): no string, wrapper or hash table entry per pod (nested Maps took 4.6 MB
 * at 100k pods).
 */
class PodIndex {
  private readonly index = new NameIndex<PodInfo>(
    (p) => p.namespace,
    (p) => p.name,
  );

  /** Replaces the content by `pods` (a PodList's array, as the inventory's are: taken as sorted; else checked, sorted when not). */
  load(pods: readonly PodInfo[]): void {
    this.index.load(pods, isPodListArray(pods));
  }

  get(namespace: string, name: string): PodInfo | undefined {
    return this.index.get(namespace, name);
  }

  set(pod: PodInfo): void {
    this.index.set(pod);
  }

  delete(namespace: string, name: string): void {
    this.index.delete(namespace, name);
  }

  values(): IterableIterator<PodInfo> {
    return this.index.values();
  }
}

/**
 * Where a selector is filed in the label index: an `In` (or matchLabels) requirement on a pod label
 * gives key=value entries, an `Exists` the key; a selector without either is tested on every new
 * identity. The namespace Exists and cluster requirements every CCNP endpoint selector gets are on
 * every pod and so select nothing out.
 */
function indexKeys(sel: LabelSelector): string[] | undefined {
  let exists: string | undefined;
  let best: string[] | undefined;
  for (const r of selectorRequirements(sel)) {
    const k = parseSelectorKey(r.key);
    if (k.source !== 'k8s' && k.source !== 'any') continue;
    if (r.operator === 'In' && k.key !== clusterKey) {
      const keys = (r.values ?? []).map((v) => `${k.key}=${v}`);
      if (best === undefined || keys.length < best.length) best = keys;
    } else if (r.operator === 'Exists' && k.key !== namespaceKey && k.key !== clusterKey) {
      exists ??= k.key;
    }
  }
  return best ?? (exists === undefined ? undefined : [k8sExistsKey(exists)]);
}

const k8sExistsKey = (key: string): string => `${key}\u0000exists`;

export class IncrementalModel {
  private readonly cfg: EngineConfig;
  private readonly runMode: RunMode;
  private readonly clusterName: string;
  private self: NodeInfo;
  private emptyInventory: Inventory;
  private selfEndpointLabels: readonly SourcedLabel[];
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly pods = new PodIndex();
  private apiServer: readonly string[];
  private clusterPodCIDRs: readonly string[];
  private readonly identities = new Map<string, Identity>();
  private readonly pools: Record<PoolName, CoverSet>;
  private readonly policies = new Map<string, PolicyState>();
  private policyOrder: string[] = [];
  private readonly sets = new Map<string, LiveSet>();
  /** Label index: "key=value" or "key\0exists" -> endpoint sets; and the sets no key indexes. */
  private readonly index = new Map<string, Set<LiveSet>>();
  private readonly unindexed = new Set<LiveSet>();
  private readonly nodeSets = new Set<LiveSet>();
  private current: HostModel;
  private degradedFlag = false;
  /** Counts apply() calls (a pool index is valid for one version). */
  private version = 0;

  /** Builds the model of `policies` (the valid ones) over `inventory`, like buildHostModel. */
  constructor(policies: readonly PolicyDocument[], inventory: Inventory, cfg: EngineConfig, runMode: RunMode) {
    this.cfg = cfg;
    this.runMode = runMode;
    this.clusterName = inventory.clusterName;
    this.self = inventory.self;
    this.emptyInventory = {
      clusterName: inventory.clusterName,
      self: { ...inventory.self, addresses: [], healthAddresses: [], ingressAddresses: [], podCIDRs: [] },
      remoteNodes: [],
      pods: [],
      apiServerAddresses: [],
      clusterPodCIDRs: [],
    };
    this.selfEndpointLabels = hostEndpointLabels(inventory.self.labels, cfg.labelFilter);
    this.apiServer = inventory.apiServerAddresses;
    this.clusterPodCIDRs = inventory.clusterPodCIDRs;
    for (const n of inventory.remoteNodes) this.nodes.set(n.name, n);

    // Pods and identities first: every set and pool is then loaded in one merge.
    const podInputs: Prefix[] = [];
    const inventoryPods = inventory.pods;
    for (const pod of inventoryPods) {
      this.identityOf(pod, false).pods.add(pod);
      pushAddresses(pod.addresses, podInputs);
    }
    this.pods.load(inventoryPods);
    const all = [inventory.self, ...inventory.remoteNodes];
    const hostAddrs = addresses(inventory.self.addresses);
    const remoteAddrs = inventory.remoteNodes.flatMap((n) => addresses(n.addresses));
    const health = all.flatMap((n) => addresses(n.healthAddresses));
    const ingress = all.flatMap((n) => addresses(n.ingressAddresses));
    const api = addresses(inventory.apiServerAddresses);
    for (const p of prefixes(inventory.clusterPodCIDRs)) podInputs.push(p);
    for (const n of all) for (const p of prefixes(n.podCIDRs)) podInputs.push(p);
    const pool = (inputs: readonly Prefix[], holes: readonly Prefix[] = []): CoverSet => {
      const c = new CoverSet();
      c.load(inputs, holes);
      return c;
    };
    // Chained: pods -> cluster -> cluster_non_node and the cluster entity, each fed the merged output of the one before.
    const pods = pool(podInputs);
    const cluster = pool([...pods.blocks(), ...hostAddrs, ...remoteAddrs, ...health, ...ingress]);
    this.pools = {
      host: pool(hostAddrs),
      remoteNodes: pool(remoteAddrs),
      health: pool(health),
      ingress: pool(ingress),
      apiServer: pool(api),
      pods,
      cluster,
      clusterNonNode: pool(cluster.blocks(), [...hostAddrs, ...remoteAddrs]),
      clusterEntity: pool([...cluster.blocks(), ...api]),
    };
    pods.feeds(cluster, false);
    cluster.feeds(this.pools.clusterNonNode, true);
    cluster.feeds(this.pools.clusterEntity, false);

    const states: PolicyState[] = [];
    for (const doc of policies) if (!this.policies.has(doc.name)) states.push(this.resolvePolicy(doc));
    for (const s of states) this.policies.set(s.doc.name, s);
    this.policyOrder = [...this.policies.keys()].sort();
    if (!this.register(states, [])) this.degrade();
    this.current = this.degradedFlag ? this.fullBuild() : this.assemble();
  }

  /** The current model. */
  get model(): HostModel {
    return this.current;
  }

  /** True once a set name collision made every event a full build. */
  get degraded(): boolean {
    return this.degradedFlag;
  }

  /** The inventory the model currently describes (pods and nodes in no particular order). */
  inventory(): Inventory {
    return {
      clusterName: this.clusterName,
      self: this.self,
      remoteNodes: [...this.nodes.values()],
      pods: [...this.pods.values()],
      apiServerAddresses: this.apiServer,
      clusterPodCIDRs: this.clusterPodCIDRs,
    };
  }

  /** The cluster's address pools, equal to addressPools(this.inventory()) (lint reads them). */
  addressPools(): AddressPools {
    const p = this.pools;
    return {
      host: p.host.blocks(),
      remoteNodes: p.remoteNodes.blocks(),
      health: p.health.blocks(),
      ingress: p.ingress.blocks(),
      apiServer: p.apiServer.blocks(),
      pods: p.pods.blocks(),
      cluster: p.cluster.blocks(),
      clusterNonNode: p.clusterNonNode.blocks(),
      clusterEntity: p.clusterEntity.blocks(),
    };
  }

  /**
   * addressPools' questions for lint, answered from the live pools without copying them (pool-index.ts).
   * Valid until the next apply(): `current` says whether it still is; asked after that, it throws.
   */
  poolIndex(): { readonly index: PoolIndex; readonly current: () => boolean } {
    const version = this.version;
    const p = this.pools;
    const current = (): boolean => this.version === version;
    return {
      index: {
        overlaps: (pool, prefix) => {
          if (!current()) throw new IncrementalModelError('pool index asked after the model changed');
          return p[pool].overlaps(prefix);
        },
      },
      current,
    };
  }

  /** The policies the model currently holds, by name. */
  policyDocuments(): PolicyDocument[] {
    return this.policyOrder.map((n) => this.policies.get(n)?.doc).filter((d): d is PolicyDocument => d !== undefined);
  }

  /** Applies events in order and returns the new model with what changed. */
  apply(events: readonly ModelEvent[]): ModelUpdate {
    this.version++;
    const before = this.current;
    const changedPolicies: string[] = [];
    let structural = false;
    for (const e of events) {
      switch (e.kind) {
        case 'pod':
          this.upsertPod(e.pod);
          break;
        case 'pod-deleted':
          this.deletePod(e.namespace, e.name);
          break;
        case 'node':
          if (e.node.name === this.self.name) throw new IncrementalModelError(`node ${e.node.name} is this node: build the model anew`);
          this.setNode(e.node.name, e.node);
          break;
        case 'node-deleted':
          this.setNode(e.name, undefined);
          break;
        case 'api-server':
          this.setApiServer(e.addresses);
          break;
        case 'cluster-pod-cidrs':
          this.changeInputs([this.pools.pods], prefixes(this.clusterPodCIDRs), prefixes(e.cidrs));
          this.clusterPodCIDRs = e.cidrs;
          break;
        case 'self-labels': {
          const reselected = this.setSelfLabels(e.labels);
          for (const name of reselected) changedPolicies.push(name);
          structural = reselected.length > 0 || structural;
          break;
        }
        case 'policy':
          changedPolicies.push(e.policy.name);
          structural = this.setPolicy(e.policy.name, e.policy) || structural;
          break;
        case 'policy-deleted':
          changedPolicies.push(e.name);
          structural = this.setPolicy(e.name, undefined) || structural;
          break;
      }
    }
    if (this.degradedFlag) {
      this.current = this.fullBuild();
      return { model: this.current, setDeltas: [], changedPolicies, structureChanged: true };
    }
    const setDeltas = this.refreshSets(before);
    if (structural) this.current = this.assemble();
    return { model: this.current, setDeltas, changedPolicies, structureChanged: structural };
  }

  /** Convenience: one event. */
  applyEvent(event: ModelEvent): ModelUpdate {
    return this.apply([event]);
  }

  // ---- pods and identities ----

  private identityOf(pod: PodInfo, live: boolean): Identity {
    const { labels, key } = podSelectorLabels(pod, this.clusterName, this.cfg.labelFilter);
    let id = this.identities.get(key);
    if (id === undefined) {
      id = { key, labels, pods: new PodBag(), sets: new Set() };
      this.identities.set(key, id);
      if (live) for (const s of this.candidates(labels)) if (this.selectsIdentity(s, id)) id.sets.add(s);
    }
    return id;
  }

  private candidates(labels: readonly SourcedLabel[]): Set<LiveSet> {
    const out = new Set(this.unindexed);
    for (const l of labels) {
      for (const s of this.index.get(`${l.key}=${l.value}`) ?? []) out.add(s);
      for (const s of this.index.get(k8sExistsKey(l.key)) ?? []) out.add(s);
    }
    return out;
  }

  private selectsIdentity(s: LiveSet, id: Identity): boolean {
    return s.source.kind === 'endpoints' && matchSelector(effectiveEndpointSelector(s.source.selector, this.clusterName), id.labels);
  }

  /** The identity `pod` belongs to (it must have one: every pod in the index has). */
  private identityOfKnown(pod: PodInfo): Identity {
    const id = this.identities.get(podSelectorLabels(pod, this.clusterName, this.cfg.labelFilter).key);
    if (id === undefined || !id.pods.has(pod)) throw new IncrementalModelError(`pod ${pod.namespace}/${pod.name} is not among its identity's pods`);
    return id;
  }

  private upsertPod(pod: PodInfo): void {
    const old = this.pods.get(pod.namespace, pod.name);
    if (old !== undefined && sameStrings(old.addresses, pod.addresses)) {
      const id = this.identityOfKnown(old);
      if (podSelectorLabels(pod, this.clusterName, this.cfg.labelFilter).key === id.key) {
        id.pods.replace(old, pod);
        this.pods.set(pod);
        return;
      }
    }
    if (old !== undefined) this.deletePod(old.namespace, old.name);
    const identity = this.identityOf(pod, true);
    identity.pods.add(pod);
    for (const p of addresses(pod.addresses)) {
      for (const s of identity.sets) if (s.source.kind === 'endpoints') s.source.cover.add(p);
      this.pools.pods.add(p);
    }
    this.pods.set(pod);
  }

  private deletePod(namespace: string, name: string): void {
    const old = this.pods.get(namespace, name);
    if (old === undefined) return;
    const id = this.identityOfKnown(old);
    this.pods.delete(namespace, name);
    id.pods.delete(old);
    for (const p of addresses(old.addresses)) {
      for (const s of id.sets) if (s.source.kind === 'endpoints') s.source.cover.remove(p);
      this.pools.pods.remove(p);
    }
    if (id.pods.size === 0) this.identities.delete(id.key);
  }

  // ---- nodes, API server, pod CIDRs ----

  /** Removes `before` minus `after` and adds `after` minus `before` (multisets) in each cover. */
  private changeInputs(covers: readonly CoverSet[], before: readonly Prefix[], after: readonly Prefix[], holes = false): void {
    const gone = minus(before, after);
    const come = minus(after, before);
    for (const c of covers) {
      for (const p of gone) (holes ? c.removeHole(p) : c.remove(p));
      for (const p of come) (holes ? c.addHole(p) : c.add(p));
    }
  }

  private setNode(name: string, node: NodeInfo | undefined): void {
    const old = this.nodes.get(name);
    if (old === undefined && node === undefined) return;
    const none: readonly string[] = [];
    const oldAddrs = addresses(old?.addresses ?? none);
    const newAddrs = addresses(node?.addresses ?? none);
    const p = this.pools;
    if (!sameStrings(old?.addresses ?? none, node?.addresses ?? none)) {
      this.changeInputs([p.remoteNodes, p.cluster], oldAddrs, newAddrs);
      this.changeInputs([p.clusterNonNode], oldAddrs, newAddrs, true);
    }
    if (!sameStrings(old?.healthAddresses ?? none, node?.healthAddresses ?? none)) {
      this.changeInputs([p.health, p.cluster], addresses(old?.healthAddresses ?? none), addresses(node?.healthAddresses ?? none));
    }
    if (!sameStrings(old?.ingressAddresses ?? none, node?.ingressAddresses ?? none)) {
      this.changeInputs([p.ingress, p.cluster], addresses(old?.ingressAddresses ?? none), addresses(node?.ingressAddresses ?? none));
    }
    if (!sameStrings(old?.podCIDRs ?? none, node?.podCIDRs ?? none)) {
      this.changeInputs([p.pods], prefixes(old?.podCIDRs ?? none), prefixes(node?.podCIDRs ?? none));
    }
    for (const s of this.nodeSets) {
      if (s.source.kind !== 'nodes') continue;
      const was = old !== undefined && matchSelector(s.source.selector, remoteNodeSelectorLabels(old, this.cfg.labelFilter));
      const is = node !== undefined && matchSelector(s.source.selector, remoteNodeSelectorLabels(node, this.cfg.labelFilter));
      this.changeInputs([s.source.cover], was ? oldAddrs : [], is ? newAddrs : []);
    }
    if (node === undefined) this.nodes.delete(name);
    else this.nodes.set(name, node);
  }

  /**
   * This node's labels: they decide which rules select the node (and so every policy's entries) and what
   * a `reserved:host` endpoint selector matches. Policies that select the node before or after are
   * resolved again; the cluster side (pods, identities, pools, node sets) does not depend on them.
   * Returns the names of the policies resolved again. Throws IncrementalModelError when a live endpoint
   * set with a reserved: key gains or loses the host (rare): the caller builds anew.
   */
  private setSelfLabels(labels: Labels): string[] {
    const endpointLabels = hostEndpointLabels(labels, this.cfg.labelFilter);
    for (const s of this.sets.values()) {
      if (s.source.kind !== 'endpoints') continue;
      const sel = s.source.selector;
      if (!selectorKeys(sel).some((k) => k.source === 'reserved')) continue;
      const eff = effectiveEndpointSelector(sel, this.clusterName);
      if (matchSelector(eff, this.selfEndpointLabels) !== matchSelector(eff, endpointLabels)) {
        throw new IncrementalModelError(`set ${s.template.name} selects this node's host identity by its labels: build the model anew`);
      }
    }
    this.self = { ...this.self, labels };
    this.selfEndpointLabels = endpointLabels;
    this.emptyInventory = { ...this.emptyInventory, self: { ...this.emptyInventory.self, labels } };
    const reselected: string[] = [];
    for (const name of this.policyOrder) {
      const old = this.policies.get(name);
      if (old === undefined) continue;
      if (old.selected.length === 0 && selectingRules([old.doc], labels, this.cfg.labelFilter).length === 0) continue;
      const next = this.resolvePolicy(old.doc);
      if (!this.register([next], [old])) this.degrade();
      this.policies.set(name, next);
      reselected.push(name);
    }
    return reselected;
  }

  private setApiServer(next: readonly string[]): void {
    if (sameStrings(this.apiServer, next)) return;
    this.changeInputs([this.pools.apiServer, this.pools.clusterEntity], addresses(this.apiServer), addresses(next));
    this.apiServer = next;
  }

  // ---- policies and sets ----

  /** One policy resolved on its own (set addresses that depend on the cluster are filled in by live sets). */
  private resolvePolicy(doc: PolicyDocument): PolicyState {
    const selected = selectingRules([doc], this.self.labels, this.cfg.labelFilter).sort((a, b) => comparePaths(a.rule.path, b.rule.path));
    const ctx = resolveContext(this.emptyInventory, this.cfg);
    const split = (dir: Direction): { deny: EntryWithFlag[]; allow: EntryWithFlag[] } => {
      const all = collect(selected, dir, ctx);
      return { deny: all.filter((e) => e.entry.action === 'deny'), allow: all.filter((e) => e.entry.action === 'allow') };
    };
    const ingress = split('ingress');
    const egress = split('egress');
    const used = new Set<string>();
    for (const list of [ingress.deny, ingress.allow, egress.deny, egress.allow]) for (const e of list) if (e.entry.peer !== null) used.add(e.entry.peer);
    const sets = new Map<string, IdentitySet>();
    for (const [name, set] of ctx.sets) if (used.has(name)) sets.set(name, set);
    return {
      doc,
      selected,
      deny: { ingress: ingress.deny, egress: egress.deny },
      allow: { ingress: ingress.allow, egress: egress.allow },
      sets,
      selectors: selectorsOf(selected),
    };
  }

  /** Returns true when entries or sets changed. */
  private setPolicy(name: string, doc: PolicyDocument | undefined): boolean {
    const old = this.policies.get(name);
    if (old === undefined && doc === undefined) return false;
    if (old !== undefined && doc !== undefined && old.doc === doc) return false;
    const next = doc === undefined ? undefined : this.resolvePolicy(doc);
    if (!this.register(next === undefined ? [] : [next], old === undefined ? [] : [old])) {
      this.degrade();
    }
    if (next === undefined) this.policies.delete(name);
    else this.policies.set(name, next);
    if ((old === undefined) !== (next === undefined)) this.policyOrder = [...this.policies.keys()].sort();
    return true;
  }

  /**
   * Takes references on the sets of `added` (creating live sets) and drops those of `removed`.
   * False when a name would stand for two different sets (a hash collision): the caller degrades.
   */
  private register(added: readonly PolicyState[], removed: readonly PolicyState[]): boolean {
    if (this.degradedFlag) return true;
    const fresh = new Map<string, { t: IdentitySet; sel: LabelSelector | undefined }>();
    for (const st of added) {
      for (const [name, t] of st.sets) {
        // A 16-digit name means a collision inside this policy's own resolution.
        if (/_[0-9a-f]{16}$/.test(name)) return false;
        const have = this.sets.get(name)?.template ?? fresh.get(name)?.t;
        if (have !== undefined) {
          if (have.label !== t.label || have.kind !== t.kind || (t.kind === 'cidr' && !sameSetContent(have, t))) return false;
          continue;
        }
        fresh.set(name, { t, sel: st.selectors.get(t.label) });
      }
    }
    for (const [name, { t, sel }] of fresh) this.sets.set(name, this.createSet(t, sel));
    for (const st of added) for (const name of st.sets.keys()) {
      const s = this.sets.get(name);
      if (s !== undefined) s.refs++;
    }
    for (const st of removed) for (const name of st.sets.keys()) {
      const s = this.sets.get(name);
      if (s !== undefined && --s.refs === 0) this.dropSet(name, s);
    }
    return true;
  }

  private createSet(t: IdentitySet, selector: LabelSelector | undefined): LiveSet {
    if (t.kind === 'entity') {
      const entity = t.label.slice('entity:'.length);
      const pool = Object.hasOwn(entityPools, entity) ? entityPools[entity] : undefined;
      if (pool !== undefined) return { template: t, refs: 0, source: { kind: 'pool', pool }, current: withElements(t, this.pools[pool].elements()) };
    }
    if (t.kind === 'nodes' && selector !== undefined) {
      const cover = new CoverSet();
      const inputs: Prefix[] = [];
      for (const n of this.nodes.values()) if (matchSelector(selector, remoteNodeSelectorLabels(n, this.cfg.labelFilter))) inputs.push(...addresses(n.addresses));
      cover.load(inputs);
      const s: LiveSet = { template: t, refs: 0, source: { kind: 'nodes', selector, cover }, current: withElements(t, cover.elements()) };
      this.nodeSets.add(s);
      return s;
    }
    if (t.kind === 'endpoints' && selector !== undefined) {
      const cover = new CoverSet();
      const source = { kind: 'endpoints' as const, selector, cover, unfeed: [] as (() => void)[] };
      const s: LiveSet = { template: t, refs: 0, source, current: t };
      const eff = effectiveEndpointSelector(selector, this.clusterName);
      const inputs: Prefix[] = [];
      for (const id of this.identities.values()) {
        if (!matchSelector(eff, id.labels)) continue;
        id.sets.add(s);
        for (const pod of id.pods) pushAddresses(pod.addresses, inputs);
      }
      // A selector with a reserved: key also selects reserved identities (never narrowed to pods).
      const feeding: CoverSet[] = [];
      if (eff === selector && selectorKeys(selector).some((k) => k.source === 'reserved')) {
        for (const [entity, pool] of reservedPools) {
          const labels = entity === 'host' ? this.selfEndpointLabels : [reservedLabel(entity)];
          if (!matchSelector(eff, labels)) continue;
          inputs.push(...this.pools[pool].blocks());
          feeding.push(this.pools[pool]);
        }
      }
      cover.load(inputs);
      for (const f of feeding) source.unfeed.push(f.feeds(cover, false));
      s.current = withElements(t, cover.elements());
      const keys = indexKeys(selector);
      if (keys === undefined) this.unindexed.add(s);
      else for (const k of keys) {
        let bucket = this.index.get(k);
        if (bucket === undefined) {
          bucket = new Set();
          this.index.set(k, bucket);
        }
        bucket.add(s);
      }
      return s;
    }
    return { template: t, refs: 0, source: { kind: 'static' }, current: t };
  }

  private dropSet(name: string, s: LiveSet): void {
    this.sets.delete(name);
    if (s.source.kind === 'nodes') this.nodeSets.delete(s);
    if (s.source.kind !== 'endpoints') return;
    for (const u of s.source.unfeed) u();
    for (const id of this.identities.values()) id.sets.delete(s);
    this.unindexed.delete(s);
    for (const [k, bucket] of this.index) {
      bucket.delete(s);
      if (bucket.size === 0) this.index.delete(k);
    }
  }

  private degrade(): void {
    this.degradedFlag = true;
    this.sets.clear();
    this.index.clear();
    this.unindexed.clear();
    this.nodeSets.clear();
    for (const id of this.identities.values()) id.sets.clear();
  }

  // ---- output ----

  /** Picks up every element change since the last call: live sets and exclusions get new values. */
  private refreshSets(before: HostModel): ModelSetDelta[] {
    const deltas: ModelSetDelta[] = [];
    const report = (set: string, exclusion: boolean, ch: Record<Family, ElementChanges>): void => {
      for (const family of ['ipv4', 'ipv6'] as const) {
        const c = ch[family];
        if (c.add.length > 0 || c.remove.length > 0) deltas.push({ set, exclusion, family, add: c.add, remove: c.remove });
      }
    };
    // Every changed pool's element changes, taken once: exclusions report them, entity sets share them.
    const poolChanges = new Map<PoolName, Record<Family, ElementChanges>>();
    for (const [name, pool] of Object.entries(this.pools) as [PoolName, CoverSet][]) {
      if (!pool.changed) continue;
      const ch = { ipv4: pool.v4.takeChanges(), ipv6: pool.v6.takeChanges() };
      poolChanges.set(name, ch);
      const exclusion = name === 'cluster' ? 'cluster' : name === 'clusterNonNode' ? 'cluster_non_node' : undefined;
      if (exclusion !== undefined) report(exclusion, true, ch);
    }
    let sets: Record<string, IdentitySet> | undefined;
    const inModel = (name: string): boolean => Object.hasOwn(before.sets, name);
    for (const [name, s] of this.sets) {
      let next: IdentitySet | undefined;
      if (s.source.kind === 'pool') {
        const ch = poolChanges.get(s.source.pool);
        if (ch === undefined) continue;
        next = withElements(s.template, this.pools[s.source.pool].elements());
        if (inModel(name)) report(name, false, ch);
      } else if (s.source.kind === 'endpoints' || s.source.kind === 'nodes') {
        const cover = s.source.cover;
        if (!cover.changed) continue;
        const ch = { ipv4: cover.v4.takeChanges(), ipv6: cover.v6.takeChanges() };
        if (inModel(name)) report(name, false, ch);
        next = withElements(s.template, cover.elements());
      } else {
        continue;
      }
      s.current = next;
      if (inModel(name)) {
        sets ??= { ...before.sets };
        sets[name] = next;
      }
    }
    const exclusionsChanged = poolChanges.has('cluster') || poolChanges.has('clusterNonNode');
    if (sets !== undefined || exclusionsChanged) {
      this.current = {
        ...before,
        sets: sets ?? before.sets,
        exclusions: exclusionsChanged ? { cluster: this.pools.cluster.elements(), cluster_non_node: this.pools.clusterNonNode.elements() } : before.exclusions,
      } as HostModel;
    }
    return deltas;
  }

  /** The whole model from the per-policy parts and the live sets. */
  private assemble(): HostModel {
    const selected: SelectedRule[] = [];
    const collected: Record<Direction, EntryWithFlag[]> = { ingress: [], egress: [] };
    const states = this.policyOrder.map((n) => this.policies.get(n)).filter((s): s is PolicyState => s !== undefined);
    for (const st of states) for (const r of st.selected) selected.push(r);
    for (const dir of ['ingress', 'egress'] as const) {
      for (const st of states) for (const e of st.deny[dir]) collected[dir].push(e);
      for (const st of states) for (const e of st.allow[dir]) collected[dir].push(e);
    }
    const node = this.self.name;
    const ingress = directionPolicy('ingress', collected.ingress, node, selected, this.cfg);
    const egress = directionPolicy('egress', collected.egress, node, selected, this.cfg);
    const used = new Set<string>();
    for (const e of [...ingress.entries, ...egress.entries]) if (e.peer !== null) used.add(e.peer);
    const sets: Record<string, IdentitySet> = {};
    for (const name of [...used].sort()) {
      const s = this.sets.get(name);
      if (s === undefined) throw new IncrementalModelError(`set ${name} is used by an entry but was never registered`);
      sets[name] = s.current;
    }
    return {
      node,
      enforcementMode: this.cfg.policyEnforcement,
      runMode: this.runMode,
      selectedPolicies: states.filter((s) => s.selected.length > 0).map((s) => s.doc.name),
      ingress,
      egress,
      sets,
      exclusions: { cluster: this.pools.cluster.elements(), cluster_non_node: this.pools.clusterNonNode.elements() },
      hostAddresses: canonicalHostAddresses(this.self.addresses),
      datapath: {
        allowICMPFragNeeded: this.cfg.allowICMPFragNeeded,
        icmpv6AlwaysAllow,
        icmpv6IngressPolicyTypes,
        extendedProtocols: this.cfg.enableExtendedIPProtocols,
      },
      failsafe: this.cfg.failsafe ?? noFailsafes,
    };
  }

  private fullBuild(): HostModel {
    // Covers keep no changes between events in this mode.
    for (const pool of Object.values(this.pools)) for (const f of ['ipv4', 'ipv6'] as const) pool.half(f).takeChanges();
    return buildHostModel(this.policyDocuments(), this.inventory(), this.cfg, this.runMode);
  }
}

/** Endpoint and node selectors of the selected rules, by the label their set carries. */
function selectorsOf(selected: readonly SelectedRule[]): Map<string, LabelSelector> {
  const out = new Map<string, LabelSelector>();
  const lists = ['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const satisfies readonly (keyof Rule)[];
  for (const { rule } of selected) {
    for (const list of lists) {
      for (const pr of rule[list] ?? []) {
        for (const s of pr.endpoints ?? []) out.set(`endpoints:${canonicalSelector(s)}`, s);
        for (const s of pr.nodes ?? []) out.set(`nodes:${canonicalSelector(s)}`, s);
      }
    }
  }
  return out;
}
