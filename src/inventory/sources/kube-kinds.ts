// What the Kubernetes source reads, and the few fields of each object the
// inventory and the policy loader use. Everything else (managedFields, most
// annotations, status, unused spec) is dropped as objects arrive, so a node
// watching 100k pods keeps ~100k small objects instead of full API objects.
// The kept shape is the API's own (same field names), so the inventory
// builder reads an object from the API exactly like one from a manifest file.
// Pods, the one kind kept by the 100k, are flat PodRecords (pod-record.ts) that
// read as that shape and serialise to it.

import { stageAnnotation } from '../../api/stage-annotation.js';
import type { KubeObject } from '../../api/types.js';
import { EndpointRecord, endpointShape, NodeRecord, nodeShape, PodRecord, podShape } from './pod-record.js';

export type KindId = 'ccnp' | 'node' | 'namespace' | 'apiserver-endpointslice' | 'ciliumnode' | 'ciliumendpoint' | 'pod';

export interface KindSpec {
  readonly id: KindId;
  readonly kind: string;
  readonly apiVersion: string;
  /** Collection path for list and watch. */
  readonly path: string;
  readonly labelSelector?: string;
  /** A CRD that may not be installed: 404 means "absent", not an error. */
  readonly optional: boolean;
  /** Short name used in pos.file ("k8s:<name>/<object>"). */
  readonly posName: string;
}

export const kindSpecs: Readonly<Record<KindId, KindSpec>> = {
  ccnp: {
    id: 'ccnp',
    kind: 'CiliumClusterwideNetworkPolicy',
    apiVersion: 'cilium.io/v2',
    path: '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies',
    optional: true,
    posName: 'ccnp',
  },
  node: { id: 'node', kind: 'Node', apiVersion: 'v1', path: '/api/v1/nodes', optional: false, posName: 'node' },
  namespace: { id: 'namespace', kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces', optional: false, posName: 'namespace' },
  'apiserver-endpointslice': {
    id: 'apiserver-endpointslice',
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    path: '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices',
    labelSelector: 'kubernetes.io/service-name=kubernetes',
    optional: false,
    posName: 'endpointslice',
  },
  ciliumnode: {
    id: 'ciliumnode',
    kind: 'CiliumNode',
    apiVersion: 'cilium.io/v2',
    path: '/apis/cilium.io/v2/ciliumnodes',
    optional: true,
    posName: 'ciliumnode',
  },
  ciliumendpoint: {
    id: 'ciliumendpoint',
    kind: 'CiliumEndpoint',
    apiVersion: 'cilium.io/v2',
    path: '/apis/cilium.io/v2/ciliumendpoints',
    optional: true,
    posName: 'ciliumendpoint',
  },
  pod: { id: 'pod', kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods', optional: false, posName: 'pod' },
};

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

// Values many objects repeat (namespace names, label keys and values, node names, phases): one
// string each instead of one per object (at 100k pods, some 10 MB of duplicate strings). Bounded:
// when full it starts over, which only loses sharing, never changes a value.
const internLimit = 100_000;
const internMaxLength = 256;
let interned = new Map<string, string>();

/** The one kept copy of a string equal to `s` (long strings are returned as they are). */
export function intern(s: string): string {
  if (s.length > internMaxLength) return s;
  const hit = interned.get(s);
  if (hit !== undefined) return hit;
  if (interned.size >= internLimit) interned = new Map();
  interned.set(s, s);
  return s;
}

function istr(v: unknown): string | undefined {
  return typeof v === 'string' ? intern(v) : undefined;
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}

function stringMap(v: unknown): Record<string, string> | undefined {
  const o = obj(v);
  if (o === undefined) return undefined;
  // fromEntries defines own properties: `out[k] = x` would drop a key named __proto__.
  return Object.fromEntries(Object.entries(o).flatMap(([k, v]) => (typeof v === 'string' ? [[intern(k), intern(v)]] : [])));
}

// Label maps many objects repeat (every pod of a ReplicaSet has the same labels): one frozen map
// each, shared. Bounded like intern(): when full it starts over; a long label set is not shared.
const labelSetLimit = 50_000;
const labelSetMaxKeyLength = 4096;
let labelSets = new Map<string, Readonly<Record<string, string>>>();

/** stringMap(v), the one shared frozen copy of an equal map when there is one (same keys, values and order). */
export function sharedStringMap(v: unknown): Record<string, string> | undefined {
  const o = obj(v);
  if (o === undefined) return undefined;
  // The key from the object as given (its string entries in order, keys and values alternating, as
  // JSON): a map shared already is found without making the copy first (100k pods at the first list).
  const flat: string[] = [];
  for (const k of Object.keys(o)) {
    const x = o[k];
    if (typeof x === 'string') flat.push(k, x);
  }
  const key = JSON.stringify(flat);
  if (key.length > labelSetMaxKeyLength) return stringMap(o);
  const hit = labelSets.get(key);
  if (hit !== undefined) return hit as Record<string, string>;
  const m = stringMap(o) as Record<string, string>;
  if (labelSets.size >= labelSetLimit) labelSets = new Map();
  labelSets.set(key, Object.freeze(m));
  return m;
}

/** Copies the listed keys that are present (and not null). */
function pick(o: Json | undefined, keys: readonly string[]): Json | undefined {
  if (o === undefined) return undefined;
  const out: Json = {};
  let any = false;
  for (const k of keys) {
    const v = o[k];
    if (v !== undefined && v !== null) {
      out[k] = v;
      any = true;
    }
  }
  return any ? out : undefined;
}

function compact(o: Json): Json {
  for (const [k, v] of Object.entries(o)) if (v === undefined) delete o[k];
  return o;
}

// Annotations the inventory may read: Cilium's per-node router (cilium_host) and health IPs.
const keptAnnotationPrefixes = ['network.cilium.io/', 'io.cilium.network.'];

function slimMetadata(m: unknown, keepAnnotations = false): KubeObject['metadata'] {
  const md = obj(m) ?? {};
  const out: Json = { name: str(md['name']) ?? '' };
  const ns = istr(md['namespace']);
  if (ns !== undefined) out['namespace'] = ns;
  const labels = sharedStringMap(md['labels']);
  if (labels !== undefined) out['labels'] = labels;
  const rv = str(md['resourceVersion']);
  if (rv !== undefined) out['resourceVersion'] = rv;
  if (keepAnnotations) {
    const ann = stringMap(md['annotations']);
    if (ann !== undefined) {
      const kept = Object.fromEntries(Object.entries(ann).filter(([k]) => keptAnnotationPrefixes.some((p) => k.startsWith(p))));
      if (Object.keys(kept).length > 0) out['annotations'] = kept;
    }
  }
  return out as KubeObject['metadata'];
}

export function posFor(spec: KindSpec, metadata: { name: string; namespace?: string }): KubeObject['pos'] {
  // One flat string (join), not a chain of concatenation nodes: it is kept with every object.
  const file = metadata.namespace === undefined ? ['k8s:', spec.posName, '/', metadata.name].join('') : ['k8s:', spec.posName, '/', metadata.namespace, '/', metadata.name].join('');
  return { file, line: 1, col: 1 };
}

function base(spec: KindSpec, o: Json, keepAnnotations = false): Json {
  const metadata = slimMetadata(o['metadata'], keepAnnotations);
  return { apiVersion: spec.apiVersion, kind: spec.kind, metadata, pos: posFor(spec, metadata) };
}

/**
 * The slim Node object: metadata (with Cilium's annotations), spec.{podCIDR,podCIDRs}, status.addresses.
 * The reference NodeRecord is tested against (its toJSON() is this object).
 */
export function slimNode(spec: KindSpec, o: Json): Json {
  const out = base(spec, o, true);
  const s = pick(obj(o['spec']), ['podCIDR', 'podCIDRs']);
  if (s !== undefined) out['spec'] = s;
  const addresses = Array.isArray(obj(o['status'])?.['addresses'])
    ? (obj(o['status'])?.['addresses'] as unknown[]).map((a) => compact({ type: str(obj(a)?.['type']), address: str(obj(a)?.['address']) }))
    : undefined;
  if (addresses !== undefined) out['status'] = { addresses };
  return out;
}

/** The NodeRecord of a raw Node: exactly what slimNode keeps, in one flat object. */
export function nodeRecordOf(o: Json): NodeRecord {
  const s = obj(o['spec']);
  let shape = 0;
  const podCIDR = s?.['podCIDR'] ?? undefined;
  const podCIDRs = s?.['podCIDRs'] ?? undefined;
  if (podCIDR !== undefined || podCIDRs !== undefined) shape |= nodeShape.spec;
  const list = obj(o['status'])?.['addresses'];
  let addresses: (string | undefined)[] | undefined;
  if (Array.isArray(list)) {
    shape |= nodeShape.status;
    addresses = new Array<string | undefined>(list.length * 2);
    for (let i = 0; i < list.length; i++) {
      const a = obj(list[i]);
      // The type is one of a few words: one string for every node.
      addresses[2 * i] = istr(a?.['type']);
      addresses[2 * i + 1] = str(a?.['address']);
    }
  }
  const md = slimMetadata(o['metadata'], true);
  return new NodeRecord({
    name: md.name,
    namespace: md.namespace,
    labels: md.labels,
    resourceVersion: md['resourceVersion'] as string | undefined,
    annotations: md['annotations'] as Readonly<Record<string, string>> | undefined,
    podCIDR,
    podCIDRs,
    addresses,
    shape,
  });
}

function stripNode(_spec: KindSpec, o: Json): NodeRecord {
  return nodeRecordOf(o);
}

function stripEndpointSlice(spec: KindSpec, o: Json): Json {
  const out = base(spec, o);
  const at = str(o['addressType']);
  if (at !== undefined) out['addressType'] = at;
  if (Array.isArray(o['endpoints'])) {
    out['endpoints'] = (o['endpoints'] as unknown[]).map((e) => {
      const ep: Json = { addresses: strings(obj(e)?.['addresses']) ?? [] };
      const cond = pick(obj(obj(e)?.['conditions']), ['ready', 'serving', 'terminating']);
      if (cond !== undefined) ep['conditions'] = cond;
      return ep;
    });
  }
  return out;
}

function stripCiliumNode(spec: KindSpec, o: Json): Json {
  const out = base(spec, o);
  const s = obj(o['spec']);
  if (s !== undefined) {
    const kept: Json = {};
    if (Array.isArray(s['addresses'])) {
      kept['addresses'] = (s['addresses'] as unknown[]).map((a) => compact({ type: str(obj(a)?.['type']), ip: str(obj(a)?.['ip']) }));
    }
    const health = pick(obj(s['health']), ['ipv4', 'ipv6']);
    if (health !== undefined) kept['health'] = health;
    const ingress = pick(obj(s['ingress']), ['ipv4', 'ipv6']);
    if (ingress !== undefined) kept['ingress'] = ingress;
    const podCIDRs = strings(obj(s['ipam'])?.['podCIDRs']);
    if (podCIDRs !== undefined) kept['ipam'] = { podCIDRs };
    out['spec'] = kept;
  }
  return out;
}

/**
 * The slim Pod object: metadata, spec.{nodeName,hostNetwork,serviceAccountName}, status.{podIP,podIPs,phase}.
 * Kept as it is for pods that are no regular PodRecord (podRecordOf), and the reference the records are
 * tested against (their toJSON() is this object).
 */
export function slimPod(spec: KindSpec, o: Json): Json {
  const out = base(spec, o);
  const s = pick(obj(o['spec']), ['nodeName', 'hostNetwork', 'serviceAccountName']);
  if (s !== undefined) {
    for (const k of ['nodeName', 'serviceAccountName']) if (typeof s[k] === 'string') s[k] = intern(s[k]);
    out['spec'] = s;
  }
  const st = obj(o['status']);
  if (st !== undefined) {
    const kept: Json = {};
    const podIP = str(st['podIP']);
    if (podIP !== undefined) kept['podIP'] = podIP;
    if (Array.isArray(st['podIPs'])) {
      // podIPs[0] is podIP again: one string for both.
      kept['podIPs'] = (st['podIPs'] as unknown[]).map((p) => {
        const ip = str(obj(p)?.['ip']);
        return compact({ ip: ip === podIP ? podIP : ip });
      });
    }
    const phase = istr(st['phase']);
    if (phase !== undefined) kept['phase'] = phase;
    out['status'] = kept;
  }
  return out;
}

/**
 * The PodRecord of a raw Pod, or undefined when its kept fields do not fit one (pod-record.ts: a
 * non-string nodeName or serviceAccountName, a non-boolean hostNetwork, a podIPs entry without a
 * string ip, a podIP that is not podIPs[0]). Reads exactly what slimPod reads.
 */
export function podRecordOf(o: Json): PodRecord | undefined {
  const s = obj(o['spec']);
  let shape = 0;
  let nodeName: string | undefined;
  let serviceAccountName: string | undefined;
  if (s !== undefined) {
    const nn = s['nodeName'];
    const hn = s['hostNetwork'];
    const sa = s['serviceAccountName'];
    if (nn !== undefined && nn !== null) {
      if (typeof nn !== 'string') return undefined;
      nodeName = intern(nn);
      shape |= podShape.spec;
    }
    if (hn !== undefined && hn !== null) {
      if (typeof hn !== 'boolean') return undefined;
      shape |= podShape.spec | (hn ? podShape.hostNetworkTrue : podShape.hostNetworkFalse);
    }
    if (sa !== undefined && sa !== null) {
      if (typeof sa !== 'string') return undefined;
      serviceAccountName = intern(sa);
      shape |= podShape.spec;
    }
  }
  const st = obj(o['status']);
  let ips: string[] = [];
  let phase: string | undefined;
  if (st !== undefined) {
    shape |= podShape.status;
    const podIP = str(st['podIP']);
    if (podIP !== undefined) shape |= podShape.podIP;
    const list = st['podIPs'];
    if (Array.isArray(list)) {
      shape |= podShape.podIPs;
      for (const p of list as unknown[]) if (str(obj(p)?.['ip']) === undefined) return undefined;
      // map, not push: an array of exactly its length (a pushed one reserves room for 16 more).
      ips = (list as unknown[]).map((p) => {
        const ip = (p as Json)['ip'] as string;
        return ip === podIP ? podIP : ip;
      });
      if (podIP !== undefined && ips[0] !== podIP) return undefined;
    } else if (podIP !== undefined) {
      ips = [podIP];
    }
    phase = istr(st['phase']);
  }
  // The metadata last: a pod that is no record must not have interned its labels twice.
  const md = obj(o['metadata']) ?? {};
  return new PodRecord({
    name: str(md['name']) ?? '',
    namespace: istr(md['namespace']),
    labels: sharedStringMap(md['labels']),
    resourceVersion: str(md['resourceVersion']),
    nodeName,
    serviceAccountName,
    ips,
    phase,
    shape,
  });
}

function stripPod(spec: KindSpec, o: Json): Json | PodRecord {
  return podRecordOf(o) ?? slimPod(spec, o);
}

// Identity label lists many endpoints repeat (every endpoint of one identity): one frozen list each,
// shared. Bounded like labelSets; a long list is not shared.
let labelLists = new Map<string, readonly string[]>();

/** `items` (interned strings), the one shared frozen copy of an equal list when there is one. */
function sharedStringList(items: string[]): readonly string[] {
  const key = JSON.stringify(items);
  if (key.length > labelSetMaxKeyLength) return items.map(intern);
  const hit = labelLists.get(key);
  if (hit !== undefined) return hit;
  if (labelLists.size >= labelSetLimit) labelLists = new Map();
  const list = Object.freeze(items.map(intern));
  labelLists.set(key, list);
  return list;
}

/**
 * The EndpointRecord of a raw CiliumEndpoint, or undefined when its identity id is neither a number
 * nor null (nor absent): then the slim object is kept. Reads exactly what slimCiliumEndpoint reads.
 */
export function endpointRecordOf(o: Json): EndpointRecord | undefined {
  const st = obj(o['status']);
  let shape = 0;
  let identityId: number | null | undefined;
  let identityLabels: readonly string[] | undefined;
  let node: string | undefined;
  let addressing: (string | undefined)[] | undefined;
  if (st !== undefined) {
    shape |= endpointShape.status;
    const identity = obj(st['identity']);
    if (identity !== undefined) {
      const id = identity['id'];
      if (id !== undefined && id !== null && typeof id !== 'number') return undefined;
      shape |= endpointShape.identity;
      identityId = id;
      const labels = strings(identity['labels']);
      if (labels !== undefined) identityLabels = sharedStringList(labels);
    }
    const net = obj(st['networking']);
    if (net !== undefined) {
      shape |= endpointShape.networking;
      node = istr(net['node']);
      const list = net['addressing'];
      if (Array.isArray(list)) {
        addressing = new Array<string | undefined>(list.length * 2);
        for (let i = 0; i < list.length; i++) {
          const a = obj(list[i]);
          addressing[2 * i] = str(a?.['ipv4']);
          addressing[2 * i + 1] = str(a?.['ipv6']);
        }
      }
    }
  }
  const md = obj(o['metadata']) ?? {};
  return new EndpointRecord({
    name: str(md['name']) ?? '',
    namespace: istr(md['namespace']),
    labels: sharedStringMap(md['labels']),
    resourceVersion: str(md['resourceVersion']),
    identityId,
    identityLabels,
    node,
    addressing,
    shape,
  });
}

function stripCiliumEndpoint(spec: KindSpec, o: Json): Json | EndpointRecord {
  return endpointRecordOf(o) ?? slimCiliumEndpoint(spec, o);
}

/**
 * The slim CiliumEndpoint object: metadata, status.identity.{id,labels}, status.networking.{node,addressing}.
 * Kept as it is for endpoints that are no EndpointRecord, and the reference the records are tested against.
 */
export function slimCiliumEndpoint(spec: KindSpec, o: Json): Json {
  const out = base(spec, o);
  const st = obj(o['status']);
  if (st !== undefined) {
    const kept: Json = {};
    const identity = obj(st['identity']);
    if (identity !== undefined) kept['identity'] = compact({ id: identity['id'], labels: strings(identity['labels'])?.map(intern) });
    const net = obj(st['networking']);
    if (net !== undefined) {
      kept['networking'] = compact({
        node: istr(net['node']),
        addressing: Array.isArray(net['addressing'])
          ? (net['addressing'] as unknown[]).map((a) => compact({ ipv4: str(obj(a)?.['ipv4']), ipv6: str(obj(a)?.['ipv6']) }))
          : undefined,
      });
    }
    out['status'] = kept;
  }
  return out;
}

/** A CCNP keeps its whole spec/specs (the policy loader decodes and validates them), and no
 *  `pos`: the loader rejects unknown top-level fields and gives the document its own. */
function stripPolicy(spec: KindSpec, o: Json): Json {
  const metadata: Json = { ...slimMetadata(o['metadata']) };
  // nodewall's own stage annotation is kept as written (any type): the decoder checks its value.
  const ann = obj(obj(o['metadata'])?.['annotations']);
  if (ann !== undefined && Object.hasOwn(ann, stageAnnotation)) metadata['annotations'] = { [stageAnnotation]: ann[stageAnnotation] };
  const out: Json = { apiVersion: spec.apiVersion, kind: spec.kind, metadata };
  if (o['spec'] !== undefined) out['spec'] = o['spec'];
  if (o['specs'] !== undefined) out['specs'] = o['specs'];
  return out;
}

function stripNamespace(spec: KindSpec, o: Json): Json {
  return base(spec, o);
}

const strippers: Readonly<Record<KindId, (spec: KindSpec, o: Json) => Json | PodRecord | EndpointRecord | NodeRecord>> = {
  ccnp: stripPolicy,
  node: stripNode,
  namespace: stripNamespace,
  'apiserver-endpointslice': stripEndpointSlice,
  ciliumnode: stripCiliumNode,
  ciliumendpoint: stripCiliumEndpoint,
  pod: stripPod,
};

/**
 * The slim copy of an API object (raw JSON, or a model object of the client
 * library: both use the API's field names). Keeps metadata.resourceVersion,
 * which the watch machinery compares.
 */
export function stripObject(id: KindId, o: unknown): KubeObject {
  // Model objects of the client library turn timestamps into Dates; a JSON round
  // trip is not needed because only plain fields are copied.
  return strippers[id](kindSpecs[id], obj(o) ?? {}) as unknown as KubeObject;
}

const peerLists = ['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const;

/**
 * Whether a CCNP needs pod addresses: an endpoint selector peer
 * (fromEndpoints/toEndpoints) or the `cluster` entity. An approximation of
 * "a policy selecting this node needs them" that needs no inventory.
 */
export function policyNeedsPods(ccnp: KubeObject): boolean {
  const rules: unknown[] = [];
  if (ccnp['spec'] !== undefined) rules.push(ccnp['spec']);
  if (Array.isArray(ccnp['specs'])) rules.push(...(ccnp['specs'] as unknown[]));
  for (const r of rules) {
    const rule = obj(r);
    if (rule === undefined) continue;
    for (const list of peerLists) {
      const entries = rule[list];
      if (!Array.isArray(entries)) continue;
      for (const e of entries) {
        const peer = obj(e);
        if (peer === undefined) continue;
        if (peer['fromEndpoints'] !== undefined || peer['toEndpoints'] !== undefined) return true;
        const entities = [...(strings(peer['fromEntities']) ?? []), ...(strings(peer['toEntities']) ?? [])];
        if (entities.includes('cluster')) return true;
      }
    }
  }
  return false;
}
