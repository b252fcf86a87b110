// Cilium's identity-label filter (reference §3): which Kubernetes labels
// become part of an identity, and so are visible to selectors.

import type { LabelFilter, Labels } from '../inventory/types.js';

/** A label as Cilium sees it: source ("k8s", "reserved", "node"), key and value. */
export interface SourcedLabel {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

// Keys kept although an exclusion below would drop them (Cilium's default
// include list; an include wins over a shorter exclude).
const included: readonly string[] = ['io.kubernetes.pod.namespace', 'io.cilium.k8s.namespace.labels', 'app.kubernetes.io'];

// Cilium's default exclusions, anchored at the start of the key (reference §3).
const excluded: readonly RegExp[] = [
  /^io\.kubernetes/,
  /^kubernetes\.io/,
  /^k8s\.io/,
  /^topology\.kubernetes\.io/,
  /^.*beta\.kubernetes\.io/,
  /^statefulset\.kubernetes\.io\/pod-name/,
  /^apps\.kubernetes\.io\/pod-index/,
  /^batch\.kubernetes\.io\//,
  /^pod-template-/,
  /^controller-revision-hash/,
  /^controller-uid/,
  /^annotation/,
  /^etcd_node/,
];

/** The exclusion that drops `key` under `filter`, or undefined when the key is kept. */
export function droppingPattern(key: string, filter: LabelFilter): string | undefined {
  if (filter === 'none') return undefined;
  if (included.some((p) => key.startsWith(p))) return undefined;
  const hit = excluded.find((re) => re.test(key));
  return hit === undefined ? undefined : hit.source.replace(/^\^/, '').replace(/\\/g, '').replace(/^\.\*/, '*');
}

// Label keys repeat across thousands of pods and nodes: remember each decision.
const keepCache = new Map<string, boolean>();

/** True when the identity-label filter keeps `key`. */
export function keepsLabel(key: string, filter: LabelFilter): boolean {
  if (filter === 'none') return true;
  let keep = keepCache.get(key);
  if (keep === undefined) {
    keep = droppingPattern(key, filter) === undefined;
    if (keepCache.size < 100_000) keepCache.set(key, keep);
  }
  return keep;
}

/** Labels that survive the filter, with the given source. */
export function filterLabels(labels: Labels, filter: LabelFilter, source: string): SourcedLabel[] {
  return Object.entries(labels)
    .filter(([k]) => keepsLabel(k, filter))
    .map(([key, value]) => ({ source, key, value }));
}

export const reservedHostLabel: SourcedLabel = { source: 'reserved', key: 'host', value: '' };

/** The host endpoint's identity labels: `reserved:host` plus the filtered node labels as `k8s:`. */
export function hostEndpointLabels(nodeLabels: Labels, filter: LabelFilter): SourcedLabel[] {
  return [reservedHostLabel, ...filterLabels(nodeLabels, filter, 'k8s')];
}
