// A Pod as the Kubernetes source keeps it: one flat object of a handful of fields instead of the
// nested slim API object (issue 9, memory). At 100k pods the slim objects were about 540 bytes and
// 9 heap objects each ({apiVersion, kind, metadata, pos: {file}, spec, status: {podIPs: [{ip}]}}
// plus a 45-byte pos.file string); a record is one object of 6 fields (72 bytes; namespace, service
// account, phase and shape in a group shared with alike records) and the array of its addresses,
// which the inventory's PodInfo shares.
//
// It still reads as a KubeObject: apiVersion, kind, metadata, spec, status and pos are getters on
// the prototype that build today's slim shape when read (messages, the cache, tests), and toJSON()
// gives exactly the object stripObject made before, so k8s-cache.json is byte for byte the same.
// Code on the hot path (the store, the inventory's pod conversion) reads the fields directly.
//
// Only regular pods become records (kube-kinds.ts stripPod decides): string nodeName and
// serviceAccountName, boolean hostNetwork, every podIPs entry with a string ip, and status.podIP,
// when set, equal to podIPs[0]. Anything else stays the plain slim object, read by the generic path.
//
// Where Cilium runs, the source reads pod addresses from CiliumEndpoints instead: EndpointRecord
// (below) is the same for them, its identity label list shared between endpoints of one identity.

import type { KubeObject, SourcePos } from '../../api/types.js';

/** Bits of PodRecord.shape: which of the optional slim fields are present. */
export const podShape = {
  /** `spec` present (at least one of nodeName, hostNetwork, serviceAccountName). */
  spec: 1,
  hostNetworkTrue: 2,
  hostNetworkFalse: 4,
  /** `status` present (an object in the API object, even an empty one). */
  status: 8,
  /** status.podIP present: it is ips[0]. */
  podIP: 16,
  /** status.podIPs present: one entry per element of ips. */
  podIPs: 32,
} as const;

const noAddresses: readonly string[] = [];

/** Fields of a PodRecord, as kube-kinds.ts stripPod reads them from the API object. */
export interface PodRecordFields {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly resourceVersion: string | undefined;
  readonly nodeName: string | undefined;
  readonly serviceAccountName: string | undefined;
  /** The pod's addresses in the API's order: status.podIPs, or [status.podIP] without podIPs. */
  readonly ips: readonly string[];
  readonly phase: string | undefined;
  readonly shape: number;
}

const smallDecimal = /^[1-9][0-9]{0,8}$/;

/**
 * What many records hold alike (issue 9, memory): the namespace and, for pods, service account, phase
 * and shape. One frozen object per distinct combination, shared by the records that have it (at 100k
 * pods a handful of groups; 24 bytes less per pod record than three fields of its own). The label map
 * stays in the record: a StatefulSet's pods each have their own, and it is shared already where alike.
 */
export interface RecordGroup {
  readonly namespace: string | undefined;
  readonly serviceAccountName: string | undefined;
  readonly phase: string | undefined;
  readonly shape: number;
}

/**
 * How many groups the cache holds before it starts over (a cluster with a service account per pod: the
 * cache stays bounded; records keep their groups, only sharing with new records is lost).
 */
const groupCacheLimit = 10_000;

// phase -> shape -> namespace -> service account -> group: the one key of many values (the service
// account) innermost, so that a pod with a service account of its own adds one entry, not three maps.
type GroupCache = Map<string | undefined, Map<number, Map<string | undefined, Map<string | undefined, RecordGroup>>>>;
let groupCache: GroupCache = new Map();
let groupCount = 0;

/** The shared group of these values (a new one when the cache has none). */
export function recordGroup(namespace: string | undefined, serviceAccountName: string | undefined, phase: string | undefined, shape: number): RecordGroup {
  let byShape = groupCache.get(phase);
  if (byShape === undefined) groupCache.set(phase, (byShape = new Map()));
  let byNamespace = byShape.get(shape);
  if (byNamespace === undefined) byShape.set(shape, (byNamespace = new Map()));
  let bySa = byNamespace.get(namespace);
  if (bySa === undefined) byNamespace.set(namespace, (bySa = new Map()));
  let g = bySa.get(serviceAccountName);
  if (g === undefined) {
    g = Object.freeze({ namespace, serviceAccountName, phase, shape });
    if (groupCount >= groupCacheLimit) {
      groupCache = new Map();
      groupCount = 0;
      return g;
    }
    bySa.set(serviceAccountName, g);
    groupCount++;
  }
  return g;
}

/** How many groups the cache holds now (tests: it stays bounded). */
export function recordGroupCacheSize(): number {
  return groupCount;
}

/**
 * What every compact record of the Kubernetes source holds of its metadata (name, namespace, the
 * shared label map, resourceVersion), and builds the slim metadata and pos from when asked.
 */
export abstract class KubeRecord implements KubeObject {
  readonly [k: string]: unknown;
  readonly name: string;
  /** Namespace and the kind's other low-variety fields, shared between records (recordGroup). */
  protected readonly group: RecordGroup;
  readonly labels: Readonly<Record<string, string>> | undefined;
  /** metadata.resourceVersion: a small number when it is one's decimal text (no string per object), else the text. */
  readonly #rv: string | number | undefined;

  /** `group`: the record's shared group; by default one of its namespace and shape alone (no pod fields). */
  constructor(
    f: { readonly name: string; readonly namespace: string | undefined; readonly labels: Readonly<Record<string, string>> | undefined; readonly resourceVersion: string | undefined; readonly shape: number },
    group: RecordGroup = recordGroup(f.namespace, undefined, undefined, f.shape),
  ) {
    // Every field assigned in the same order: one hidden class per kind, fields in the object itself.
    this.name = f.name;
    this.group = group;
    this.labels = f.labels;
    const rv = f.resourceVersion;
    // At most 9 digits, no leading zero: a small integer whose String() is this text again.
    this.#rv = rv !== undefined && smallDecimal.test(rv) ? Number(rv) : rv;
  }

  get namespace(): string | undefined {
    return this.group.namespace;
  }

  /** The kind's shape bits (podShape, endpointShape, nodeShape): which optional slim fields are present. */
  get shape(): number {
    return this.group.shape;
  }

  get resourceVersion(): string | undefined {
    const rv = this.#rv;
    return typeof rv === 'number' ? String(rv) : rv;
  }

  abstract get apiVersion(): string;
  abstract get kind(): string;
  /** kube-kinds.ts KindSpec.posName of the kind. */
  protected abstract get posName(): string;

  get metadata(): KubeObject['metadata'] {
    const m: { name: string; namespace?: string; labels?: Readonly<Record<string, string>>; resourceVersion?: string } = { name: this.name };
    if (this.namespace !== undefined) m.namespace = this.namespace;
    if (this.labels !== undefined) m.labels = this.labels;
    if (this.resourceVersion !== undefined) m.resourceVersion = this.resourceVersion;
    return m;
  }

  /** "k8s:KIND/NS/NAME", as kube-kinds.ts posFor names every object of the Kubernetes source. */
  get pos(): SourcePos {
    const file = this.namespace === undefined ? ['k8s:', this.posName, '/', this.name].join('') : ['k8s:', this.posName, '/', this.namespace, '/', this.name].join('');
    return { file, line: 1, col: 1 };
  }

  /** The slim object stripObject made before records (same keys, same order): what k8s-cache.json holds. */
  toJSON(): Record<string, unknown> {
    return this.slimObject();
  }

  /** The slim object from the getters: apiVersion, kind, metadata, pos, then spec and status where the kind has them. */
  protected slimObject(): Record<string, unknown> {
    const out: Record<string, unknown> = { apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, pos: this.pos };
    const spec = this['spec'];
    if (spec !== undefined) out['spec'] = spec;
    const status = this['status'];
    if (status !== undefined) out['status'] = status;
    return out;
  }
}

export class PodRecord extends KubeRecord {
  readonly nodeName: string | undefined;
  readonly ips: readonly string[];

  constructor(f: PodRecordFields) {
    super(f, recordGroup(f.namespace, f.serviceAccountName, f.phase, f.shape));
    this.nodeName = f.nodeName;
    this.ips = f.ips.length === 0 ? noAddresses : f.ips;
  }

  get serviceAccountName(): string | undefined {
    return this.group.serviceAccountName;
  }

  get phase(): string | undefined {
    return this.group.phase;
  }

  get apiVersion(): string {
    return 'v1';
  }

  get kind(): string {
    return 'Pod';
  }

  protected get posName(): string {
    return 'pod';
  }

  /** status.spec.hostNetwork when it is set (always a boolean in a record). */
  get hostNetwork(): boolean | undefined {
    return (this.shape & podShape.hostNetworkTrue) !== 0 ? true : (this.shape & podShape.hostNetworkFalse) !== 0 ? false : undefined;
  }

  get spec(): Record<string, unknown> | undefined {
    if ((this.shape & podShape.spec) === 0) return undefined;
    const s: Record<string, unknown> = {};
    if (this.nodeName !== undefined) s['nodeName'] = this.nodeName;
    const hn = this.hostNetwork;
    if (hn !== undefined) s['hostNetwork'] = hn;
    if (this.serviceAccountName !== undefined) s['serviceAccountName'] = this.serviceAccountName;
    return s;
  }

  get status(): Record<string, unknown> | undefined {
    if ((this.shape & podShape.status) === 0) return undefined;
    const s: Record<string, unknown> = {};
    if ((this.shape & podShape.podIP) !== 0) s['podIP'] = this.ips[0];
    if ((this.shape & podShape.podIPs) !== 0) s['podIPs'] = this.ips.map((ip) => ({ ip }));
    if (this.phase !== undefined) s['phase'] = this.phase;
    return s;
  }

  override toJSON(): Record<string, unknown> {
    const shape = this.shape;
    const usual = podShape.spec | podShape.status | podShape.podIPs;
    // The usual pod (namespace, labels, version; spec.nodeName and maybe serviceAccountName; status
    // podIPs, maybe podIP, and phase) in literals: the cache writes 100k of these, and building them
    // through the getters costs about twice the serialisation of plain objects.
    if (
      (shape | podShape.podIP) === (usual | podShape.podIP) && (shape & usual) === usual &&
      this.namespace !== undefined && this.labels !== undefined && this.nodeName !== undefined && this.phase !== undefined
    ) {
      const resourceVersion = this.resourceVersion;
      if (resourceVersion === undefined) return this.slimObject();
      const podIPs = this.ips.map((ip) => ({ ip }));
      return {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: this.name, namespace: this.namespace, labels: this.labels, resourceVersion },
        // Concatenation: the string only lives until it is serialised.
        pos: { file: 'k8s:pod/' + this.namespace + '/' + this.name, line: 1, col: 1 },
        spec: this.serviceAccountName === undefined ? { nodeName: this.nodeName } : { nodeName: this.nodeName, serviceAccountName: this.serviceAccountName },
        status: (shape & podShape.podIP) === 0 ? { podIPs, phase: this.phase } : { podIP: this.ips[0], podIPs, phase: this.phase },
      };
    }
    return this.slimObject();
  }
}

/** metadata.name of any object, without building a record's metadata. */
export function objectName(o: KubeObject): string {
  return o instanceof KubeRecord ? o.name : o.metadata.name;
}

/** metadata.namespace of any object, without building a record's metadata. */
export function objectNamespace(o: KubeObject): string | undefined {
  return o instanceof KubeRecord ? o.namespace : o.metadata.namespace;
}

/** metadata.resourceVersion when it is a string, else ''. */
export function objectResourceVersion(o: unknown): string {
  if (o instanceof KubeRecord) return o.resourceVersion ?? '';
  const md = (o as { metadata?: { resourceVersion?: unknown } } | null)?.metadata;
  return typeof md?.resourceVersion === 'string' ? md.resourceVersion : '';
}

function sameLabels(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  // Key order counts, as in the slim objects' JSON.
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i] as string;
    if (k !== kb[i] || a[k] !== b[k]) return false;
  }
  return true;
}

/** Two records equal apart from resourceVersion: what sameContent says of their slim objects. */
export function samePodContent(a: PodRecord, b: PodRecord): boolean {
  if (a.name !== b.name || a.namespace !== b.namespace || a.nodeName !== b.nodeName || a.serviceAccountName !== b.serviceAccountName) return false;
  if (a.phase !== b.phase || a.shape !== b.shape) return false;
  return sameList(a.ips, b.ips) && sameLabels(a.labels, b.labels);
}

/** Bits of EndpointRecord.shape: which of the optional slim fields are present. */
export const endpointShape = {
  /** `status` present (an object in the API object, even an empty one). */
  status: 1,
  /** status.identity present. */
  identity: 2,
  /** status.networking present. */
  networking: 4,
} as const;

/** Fields of an EndpointRecord, as kube-kinds.ts stripCiliumEndpoint reads them from the API object. */
export interface EndpointRecordFields {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly resourceVersion: string | undefined;
  /** status.identity.id: a number, null, or absent. */
  readonly identityId: number | null | undefined;
  /** status.identity.labels (its strings), shared between endpoints of one identity; absent when not a list. */
  readonly identityLabels: readonly string[] | undefined;
  /** status.networking.node. */
  readonly node: string | undefined;
  /** status.networking.addressing as pairs: [ipv4, ipv6, ipv4, ipv6, ...] (undefined where absent). */
  readonly addressing: readonly (string | undefined)[] | undefined;
  readonly shape: number;
}

/**
 * A CiliumEndpoint (where Cilium runs, the source's pods come from these instead of Pods) as one
 * flat object: the same idea and the same contract as PodRecord. Only endpoints whose identity id is
 * a number (or null, or absent) become records; anything else stays the plain slim object.
 */
export class EndpointRecord extends KubeRecord {
  readonly identityId: number | null | undefined;
  readonly identityLabels: readonly string[] | undefined;
  readonly node: string | undefined;
  readonly addressing: readonly (string | undefined)[] | undefined;

  constructor(f: EndpointRecordFields) {
    super(f);
    this.identityId = f.identityId;
    this.identityLabels = f.identityLabels;
    this.node = f.node;
    this.addressing = f.addressing;
  }

  get apiVersion(): string {
    return 'cilium.io/v2';
  }

  get kind(): string {
    return 'CiliumEndpoint';
  }

  protected get posName(): string {
    return 'ciliumendpoint';
  }

  get status(): Record<string, unknown> | undefined {
    if ((this.shape & endpointShape.status) === 0) return undefined;
    const s: Record<string, unknown> = {};
    if ((this.shape & endpointShape.identity) !== 0) {
      const identity: Record<string, unknown> = {};
      if (this.identityId !== undefined) identity['id'] = this.identityId;
      // A copy: the list is shared with other endpoints.
      if (this.identityLabels !== undefined) identity['labels'] = this.identityLabels.slice();
      s['identity'] = identity;
    }
    if ((this.shape & endpointShape.networking) !== 0) {
      const net: Record<string, unknown> = {};
      if (this.node !== undefined) net['node'] = this.node;
      if (this.addressing !== undefined) net['addressing'] = pairObjects(this.addressing, 'ipv4', 'ipv6');
      s['networking'] = net;
    }
    return s;
  }
}

/** A list kept as pairs [a, b, a, b, ...] as the API's list of objects {[ka]: a, [kb]: b} (undefined values left out). */
function pairObjects(pairs: readonly (string | undefined)[], ka: string, kb: string): Record<string, string>[] {
  const list: Record<string, string>[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const o: Record<string, string> = {};
    const a = pairs[i];
    const b = pairs[i + 1];
    if (a !== undefined) o[ka] = a;
    if (b !== undefined) o[kb] = b;
    list.push(o);
  }
  return list;
}

function sameList(a: readonly (string | undefined)[] | undefined, b: readonly (string | undefined)[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Two endpoint records equal apart from resourceVersion: what sameContent says of their slim objects. */
export function sameEndpointContent(a: EndpointRecord, b: EndpointRecord): boolean {
  if (a.name !== b.name || a.namespace !== b.namespace || a.node !== b.node || a.shape !== b.shape) return false;
  // As JSON compares them (an id is a number or null).
  if (a.identityId !== b.identityId && JSON.stringify(a.identityId) !== JSON.stringify(b.identityId)) return false;
  return sameList(a.identityLabels, b.identityLabels) && sameList(a.addressing, b.addressing) && sameLabels(a.labels, b.labels);
}

/** Bits of NodeRecord's shape: which of the optional slim fields are present. */
export const nodeShape = {
  /** `spec` present (podCIDR or podCIDRs set). */
  spec: 1,
  /** `status` present: status.addresses was a list. */
  status: 2,
} as const;

/** Fields of a NodeRecord, as kube-kinds.ts nodeRecordOf reads them from the API object. */
export interface NodeRecordFields {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly resourceVersion: string | undefined;
  /** The kept annotations (Cilium's), when there are any. */
  readonly annotations: Readonly<Record<string, string>> | undefined;
  /** spec.podCIDR and spec.podCIDRs as the API gave them (any value but null; undefined when absent). */
  readonly podCIDR: unknown;
  readonly podCIDRs: unknown;
  /** status.addresses as pairs: [type, address, type, address, ...] (undefined where not a string). */
  readonly addresses: readonly (string | undefined)[] | undefined;
  readonly shape: number;
}

/**
 * A Node as one flat object (issue 9, memory): the same idea and contract as PodRecord. The slim Node
 * was some 520 bytes in 10 heap objects (metadata, pos and its file string, spec, status, the address
 * list and an object per address); a record is one object of 8 fields and its address pairs. Every Node
 * becomes one (kube-kinds.ts nodeRecordOf): what the slim object keeps of spec is kept as given.
 */
export class NodeRecord extends KubeRecord {
  readonly annotations: Readonly<Record<string, string>> | undefined;
  readonly podCIDR: unknown;
  readonly podCIDRs: unknown;
  readonly addresses: readonly (string | undefined)[] | undefined;

  constructor(f: NodeRecordFields) {
    super(f);
    this.annotations = f.annotations;
    this.podCIDR = f.podCIDR;
    this.podCIDRs = f.podCIDRs;
    this.addresses = f.addresses;
  }

  get apiVersion(): string {
    return 'v1';
  }

  get kind(): string {
    return 'Node';
  }

  protected get posName(): string {
    return 'node';
  }

  override get metadata(): KubeObject['metadata'] {
    const m = super.metadata as { annotations?: Readonly<Record<string, string>> };
    if (this.annotations !== undefined) m.annotations = this.annotations;
    return m as KubeObject['metadata'];
  }

  get spec(): Record<string, unknown> | undefined {
    if ((this.shape & nodeShape.spec) === 0) return undefined;
    const s: Record<string, unknown> = {};
    if (this.podCIDR !== undefined) s['podCIDR'] = this.podCIDR;
    if (this.podCIDRs !== undefined) s['podCIDRs'] = this.podCIDRs;
    return s;
  }

  get status(): Record<string, unknown> | undefined {
    if ((this.shape & nodeShape.status) === 0) return undefined;
    return { addresses: pairObjects(this.addresses ?? [], 'type', 'address') };
  }
}
