// Cluster objects (Node, CiliumNode, Pod, CiliumEndpoint, Namespace,
// Endpoints, EndpointSlice) + config -> the Inventory the policy stage reads.
// Pure. Bad addresses become warnings and are left out.

import { compareJoined, NameIndex, sortByKey } from './name-index.js';
import { PodList } from './pod-list.js';
import type { Problem } from '../api/problem.js';
import type { KubeObject, SourcePos } from '../api/types.js';
import { metadataProblem } from '../api/object-metadata.js';
import { canonicalIPv4, CidrError, mergePrefixes, parseAddress, parsePrefix, formatAddress, formatPrefix, type Prefix } from '../policy/cidr.js';
import { identityLabelsFromStrings, podIdentityLabels } from './pod-labels.js';
import { EndpointRecord, KubeRecord, objectName, objectNamespace, PodRecord, podShape } from './sources/pod-record.js';
import type { Inventory, Labels, NodeInfo, NodewallConfig, PodInfo } from './types.js';

export interface BuildInventoryOptions {
  readonly nodeName: string;
  /** Labels given on the command line; they win over config and Node labels. */
  readonly nodeLabels?: Labels;
  /** This machine's interface addresses, added to self when nodewall runs on that node. */
  readonly localAddresses?: readonly string[];
  /**
   * Where `objects` can be read again (ObjectIndex.source), when the caller has such a holder (a
   * source's snapshot that makes its list only when read and keeps it only while it is held); absent:
   * the array itself is kept.
   */
  readonly source?: ObjectSource;
}

type Json = Record<string, unknown>;

const rec = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function labelsOf(v: unknown): Record<string, string> {
  const out: [string, string][] = [];
  for (const [k, val] of Object.entries(rec(v) ?? {})) {
    // Unquoted YAML values (`zone: 1`) are meant as strings.
    if (typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean') out.push([k, String(val)]);
  }
  // Own properties even for a key named like an Object.prototype member (`out[k] = v` drops __proto__).
  return Object.fromEntries(out);
}

/**
 * labelsOf(v), or `v` itself when it is a frozen map of strings alone (the Kubernetes source's shared
 * label maps, kube-kinds.ts sharedStringMap): labelsOf would copy it as it is. A node's labels then
 * share the source's map instead of a copy per node (5000 nodes: some 0.5 MB).
 */
function sharedLabelsOf(v: unknown): Record<string, string> {
  const r = rec(v);
  if (r === undefined || !Object.isFrozen(r) || Object.getPrototypeOf(r) !== Object.prototype) return labelsOf(v);
  for (const k of Object.keys(r)) if (typeof r[k] !== 'string') return labelsOf(v);
  return r as Record<string, string>;
}

/** `a`'s own labels, then `b`'s over them: `b` itself when `a` has none (no copy). */
function layered(a: Record<string, string> | undefined, b: unknown): Record<string, string> {
  return a === undefined ? sharedLabelsOf(b) : { ...a, ...labelsOf(b) };
}

const noPos: SourcePos = { file: '<cluster objects>', line: 1, col: 1 };

/** Collects canonical addresses and prefixes, reporting bad ones as warnings. */
class Collector {
  readonly problems: Problem[] = [];

  address(text: unknown, obj: KubeObject | SourcePos, field: string, what: string): string | undefined {
    if (typeof text !== 'string') {
      if (text !== undefined && text !== null) this.warn(obj, field, `${what}: expected an IP address string`, 'inventory/bad-address');
      return undefined;
    }
    // Already canonical (pod and node addresses nearly always are): keep the string itself, so the
    // inventory shares it with the object it came from.
    if (canonicalIPv4(text) !== undefined) return text;
    try {
      const a = parseAddress(text);
      const canonical = formatAddress(a.family, a.bits);
      return canonical === text ? text : canonical;
    } catch (err) {
      if (!(err instanceof CidrError)) throw err;
      this.warn(obj, field, `${what}: ${err.message}; ignored`, 'inventory/bad-address');
      return undefined;
    }
  }

  prefix(text: unknown, obj: KubeObject | SourcePos, field: string, what: string): Prefix | undefined {
    if (typeof text !== 'string') {
      if (text !== undefined && text !== null) this.warn(obj, field, `${what}: expected a CIDR string`, 'inventory/bad-cidr');
      return undefined;
    }
    try {
      return parsePrefix(text);
    } catch (err) {
      if (!(err instanceof CidrError)) throw err;
      this.warn(obj, field, `${what}: ${err.message}; ignored`, 'inventory/bad-cidr');
      return undefined;
    }
  }

  /** `perObject`: the warning is about `at` alone (it goes with that object in an ObjectIndex). */
  warn(at: KubeObject | SourcePos, field: string, message: string, code: string, perObject = true): void {
    const pos = 'kind' in at ? (at.pos ?? noPos) : at;
    const problem: Problem = { severity: 'warning', pos, field, message, code };
    this.problems.push(problem);
    if (perObject && 'kind' in at && (at.kind === 'Pod' || at.kind === 'CiliumEndpoint' || at.kind === 'Node' || at.kind === 'CiliumNode')) {
      const key = objectKey(at);
      const list = this.byObject.get(key);
      if (list === undefined) this.byObject.set(key, [problem]);
      else list.push(problem);
    }
  }

  /** Warnings about pod and node objects, by objectKey (for ObjectIndex). */
  readonly byObject = new Map<string, Problem[]>();
}

function describe(obj: KubeObject): string {
  const ns = objectNamespace(obj);
  return `${obj.kind} ${ns === undefined ? '' : `${ns}/`}${objectName(obj)}`;
}

interface NodeAcc {
  name: string;
  labels?: Record<string, string>; // from the Node object
  ciliumLabels?: Record<string, string>; // from the CiliumNode (mirror of the Node's)
  addresses: Set<string>;
  health: Set<string>;
  ingress: Set<string>;
  podCIDRs: Prefix[];
  hasNode: boolean;
}

function nodeAcc(nodes: Map<string, NodeAcc>, name: string): NodeAcc {
  let n = nodes.get(name);
  if (n === undefined) {
    n = { name, addresses: new Set(), health: new Set(), ingress: new Set(), podCIDRs: [], hasNode: false };
    nodes.set(name, n);
  }
  return n;
}

function addNode(c: Collector, nodes: Map<string, NodeAcc>, obj: KubeObject): void {
  const n = nodeAcc(nodes, obj.metadata.name);
  n.hasNode = true;
  n.labels = layered(n.labels, obj.metadata.labels);
  const status = rec(obj['status']);
  arr(status?.['addresses']).forEach((item, i) => {
    const a = rec(item);
    const type = a?.['type'];
    // Hostname entries are names, not IPs; InternalDNS/ExternalDNS likewise.
    if (type !== 'InternalIP' && type !== 'ExternalIP') return;
    const ip = c.address(a?.['address'], obj, `status.addresses[${i}].address`, describe(obj));
    if (ip !== undefined) n.addresses.add(ip);
  });
  const spec = rec(obj['spec']);
  const cidrs = [...arr(spec?.['podCIDRs']).map((v, i) => [v, `spec.podCIDRs[${i}]`] as const), [spec?.['podCIDR'], 'spec.podCIDR'] as const];
  for (const [v, field] of cidrs) {
    const p = c.prefix(v, obj, field, describe(obj));
    if (p !== undefined) n.podCIDRs.push(p);
  }
}

function addCiliumNode(c: Collector, nodes: Map<string, NodeAcc>, obj: KubeObject): void {
  const n = nodeAcc(nodes, obj.metadata.name);
  n.ciliumLabels = layered(n.ciliumLabels, obj.metadata.labels);
  const spec = rec(obj['spec']);
  arr(spec?.['addresses']).forEach((item, i) => {
    // Every type counts: InternalIP, ExternalIP and CiliumInternalIP (the cilium_host router IP).
    const ip = c.address(rec(item)?.['ip'], obj, `spec.addresses[${i}].ip`, describe(obj));
    if (ip !== undefined) n.addresses.add(ip);
  });
  for (const [key, set] of [
    ['health', n.health],
    ['ingress', n.ingress],
  ] as const) {
    const block = rec(spec?.[key]);
    for (const fam of ['ipv4', 'ipv6'] as const) {
      const ip = c.address(block?.[fam], obj, `spec.${key}.${fam}`, describe(obj));
      if (ip !== undefined) set.add(ip);
    }
  }
  arr(rec(spec?.['ipam'])?.['podCIDRs']).forEach((v, i) => {
    const p = c.prefix(v, obj, `spec.ipam.podCIDRs[${i}]`, describe(obj));
    if (p !== undefined) n.podCIDRs.push(p);
  });
}

interface PodAcc {
  namespace: string;
  name: string;
  labels: Labels;
  fromPod: boolean;
  /**
   * Distinct, in the order first seen. A list, not a Set: one per pod lives until the build's end
   * (promoted, at 100k pods some 10 MB more than these lists to collect), for one or two addresses.
   * Never changed in place: it may be a PodRecord's own list, which the PodInfo then shares.
   */
  addresses: readonly string[];
  nodeName?: string;
  obj: KubeObject;
}

// Keys are built with join, which makes one flat string; a template literal makes a chain of
// concatenation nodes that a long-lived Map key keeps (some 40 bytes more per pod).
const podKey = (ns: string, name: string): string => [ns, '/', name].join('');

function namespaceOf(obj: KubeObject): string {
  return objectNamespace(obj) ?? 'default';
}

interface PodContext {
  readonly c: Collector;
  readonly pods: Map<string, PodAcc>;
  /** Host-network and finished pods: a CiliumEndpoint of the same name must not bring them back. */
  readonly skipped: Set<string>;
  readonly nsLabels: ReadonlyMap<string, Labels>;
  readonly cfg: NodewallConfig;
}

/**
 * Pods with the same namespace, service account and labels get one Labels object (a Deployment's
 * replicas share it), not one each: less memory, and identity lookups downstream can key on the
 * object (resolve-peers.ts podSelectorLabels). Kept per namespace-label map, i.e. per full build and
 * the updates that follow it; bounded (when full it starts over, which only loses sharing).
 */
const labelCaches = new WeakMap<ReadonlyMap<string, Labels>, Map<string, Labels>>();
const labelCacheLimit = 50_000;

function sharedLabels(nsLabels: ReadonlyMap<string, Labels>, key: string, make: () => Labels): Labels {
  let cache = labelCaches.get(nsLabels);
  if (cache === undefined || cache.size >= labelCacheLimit) {
    cache = new Map();
    labelCaches.set(nsLabels, cache);
  }
  let labels = cache.get(key);
  if (labels === undefined) {
    labels = make();
    cache.set(key, labels);
  }
  return labels;
}

/**
 * In front of sharedLabels for PodRecords: their label maps are the source's shared frozen ones
 * (sharedStringMap), so a pod's Labels are found by that map object, namespace and service account,
 * with no JSON key per pod. Each entry is what sharedLabels gave for those inputs (`miss`); kept per
 * namespace-label map like sharedLabels' cache (one build and its updates: one config), and only as
 * long as the label map lives.
 */
const recordLabelCaches = new WeakMap<ReadonlyMap<string, Labels>, WeakMap<object, Map<string, Map<string, Labels>>>>();
const noPodLabels = {};

function recordLabels(nsLabels: ReadonlyMap<string, Labels>, podLabels: object | undefined, namespace: string, serviceAccount: string, miss: () => Labels): Labels {
  let byMap = recordLabelCaches.get(nsLabels);
  if (byMap === undefined) recordLabelCaches.set(nsLabels, (byMap = new WeakMap()));
  const mapKey = podLabels ?? noPodLabels;
  let byNamespace = byMap.get(mapKey);
  if (byNamespace === undefined) byMap.set(mapKey, (byNamespace = new Map()));
  let bySa = byNamespace.get(namespace);
  if (bySa === undefined) byNamespace.set(namespace, (bySa = new Map()));
  let labels = bySa.get(serviceAccount);
  if (labels === undefined) bySa.set(serviceAccount, (labels = miss()));
  return labels;
}

function addPod(ctx: PodContext, obj: KubeObject): void {
  if (obj instanceof PodRecord) {
    addPodRecord(ctx, obj);
    return;
  }
  const { c, pods, nsLabels, cfg } = ctx;
  const spec = rec(obj['spec']);
  const status = rec(obj['status']);
  const phase = status?.['phase'];
  // Host-network pods have the host's identity: they are the host (reference §4.2).
  if (spec?.['hostNetwork'] === true || phase === 'Succeeded' || phase === 'Failed') {
    ctx.skipped.add(podKey(namespaceOf(obj), obj.metadata.name));
    return;
  }
  const addresses: string[] = [];
  const podIPs = arr(status?.['podIPs']);
  podIPs.forEach((item, i) => {
    const ip = c.address(rec(item)?.['ip'], obj, `status.podIPs[${i}].ip`, describe(obj));
    if (ip !== undefined) addDistinct(addresses, ip);
  });
  if (podIPs.length === 0) {
    const ip = c.address(status?.['podIP'], obj, 'status.podIP', describe(obj));
    if (ip !== undefined) addDistinct(addresses, ip);
  }
  const namespace = namespaceOf(obj);
  const serviceAccount = str(spec?.['serviceAccountName']) ?? str(spec?.['serviceAccount']);
  const labels = sharedLabels(nsLabels, JSON.stringify([namespace, serviceAccount ?? null, cfg.clusterName, obj.metadata.labels ?? null]), () =>
    podIdentityLabels({
      namespace,
      podLabels: labelsOf(obj.metadata.labels),
      serviceAccount,
      namespaceLabels: nsLabels.get(namespace),
      clusterName: cfg.clusterName,
    }),
  );
  const key = podKey(namespace, obj.metadata.name);
  const prev = pods.get(key);
  const nodeName = str(spec?.['nodeName']) ?? prev?.nodeName;
  pods.set(key, {
    namespace,
    name: obj.metadata.name,
    labels,
    fromPod: true,
    addresses: prev === undefined ? addresses.slice() : merged(prev.addresses, addresses),
    ...(nodeName === undefined ? {} : { nodeName }),
    obj,
  });
}

const podIPFields = ['status.podIPs[0].ip', 'status.podIPs[1].ip'];

/**
 * addPod of a PodRecord (the Kubernetes source's pods): the same steps on the record's fields, with no
 * spec, status or metadata object built. Its address list is the record's own when every address is
 * canonical and distinct (nearly always), shared on into the PodInfo (finishPod).
 */
function addPodRecord(ctx: PodContext, r: PodRecord): void {
  const { c, pods, nsLabels, cfg } = ctx;
  const namespace = r.namespace ?? 'default';
  // Host-network pods have the host's identity: they are the host (reference §4.2).
  if ((r.shape & podShape.hostNetworkTrue) !== 0 || r.phase === 'Succeeded' || r.phase === 'Failed') {
    ctx.skipped.add(podKey(namespace, r.name));
    return;
  }
  // r.ips are status.podIPs, or [status.podIP] when the pod has no podIPs (addPod reads podIP only then).
  const fromList = (r.shape & podShape.podIPs) !== 0;
  const ips = r.ips;
  let addresses: string[] | undefined;
  for (let i = 0; i < ips.length; i++) {
    const text = ips[i] as string;
    const field = fromList ? (podIPFields[i] ?? `status.podIPs[${i}].ip`) : 'status.podIP';
    // c.address keeps a canonical IPv4 text as it is; checked here first so that no description is built.
    const ip = canonicalIPv4(text) !== undefined ? text : c.address(text, r, field, describe(r));
    if (addresses === undefined && (ip !== text || ips.indexOf(text) !== i)) addresses = ips.slice(0, i);
    if (addresses !== undefined && ip !== undefined) addDistinct(addresses, ip);
  }
  // A list made here is copied to its length (pushed arrays keep spare room; the PodInfo may keep it).
  const own: readonly string[] = addresses === undefined ? ips : addresses.slice();
  const serviceAccount = r.serviceAccountName === '' ? undefined : r.serviceAccountName;
  const labels = recordLabels(nsLabels, r.labels, namespace, serviceAccount ?? '', () =>
    sharedLabels(nsLabels, JSON.stringify([namespace, serviceAccount ?? null, cfg.clusterName, r.labels ?? null]), () =>
      podIdentityLabels({
        namespace,
        podLabels: labelsOf(r.labels),
        serviceAccount,
        namespaceLabels: nsLabels.get(namespace),
        clusterName: cfg.clusterName,
      }),
    ),
  );
  const key = podKey(namespace, r.name);
  const prev = pods.get(key);
  const nodeName = (r.nodeName === '' ? undefined : r.nodeName) ?? prev?.nodeName;
  pods.set(key, {
    namespace,
    name: r.name,
    labels,
    fromPod: true,
    addresses: prev === undefined ? own : merged(prev.addresses, own),
    ...(nodeName === undefined ? {} : { nodeName }),
    obj: r,
  });
}

/** Whether the two maps hold the same keys with the same values (in any order). */
function sameEntries(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** Appends `a` unless the list has it (pods have one or two addresses: a scan is cheaper than a Set). */
function addDistinct(list: string[], a: string): void {
  if (!list.includes(a)) list.push(a);
}

/**
 * `a` then what of `b` is not in it, in order (what a Set of both would iterate): `a` itself when that
 * is nothing (lists are never changed in place), else a new array of exactly that length.
 */
function merged(a: readonly string[], b: readonly string[]): readonly string[] {
  let extra: string[] | undefined;
  for (const x of b) {
    if (a.includes(x) || extra?.includes(x) === true) continue;
    (extra ??= []).push(x);
  }
  return extra === undefined ? a : a.concat(extra);
}

// Cilium identity labels of an EndpointRecord, by its shared identity label list (kube-kinds.ts):
// endpoints of one identity get one Labels object. They depend on the list alone.
const endpointLabels = new WeakMap<readonly string[], Labels>();

/**
 * addCiliumEndpoint of an EndpointRecord: the same steps on the record's fields, with no status or
 * metadata object built, and one Labels object per identity label list.
 */
function addEndpointRecord(ctx: PodContext, r: EndpointRecord, nodeByAddress: ReadonlyMap<string, string>): void {
  const { c, pods, nsLabels, cfg } = ctx;
  const addresses = new Set<string>();
  const pairs = r.addressing ?? [];
  for (let j = 0; j < pairs.length; j++) {
    const text = pairs[j];
    if (text === undefined) continue;
    // c.address keeps a canonical IPv4 text as it is; checked here first so that no description is built.
    const ip = canonicalIPv4(text) !== undefined ? text : c.address(text, r, `status.networking.addressing[${j >> 1}].${(j & 1) === 0 ? 'ipv4' : 'ipv6'}`, describe(r));
    if (ip !== undefined) addresses.add(ip);
  }
  const namespace = r.namespace ?? 'default';
  const key = podKey(namespace, r.name);
  if (ctx.skipped.has(key)) return;
  const prev = pods.get(key);
  if (prev !== undefined) {
    // A new list, not the old one changed: it may be shared with a PodRecord.
    prev.addresses = merged(prev.addresses, [...addresses]);
    return;
  }
  const identity = r.identityLabels;
  let labels: Labels;
  if (identity !== undefined && identity.length > 0) {
    const hit = endpointLabels.get(identity);
    labels = hit ?? identityLabelsFromStrings(identity);
    if (hit === undefined) endpointLabels.set(identity, labels);
  } else {
    labels = podIdentityLabels({ namespace, podLabels: {}, namespaceLabels: nsLabels.get(namespace), clusterName: cfg.clusterName });
  }
  // status.networking.node is the hosting node's IP.
  const node = r.node;
  const nodeIP = node === undefined ? undefined : canonicalIPv4(node) !== undefined ? node : c.address(node, r, 'status.networking.node', describe(r));
  const nodeName = nodeIP === undefined ? undefined : nodeByAddress.get(nodeIP);
  pods.set(key, { namespace, name: r.name, labels, fromPod: false, addresses: [...addresses], ...(nodeName === undefined ? {} : { nodeName }), obj: r });
}

function addCiliumEndpoint(ctx: PodContext, obj: KubeObject, nodeByAddress: ReadonlyMap<string, string>): void {
  if (obj instanceof EndpointRecord) {
    addEndpointRecord(ctx, obj, nodeByAddress);
    return;
  }
  const { c, pods, nsLabels, cfg } = ctx;
  const status = rec(obj['status']);
  const networking = rec(status?.['networking']);
  const addresses = new Set<string>();
  arr(networking?.['addressing']).forEach((item, i) => {
    for (const fam of ['ipv4', 'ipv6'] as const) {
      const ip = c.address(rec(item)?.[fam], obj, `status.networking.addressing[${i}].${fam}`, describe(obj));
      if (ip !== undefined) addresses.add(ip);
    }
  });
  const namespace = namespaceOf(obj);
  const key = podKey(namespace, obj.metadata.name);
  if (ctx.skipped.has(key)) return;
  const prev = pods.get(key);
  if (prev !== undefined) {
    // A new list, not the old one changed: it may be shared with a PodRecord.
    prev.addresses = merged(prev.addresses, [...addresses]);
    return;
  }
  const identity = arr(rec(status?.['identity'])?.['labels']).filter((v): v is string => typeof v === 'string');
  // The identity labels are what Cilium computed; without them derive the namespace-based ones.
  const labels =
    identity.length > 0
      ? identityLabelsFromStrings(identity)
      : podIdentityLabels({ namespace, podLabels: {}, namespaceLabels: nsLabels.get(namespace), clusterName: cfg.clusterName });
  // status.networking.node is the hosting node's IP.
  const nodeIP = c.address(networking?.['node'], obj, 'status.networking.node', describe(obj));
  const nodeName = nodeIP === undefined ? undefined : nodeByAddress.get(nodeIP);
  pods.set(key, { namespace, name: obj.metadata.name, labels, fromPod: false, addresses: [...addresses], ...(nodeName === undefined ? {} : { nodeName }), obj });
}

function apiServerFromEndpoints(c: Collector, obj: KubeObject, out: Set<string>): void {
  arr(obj['subsets']).forEach((subset, i) => {
    arr(rec(subset)?.['addresses']).forEach((a, j) => {
      const ip = c.address(rec(a)?.['ip'], obj, `subsets[${i}].addresses[${j}].ip`, describe(obj));
      if (ip !== undefined) out.add(ip);
    });
  });
}

function apiServerFromEndpointSlice(c: Collector, obj: KubeObject, out: Set<string>): void {
  arr(obj['endpoints']).forEach((ep, i) => {
    arr(rec(ep)?.['addresses']).forEach((a, j) => {
      const ip = c.address(a, obj, `endpoints[${i}].addresses[${j}]`, describe(obj));
      if (ip !== undefined) out.add(ip);
    });
  });
}

/**
 * False (with a warning) for an object whose name, namespace or labels no API server would accept. The
 * file loader already rejects those; this catches objects from the Kubernetes source and its cache.
 */
function wellFormed(c: Collector, o: KubeObject): boolean {
  // A record (Pod, CiliumEndpoint, Node) has name, namespace and labels as fields: no metadata object built for it.
  const bad = metadataProblem(o.kind, o instanceof KubeRecord ? o : o.metadata);
  if (bad === undefined) return true;
  c.warn(o, bad.field, `${o.kind} ${o.metadata.name}: ${bad.message}; skipped`, 'inventory/bad-metadata');
  return false;
}

/** `kind: List` (kubectl get -o yaml) holds its objects in `items`. */
function flatten(objects: readonly KubeObject[]): KubeObject[] {
  const out: KubeObject[] = [];
  for (const o of objects) {
    if (o.kind === 'List' || (o.kind.endsWith('List') && Array.isArray(o['items']))) {
      for (const item of arr(o['items'])) {
        const r = rec(item);
        const md = rec(r?.['metadata']);
        if (r === undefined || typeof r['kind'] !== 'string' || md === undefined || typeof md['name'] !== 'string') continue;
        out.push({ ...(r as unknown as KubeObject), ...(o.pos === undefined ? {} : { pos: o.pos }) });
      }
    } else {
      out.push(o);
    }
  }
  return out;
}

/** Canonical, de-duplicated, sorted (IPv4 first, numerically). Input must be canonical addresses. */
function sortedAddresses(xs: Iterable<string>): string[] {
  const distinct = [...new Set(xs)];
  if (distinct.length < 2) return distinct;
  // One IPv4 and one IPv6 address (a dual-stack pod): IPv4 first, nothing to parse. Only IPv6 text has ':'.
  if (distinct.length === 2) {
    const [a = '', b = ''] = distinct;
    const a6 = a.includes(':');
    if (a6 !== b.includes(':')) return a6 ? [b, a] : [a, b];
  }
  // Each address parsed once, not once per comparison.
  const parsed = distinct.map((text) => ({ text, a: parseAddress(text) }));
  parsed.sort(({ a: pa }, { a: pb }) => (pa.family !== pb.family ? (pa.family === 'ipv4' ? -1 : 1) : pa.bits < pb.bits ? -1 : pa.bits > pb.bits ? 1 : 0));
  return parsed.map((p) => p.text);
}

/** Whether sortedAddresses(xs) would be xs (distinct canonical addresses): one address, or IPv4 then IPv6. */
function sortedAlready(xs: readonly string[]): boolean {
  if (xs.length === 1) return true;
  return xs.length === 2 && !(xs[0] as string).includes(':') && (xs[1] as string).includes(':');
}

function toNodeInfo(n: NodeAcc, labels: Labels, extra: readonly string[] = []): NodeInfo {
  return {
    name: n.name,
    labels,
    addresses: sortedAddresses([...n.addresses, ...extra]),
    healthAddresses: sortedAddresses(n.health),
    ingressAddresses: sortedAddresses(n.ingress),
    podCIDRs: mergePrefixes(n.podCIDRs).map(formatPrefix),
  };
}

/**
 * Builds the inventory as seen from node `opts.nodeName`.
 *
 * Labels of this node, lowest to highest precedence: the Node object's labels
 * (or, without a Node, the CiliumNode's), then `cfg.nodeLabels`, then
 * `opts.nodeLabels` (command line). A node without any Node/CiliumNode object
 * is built from those labels and `opts.localAddresses` alone.
 */
export function buildInventory(
  objects: readonly KubeObject[],
  cfg: NodewallConfig,
  opts: BuildInventoryOptions,
): { inventory: Inventory; problems: Problem[]; index: ObjectIndex } {
  const c = new Collector();
  const all = flatten(objects).filter((o) => wellFormed(c, o));
  const configPos: SourcePos = { file: cfg.file ?? '<config>', line: 1, col: 1 };

  const nsLabels = new Map<string, Labels>();
  for (const o of all) if (o.kind === 'Namespace') nsLabels.set(o.metadata.name, labelsOf(o.metadata.labels));

  const nodes = new Map<string, NodeAcc>();
  const pods = new Map<string, PodAcc>();
  const podCtx: PodContext = { c, pods, skipped: new Set(), nsLabels, cfg };
  const apiServer = new Set<string>();
  for (const o of all) {
    switch (o.kind) {
      case 'Node':
        addNode(c, nodes, o);
        break;
      case 'CiliumNode':
        addCiliumNode(c, nodes, o);
        break;
      case 'Pod':
        addPod(podCtx, o);
        break;
      case 'Endpoints':
        if (o.metadata.name === 'kubernetes' && namespaceOf(o) === 'default') apiServerFromEndpoints(c, o, apiServer);
        break;
      case 'EndpointSlice':
        if (namespaceOf(o) === 'default' && o.metadata.labels?.['kubernetes.io/service-name'] === 'kubernetes') {
          apiServerFromEndpointSlice(c, o, apiServer);
        }
        break;
      default:
        break;
    }
  }
  // After the Pods, so a CiliumEndpoint only adds addresses to a pod it shares a name with.
  const nodeByAddress = new Map<string, string>();
  for (const n of nodes.values()) for (const a of n.addresses) nodeByAddress.set(a, n.name);
  for (const o of all) if (o.kind === 'CiliumEndpoint') addCiliumEndpoint(podCtx, o, nodeByAddress);

  cfg.apiServerAddresses.forEach((a, i) => {
    const ip = c.address(a, configPos, `apiServerAddresses[${i}]`, 'config');
    if (ip !== undefined) apiServer.add(ip);
  });
  const local: string[] = [];
  (opts.localAddresses ?? []).forEach((a, i) => {
    const ip = c.address(a, noPos, `localAddresses[${i}]`, 'local interface address');
    if (ip !== undefined) local.push(ip);
  });

  // Self.
  const selfAcc = nodes.get(opts.nodeName);
  if (selfAcc === undefined && nodes.size > 0) {
    // Point at the config when it names the node, else at the first node object read.
    const firstNode = all.find((o) => o.kind === 'Node' || o.kind === 'CiliumNode');
    c.warn(
      cfg.nodeName !== undefined || firstNode === undefined ? configPos : firstNode,
      '',
      `node "${opts.nodeName}" not found among the ${nodes.size} Node/CiliumNode objects; using config labels only`,
      'inventory/node-not-found',
      false,
    );
  }
  const base = selfAcc ?? nodeAcc(new Map(), opts.nodeName);
  const selfLabels: Labels = { ...(base.hasNode ? base.labels : base.ciliumLabels), ...cfg.nodeLabels, ...opts.nodeLabels };
  const self = toNodeInfo(base, selfLabels, local);

  const remoteNodes = [...nodes.values()]
    .filter((n) => n.name !== opts.nodeName)
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((n) => toNodeInfo(n, (n.hasNode ? n.labels : n.ciliumLabels) ?? {}));

  // A pod address that is also a node address is the node's (host identity wins in Cilium's ipcache).
  const owners = new Map<string, string>();
  for (const n of [self, ...remoteNodes]) for (const a of n.addresses) owners.set(a, n.name);
  // Nearly always the same pairs as nodeByAddress (which the index keeps too): then that one map, not two
  // (10k node addresses: 0.46 MB).
  const nodeOwner = sameEntries(owners, nodeByAddress) ? nodeByAddress : owners;
  const podInfos: PodInfo[] = [];
  // The default sort compares UTF-16 code units, as `<` does: the keys alone, no [key, value] pair per pod.
  for (const k of [...pods.keys()].sort()) {
    const info = finishPod(c, pods.get(k) as PodAcc, nodeOwner);
    if (info !== undefined) podInfos.push(info);
  }

  const podCIDRs: Prefix[] = [];
  cfg.clusterPodCIDRs.forEach((s, i) => {
    const p = c.prefix(s, configPos, `clusterPodCIDRs[${i}]`, 'config');
    if (p !== undefined) podCIDRs.push(p);
  });
  for (const n of [self, ...remoteNodes]) for (const s of n.podCIDRs) podCIDRs.push(parsePrefix(s));

  const byObject = c.byObject;
  const objectProblems = new Set<Problem>();
  for (const list of byObject.values()) for (const p of list) objectProblems.add(p);
  return {
    inventory: {
      clusterName: cfg.clusterName,
      self,
      remoteNodes,
      pods: podInfos,
      apiServerAddresses: sortedAddresses(apiServer),
      clusterPodCIDRs: mergePrefixes(podCIDRs).map(formatPrefix),
    },
    problems: c.problems,
    index: {
      source: opts.source ?? { objects },
      podList: PodList.of(podInfos),
      byKey: ObjectsByKey.of(all),
      selfName: opts.nodeName,
      selfExtra: { labels: opts.nodeLabels ?? {}, local },
      nsLabels,
      nodeOwner,
      nodeByAddress,
      cfg,
      problemsByKey: byObject,
      otherProblems: c.problems.filter((p) => !objectProblems.has(p)),
    },
  };
}

function finishPod(c: Collector, p: PodAcc, nodeOwner: ReadonlyMap<string, string>): PodInfo | undefined {
  const kept: string[] = [];
  for (const a of p.addresses) {
    const owner = nodeOwner.get(a);
    if (owner === undefined) {
      kept.push(a);
    } else {
      c.warn(
        p.obj,
        '',
        `${describe(p.obj)}: address ${a} is also an address of node ${owner}; treated as the node's (a host-network pod without hostNetwork: true?)`,
        'inventory/pod-ip-is-node-ip',
      );
    }
  }
  if (kept.length === 0) return undefined; // no IP yet, or only node IPs: nothing a selector can match
  // Every address kept and already in sortedAddresses' order: the pod's own list (a PodRecord's, shared).
  const addresses = kept.length === p.addresses.length && sortedAlready(kept) ? p.addresses : sortedAddresses(kept);
  return {
    namespace: p.namespace,
    name: p.name,
    labels: p.labels,
    addresses,
    ...(p.nodeName === undefined ? {} : { nodeName: p.nodeName }),
  };
}

/**
 * What an update of Pod, CiliumEndpoint, Node and CiliumNode objects alone needs from the last full
 * build: the objects it read, the pod and node objects by objectKey, the namespace labels and node
 * addresses pods are resolved against, and its warnings split by objectKey.
 */
export interface ObjectIndex {
  /**
   * The objects of that build, as given: a holder whose list may be made only when read (the Kubernetes
   * source joins its per-namespace lists lazily; a pod event that the feed explains never needs it).
   */
  readonly source: ObjectSource;
  /** The inventory's pods, in chunks shared from update to update (pod-list.ts). */
  readonly podList: PodList;
  /** The objects of each key: one object alone (the usual case, kept without an array), or a list. */
  readonly byKey: ObjectsByKey;
  readonly selfName: string;
  /** What buildInventory adds to this node's own objects: command-line labels, local interface addresses. */
  readonly selfExtra: { readonly labels: Labels; readonly local: readonly string[] };
  readonly nsLabels: ReadonlyMap<string, Labels>;
  readonly nodeOwner: ReadonlyMap<string, string>;
  readonly nodeByAddress: ReadonlyMap<string, string>;
  readonly cfg: NodewallConfig;
  readonly problemsByKey: Map<string, readonly Problem[]>;
  readonly otherProblems: readonly Problem[];
}

/** Where a list of objects can be read (a LoadResult is one). */
export interface ObjectSource {
  readonly objects: readonly KubeObject[];
}

const isPodObject = (o: KubeObject): boolean => o.kind === 'Pod' || o.kind === 'CiliumEndpoint';
const isNodeObject = (o: KubeObject): boolean => o.kind === 'Node' || o.kind === 'CiliumNode';
/** "pod:NS/NAME" for Pods and CiliumEndpoints, "node:NAME" for Nodes and CiliumNodes. */
export function objectKey(o: KubeObject): string {
  return isNodeObject(o) ? ['node:', objectName(o)].join('') : ['pod:', namespaceOf(o), '/', objectName(o)].join('');
}

type Held = KubeObject | readonly KubeObject[];

const firstOf = (h: Held): KubeObject => (Array.isArray(h) ? ((h as readonly KubeObject[])[0] as KubeObject) : (h as KubeObject));

export class ObjectsByKeyError extends Error {
  override readonly name = 'ObjectsByKeyError';
}

/**
 * Pod and node objects by objectKey. Pods are held in a NameIndex (name-index.ts): sorted chunks keyed
 * by the objects' own namespace and name, so the index keeps neither a "pod:NS/NAME" string nor a hash
 * table entry per pod (100k pods: 4.6 MB of nested Maps before). Keys are objectKey texts; a namespace or
 * name with a '/' in it (invalid in Kubernetes) still finds its entry, as keys compare as joined texts.
 */
export class ObjectsByKey {
  private readonly pods = new NameIndex<Held>(
    (h) => namespaceOf(firstOf(h)),
    (h) => objectName(firstOf(h)),
  );
  private readonly nodes = new Map<string, Held>();

  /** The index of `objects` (pod and node objects; others are left out), as add() of each in order makes it. */
  static of(objects: readonly KubeObject[]): ObjectsByKey {
    const out = new ObjectsByKey();
    const pods: KubeObject[] = [];
    for (const o of objects) {
      if (isNodeObject(o)) out.add(o);
      else if (isPodObject(o)) pods.push(o);
    }
    // One load instead of an insert per pod; objects of one key become one list in the order given.
    // A watch cache lists in key order: one pass groups them; else they are sorted first (stable).
    out.pods.load(groupByKey(pods) ?? groupByKey(sortByKey(pods, namespaceOf, (o) => objectName(o))) ?? [], true);
    return out;
  }

  /** Indexes `o` under objectKey(o): the first object alone, more as a list. */
  add(o: KubeObject): void {
    if (isNodeObject(o)) {
      const have = this.nodes.get(objectName(o));
      if (have === undefined) this.nodes.set(objectName(o), o);
      else if (Array.isArray(have)) (have as KubeObject[]).push(o);
      else this.nodes.set(objectName(o), [have as KubeObject, o]);
      return;
    }
    const have = this.pods.get(namespaceOf(o), objectName(o));
    // A lone object is kept as it is: one array fewer per pod (100k pods: some 5 MB).
    if (have === undefined) this.pods.set(o);
    else if (Array.isArray(have)) (have as KubeObject[]).push(o);
    else this.pods.set([have as KubeObject, o]);
  }

  get(k: string): Held | undefined {
    const at = split(k);
    if (at === undefined) return undefined;
    return at.namespace === undefined ? this.nodes.get(at.name) : this.pods.get(at.namespace, at.name);
  }

  /** Holds `value` (objects whose objectKey is `k`, at least one) under `k`. */
  set(k: string, value: Held): void {
    const at = split(k);
    if (at === undefined) return;
    const first = Array.isArray(value) ? (value as readonly KubeObject[])[0] : (value as KubeObject);
    if (first === undefined || objectKey(first) !== k) throw new ObjectsByKeyError(`objects set under ${k} are not of that key`);
    if (at.namespace === undefined) this.nodes.set(objectName(first), value);
    else this.pods.set(value);
  }

  delete(k: string): void {
    const at = split(k);
    if (at === undefined) return;
    if (at.namespace === undefined) this.nodes.delete(at.name);
    else this.pods.delete(at.namespace, at.name);
  }
}

/**
 * Objects in key order as one entry per key (an object alone, or the list of a key's objects in
 * order), keys strictly ascending; undefined when `objects` are not in key order.
 */
function groupByKey(objects: readonly KubeObject[]): Held[] | undefined {
  const out: Held[] = [];
  let prev: KubeObject | undefined;
  for (const o of objects) {
    const c = prev === undefined ? -1 : compareJoined(namespaceOf(prev), objectName(prev), namespaceOf(o), objectName(o));
    if (c > 0) return undefined;
    if (c < 0) out.push(o);
    else {
      const last = out[out.length - 1] as Held;
      if (Array.isArray(last)) (last as KubeObject[]).push(o);
      else out[out.length - 1] = [last as KubeObject, o];
    }
    prev = o;
  }
  return out;
}

/** objectKey `k` as namespace and name ("node:NAME": no namespace), split at the first '/' after "pod:". */
function split(k: string): { namespace: string | undefined; name: string } | undefined {
  if (k.startsWith('node:')) return { namespace: undefined, name: k.slice('node:'.length) };
  if (!k.startsWith('pod:')) return undefined;
  const slash = k.indexOf('/', 'pod:'.length);
  if (slash < 0) return undefined;
  return { namespace: k.slice('pod:'.length, slash), name: k.slice(slash + 1) };
}

/** A copy of the objects of key `k` in the index (empty when none). */
function objectsOf(idx: ObjectIndex, k: string): KubeObject[] {
  const have = idx.byKey.get(k);
  return have === undefined ? [] : Array.isArray(have) ? [...(have as readonly KubeObject[])] : [have as KubeObject];
}

/** The objects replaced between two lists, by identity; undefined when more than `limit` changed. */
export function objectChanges(prev: readonly KubeObject[], next: readonly KubeObject[], limit: number): { gone: KubeObject[]; come: KubeObject[] } | undefined {
  const walked = walkChanges(prev, next, limit);
  if (walked !== undefined) return walked;
  const gone: KubeObject[] = [];
  const come: KubeObject[] = [];
  const before = new Set(prev);
  const after = new Set(next);
  for (const o of prev) if (!after.has(o) && gone.push(o) > limit) return undefined;
  for (const o of next) if (!before.has(o) && come.push(o) > limit) return undefined;
  return { gone, come };
}

/** How far walkChanges looks ahead for the object that brings both lists back in step. */
const lookahead = 8;

/**
 * objectChanges for the common case, without a Set of 100k objects per pass: the same list with a
 * few objects replaced in place, inserted or removed (a watch cache appends and splices). Both lists
 * are walked in step; a mismatch is an insertion when prev's object turns up a little further in
 * next, a removal when next's object turns up a little further in prev, else a replacement. An
 * object that only moved lands in both candidate lists and is dropped from them, so the result is
 * exactly "in prev, not in next" and "in next, not in prev" (the objects of one list are distinct).
 * Undefined when the candidates exceed the limit (the caller then compares by Set).
 */
function walkChanges(prev: readonly KubeObject[], next: readonly KubeObject[], limit: number): { gone: KubeObject[]; come: KubeObject[] } | undefined {
  const gone: KubeObject[] = [];
  const come: KubeObject[] = [];
  let i = 0;
  let j = 0;
  while (i < prev.length && j < next.length) {
    if (gone.length > limit * 2 || come.length > limit * 2) return undefined;
    const a = prev[i] as KubeObject;
    const b = next[j] as KubeObject;
    if (a === b) {
      i++;
      j++;
      continue;
    }
    let step = 0;
    for (let d = 1; d <= lookahead && i + d < prev.length; d++) {
      if (prev[i + d] === b) {
        step = d;
        break;
      }
    }
    if (step > 0) {
      for (let d = 0; d < step; d++) gone.push(prev[i + d] as KubeObject);
      i += step;
      continue;
    }
    for (let d = 1; d <= lookahead && j + d < next.length; d++) {
      if (next[j + d] === a) {
        step = d;
        break;
      }
    }
    if (step > 0) {
      for (let d = 0; d < step; d++) come.push(next[j + d] as KubeObject);
      j += step;
      continue;
    }
    gone.push(a);
    come.push(b);
    i++;
    j++;
  }
  for (; i < prev.length; i++) gone.push(prev[i] as KubeObject);
  for (; j < next.length; j++) come.push(next[j] as KubeObject);
  if (gone.length > limit * 2 || come.length > limit * 2) return undefined;
  // Moved objects are in both lists: they did not change.
  const comeSet = new Set(come);
  const moved = new Set(gone.filter((o) => comeSet.has(o)));
  const g = moved.size === 0 ? gone : gone.filter((o) => !moved.has(o));
  const c = moved.size === 0 ? come : come.filter((o) => !moved.has(o));
  if (g.length > limit || c.length > limit) return undefined;
  return { gone: g, come: c };
}

/**
 * `prev` with another node, other remote nodes and the pods of `podList`; its `pods` made from the list
 * when first read (no 100k-entry array per pod event; nobody on the incremental path reads it).
 */
function inventoryWith(prev: Inventory, self: NodeInfo, remoteNodes: readonly NodeInfo[], podList: PodList): Inventory {
  // Every field by name, in buildInventory's order: a spread of `prev` would read its `pods` (made at once).
  const next: { [K in keyof Inventory]-?: Inventory[K] } = {
    clusterName: prev.clusterName,
    self,
    remoteNodes,
    get pods() {
      return podList.toArray();
    },
    apiServerAddresses: prev.apiServerAddresses,
    clusterPodCIDRs: prev.clusterPodCIDRs,
  };
  return next;
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The inventory after `gone` objects were replaced by `come`, equal to buildInventory of the new
 * objects, without reading every object again; for changes of Pods and CiliumEndpoints, and of
 * other nodes' labels (Node/CiliumNode objects whose addresses and pod CIDRs stay). Undefined for
 * anything else (other kinds, this node, a node added, removed or readdressed, a pod that is more
 * than one object): the caller builds in full. `prev.index` is updated in place: only the result's
 * index may be used afterwards. `pods`/`nodes`: the new PodInfo of every changed pod key (undefined:
 * no pod any more) and NodeInfo of every changed node.
 */
export function updateChangedObjects(
  prev: { readonly inventory: Inventory; readonly index: ObjectIndex },
  source: ObjectSource,
  change: { readonly gone: readonly KubeObject[]; readonly come: readonly KubeObject[] },
): { inventory: Inventory; problems: Problem[]; index: ObjectIndex; pods: Map<string, PodInfo | undefined>; nodes: NodeInfo[]; self?: NodeInfo } | undefined {
  const idx = prev.index;
  if (![...change.gone, ...change.come].every((o) => isPodObject(o) || isNodeObject(o))) return undefined;
  // The objects of each changed key after the change; checked before anything is changed.
  const after = new Map<string, KubeObject[]>();
  for (const o of change.gone) {
    const k = objectKey(o);
    after.set(k, (after.get(k) ?? objectsOf(idx, k)).filter((x) => x !== o));
  }
  for (const o of change.come) {
    const k = objectKey(o);
    const list = after.get(k) ?? objectsOf(idx, k);
    list.push(o);
    after.set(k, list);
  }
  const podInfos = new Map<string, PodInfo | undefined>();
  const nodeInfos = new Map<string, NodeInfo>();
  const problems = new Map<string, Problem[]>();
  // Built only for a node change: a pod event must not index every node.
  let remoteByName: Map<string, NodeInfo> | undefined;
  let self: NodeInfo | undefined;
  for (const [k, all] of after) {
    const before = objectsOf(idx, k);
    const c = new Collector();
    // As buildInventory reads them: an object with metadata no API server accepts is skipped, with its
    // warning (the index holds only the others).
    const list = all.filter((o) => wellFormed(c, o));
    after.set(k, list);
    if (k.startsWith('pod:')) {
      // One object per pod before and after: its PodInfo depends on nothing else that changed.
      if (list.length > 1 || before.length > 1) return undefined;
      const ctx: PodContext = { c, pods: new Map(), skipped: new Set(), nsLabels: idx.nsLabels, cfg: idx.cfg };
      const o = list[0];
      if (o?.kind === 'Pod') addPod(ctx, o);
      else if (o?.kind === 'CiliumEndpoint') addCiliumEndpoint(ctx, o, idx.nodeByAddress);
      const acc = ctx.pods.get(k.slice('pod:'.length));
      podInfos.set(k.slice('pod:'.length), acc === undefined ? undefined : finishPod(c, acc, idx.nodeOwner));
    } else {
      // A node's labels (another node's, or this node's own, with what buildInventory adds to them): at
      // most one Node and one CiliumNode, addresses and pod CIDRs unchanged.
      const name = k.slice('node:'.length);
      const isSelf = name === idx.selfName;
      remoteByName ??= new Map(prev.inventory.remoteNodes.map((n) => [n.name, n]));
      const old = isSelf ? prev.inventory.self : remoteByName.get(name);
      if (old === undefined || list.length === 0 || (isSelf && before.length === 0)) return undefined;
      if (list.filter((o) => o.kind === 'Node').length > 1 || list.filter((o) => o.kind === 'CiliumNode').length > 1) return undefined;
      const accs = new Map<string, NodeAcc>();
      for (const o of list) (o.kind === 'Node' ? addNode : addCiliumNode)(c, accs, o);
      const acc = accs.get(name);
      if (acc === undefined) return undefined;
      const own = (acc.hasNode ? acc.labels : acc.ciliumLabels) ?? {};
      const info = isSelf ? toNodeInfo(acc, { ...own, ...idx.cfg.nodeLabels, ...idx.selfExtra.labels }, idx.selfExtra.local) : toNodeInfo(acc, own);
      const same =
        sameList(info.addresses, old.addresses) &&
        sameList(info.healthAddresses, old.healthAddresses) &&
        sameList(info.ingressAddresses, old.ingressAddresses) &&
        sameList(info.podCIDRs, old.podCIDRs);
      if (!same) return undefined;
      if (isSelf) self = info;
      else nodeInfos.set(name, info);
    }
    problems.set(k, c.problems);
  }
  // Checked: now the index is brought up to date.
  for (const [k, list] of after) {
    if (list.length === 0) idx.byKey.delete(k);
    else idx.byKey.set(k, list.length === 1 ? (list[0] as KubeObject) : list);
    const found = problems.get(k) ?? [];
    if (found.length === 0) idx.problemsByKey.delete(k);
    else idx.problemsByKey.set(k, found);
  }
  const podList = idx.podList.with(podInfos);
  const remoteNodes = nodeInfos.size === 0 ? prev.inventory.remoteNodes : prev.inventory.remoteNodes.map((n) => nodeInfos.get(n.name) ?? n);
  const all = [...idx.otherProblems];
  for (const list of idx.problemsByKey.values()) for (const p of list) all.push(p);
  return {
    inventory: podInfos.size === 0 && nodeInfos.size === 0 && self === undefined ? prev.inventory : inventoryWith(prev.inventory, self ?? prev.inventory.self, remoteNodes, podList),
    problems: all,
    index: { ...idx, source, podList },
    pods: podInfos,
    nodes: [...nodeInfos.values()],
    ...(self === undefined ? {} : { self }),
  };
}
