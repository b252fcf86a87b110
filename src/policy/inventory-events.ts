// The events that take an IncrementalModel from one state to the next, found by
// comparing two inventories and two lists of valid policies. For callers that get
// whole snapshots (the file source, a resync); O(pods + nodes + policies) of cheap
// comparisons, no selector matching, no address merging.

import type { PolicyDocument } from '../api/types.js';
import type { Inventory, Labels, NodeInfo, PodInfo } from '../inventory/types.js';
import type { ModelEvent } from './incremental-model.js';

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameLabels(a: Labels, b: Labels): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.hasOwn(b, k) || a[k] !== b[k]) return false;
  return true;
}

export function sameNode(a: NodeInfo, b: NodeInfo): boolean {
  return (
    a === b ||
    (a.name === b.name &&
      sameLabels(a.labels, b.labels) &&
      sameStrings(a.addresses, b.addresses) &&
      sameStrings(a.healthAddresses, b.healthAddresses) &&
      sameStrings(a.ingressAddresses, b.ingressAddresses) &&
      sameStrings(a.podCIDRs, b.podCIDRs))
  );
}

function samePod(a: PodInfo, b: PodInfo): boolean {
  return a === b || (a.nodeName === b.nodeName && sameLabels(a.labels, b.labels) && sameStrings(a.addresses, b.addresses));
}

const podKey = (p: PodInfo): string => `${p.namespace}/${p.name}`;

/**
 * Events from `prev` to `next`; undefined when the model must be built anew (this node's addresses, or
 * the cluster name, changed).
 */
export function inventoryEvents(prev: Inventory, next: Inventory): ModelEvent[] | undefined {
  if (prev.clusterName !== next.clusterName) return undefined;
  const events: ModelEvent[] = [];
  if (!sameNode(prev.self, next.self)) {
    // Only its labels: the model reselects policies instead of being built anew.
    if (!sameNode({ ...prev.self, labels: next.self.labels }, next.self)) return undefined;
    events.push({ kind: 'self-labels', labels: next.self.labels });
  }
  const nodes = new Map(prev.remoteNodes.map((n) => [n.name, n]));
  for (const n of next.remoteNodes) {
    const old = nodes.get(n.name);
    nodes.delete(n.name);
    if (old === undefined || !sameNode(old, n)) events.push({ kind: 'node', node: n });
  }
  for (const name of nodes.keys()) events.push({ kind: 'node-deleted', name });
  if (!sameStrings(prev.apiServerAddresses, next.apiServerAddresses)) events.push({ kind: 'api-server', addresses: next.apiServerAddresses });
  if (!sameStrings(prev.clusterPodCIDRs, next.clusterPodCIDRs)) events.push({ kind: 'cluster-pod-cidrs', cidrs: next.clusterPodCIDRs });
  const pods = new Map(prev.pods.map((p) => [podKey(p), p]));
  for (const p of next.pods) {
    const key = podKey(p);
    const old = pods.get(key);
    pods.delete(key);
    if (old === undefined || !samePod(old, p)) events.push({ kind: 'pod', pod: p });
  }
  for (const p of pods.values()) events.push({ kind: 'pod-deleted', namespace: p.namespace, name: p.name });
  return events;
}

/** Events from one list of valid policies to the next (a policy is changed when its content hash is). */
export function policyEvents(prev: readonly PolicyDocument[], next: readonly PolicyDocument[]): ModelEvent[] {
  const events: ModelEvent[] = [];
  const old = new Map(prev.map((p) => [p.name, p]));
  for (const p of next) {
    const o = old.get(p.name);
    old.delete(p.name);
    if (o === undefined || o.hash !== p.hash) events.push({ kind: 'policy', policy: p });
  }
  for (const name of old.keys()) events.push({ kind: 'policy-deleted', name });
  return events;
}
