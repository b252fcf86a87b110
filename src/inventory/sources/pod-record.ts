// A Pod as the Kubernetes source keeps it: one flat object of a handful of fields instead of the
// nested slim API object (issue 9, memory). At 100k pods the slim objects were about 540 bytes and
// 9 heap objects each ({apiVersion, kind, metadata, pos: {file}, spec, status: {podIPs: [{ip}]}}
// plus a 45-byte pos.file string); a record is one object of 9 fields (~96 bytes) and the array
// of its addresses, which the inventory's PodInfo shares.
//
// It still reads as a KubeObject: apiVersion, kind, metadata, spec, status and pos are getters on
// the prototype that build today's slim shape when read (messages, the cache, tests), and toJSON()
// gives exactly the object stripObject made before, so k8s-cache.json is byte for byte the same.
// Code on the hot path (the store, the inventory's pod conversion) reads the fields directly.
//
// Only regular pods become records (kube-kinds.ts stripPod decides): string nodeName and
// serviceAccountName, boolean hostNetwork, every podIPs entry with a string ip, and status.podIP,
// when set, equal to podIPs[0]. Anything else stays the plain slim object, read by the generic path.

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

export class PodRecord implements KubeObject {
  readonly [k: string]: unknown;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly resourceVersion: string | undefined;
  readonly nodeName: string | undefined;
  readonly serviceAccountName: string | undefined;
  readonly ips: readonly string[];
  readonly phase: string | undefined;
  readonly shape: number;

  constructor(f: PodRecordFields) {
    // Every field assigned in the same order: one hidden class, fields in the object itself.
    this.name = f.name;
    this.namespace = f.namespace;
    this.labels = f.labels;
    this.resourceVersion = f.resourceVersion;
    this.nodeName = f.nodeName;
    this.serviceAccountName = f.serviceAccountName;
    this.ips = f.ips.length === 0 ? noAddresses : f.ips;
    this.phase = f.phase;
    this.shape = f.shape;
  }

  get apiVersion(): string {
    return 'v1';
  }

  get kind(): string {
    return 'Pod';
  }

  /** status.spec.hostNetwork when it is set (always a boolean in a record). */
  get hostNetwork(): boolean | undefined {
    return (this.shape & podShape.hostNetworkTrue) !== 0 ? true : (this.shape & podShape.hostNetworkFalse) !== 0 ? false : undefined;
  }

  get metadata(): KubeObject['metadata'] {
    const m: { name: string; namespace?: string; labels?: Readonly<Record<string, string>>; resourceVersion?: string } = { name: this.name };
    if (this.namespace !== undefined) m.namespace = this.namespace;
    if (this.labels !== undefined) m.labels = this.labels;
    if (this.resourceVersion !== undefined) m.resourceVersion = this.resourceVersion;
    return m;
  }

  /** "k8s:pod/NS/NAME", as kube-kinds.ts posFor names every object of the Kubernetes source. */
  get pos(): SourcePos {
    const file = this.namespace === undefined ? ['k8s:pod/', this.name].join('') : ['k8s:pod/', this.namespace, '/', this.name].join('');
    return { file, line: 1, col: 1 };
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

  /** The slim object stripObject made before records (same keys, same order): what k8s-cache.json holds. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, pos: this.pos };
    const spec = this.spec;
    if (spec !== undefined) out['spec'] = spec;
    const status = this.status;
    if (status !== undefined) out['status'] = status;
    return out;
  }
}

/** metadata.name of any object, without building a record's metadata. */
export function objectName(o: KubeObject): string {
  return o instanceof PodRecord ? o.name : o.metadata.name;
}

/** metadata.namespace of any object, without building a record's metadata. */
export function objectNamespace(o: KubeObject): string | undefined {
  return o instanceof PodRecord ? o.namespace : o.metadata.namespace;
}

/** metadata.resourceVersion when it is a string, else ''. */
export function objectResourceVersion(o: unknown): string {
  if (o instanceof PodRecord) return o.resourceVersion ?? '';
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
  if (a.phase !== b.phase || a.shape !== b.shape || a.ips.length !== b.ips.length) return false;
  for (let i = 0; i < a.ips.length; i++) if (a.ips[i] !== b.ips[i]) return false;
  return sameLabels(a.labels, b.labels);
}
