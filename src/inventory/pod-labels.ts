// Cilium identity labels of a pod, as endpoint selectors in a CCNP see them.
// Keys carry no `k8s:` source prefix (selectors treat a bare key as `any:`).
// No identity-label filter is applied here: see PodInfo.labels.

import type { Labels } from './types.js';

export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const POLICY_CLUSTER_LABEL = 'io.cilium.k8s.policy.cluster';
export const POLICY_SERVICE_ACCOUNT_LABEL = 'io.cilium.k8s.policy.serviceaccount';
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
/** Set on every Namespace by the API server since Kubernetes 1.21. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
const NAMESPACE_NAME_KEY = NAMESPACE_LABELS_PREFIX + NAMESPACE_NAME_LABEL;

export interface PodLabelInput {
  readonly namespace: string;
  readonly podLabels: Labels;
  /** spec.serviceAccountName; the API server fills in "default" when a manifest leaves it out. */
  readonly serviceAccount?: string | undefined;
  /** Labels of the pod's Namespace object, when one is known. */
  readonly namespaceLabels?: Labels | undefined;
  readonly clusterName: string;
}

/**
 * Pod labels + the labels Cilium derives: namespace, cluster, service account,
 * and `io.cilium.k8s.namespace.labels.<k>` per namespace label (including
 * `kubernetes.io/metadata.name`, which the API server always sets). Derived
 * labels win over pod labels of the same key, as in Cilium.
 */
export function podIdentityLabels(input: PodLabelInput): Labels {
  const out = new Map<string, string>(Object.entries(input.podLabels));
  for (const [k, v] of Object.entries(input.namespaceLabels ?? {})) out.set(NAMESPACE_LABELS_PREFIX + k, v);
  out.set(NAMESPACE_NAME_KEY, input.namespace);
  out.set(POD_NAMESPACE_LABEL, input.namespace);
  out.set(POLICY_CLUSTER_LABEL, input.clusterName);
  out.set(POLICY_SERVICE_ACCOUNT_LABEL, input.serviceAccount === undefined || input.serviceAccount === '' ? 'default' : input.serviceAccount);
  return sortLabels(out);
}

/**
 * Labels of a CiliumEndpoint's status.identity.labels ("k8s:app=web",
 * "reserved:init"): the `k8s:` prefix is dropped, other sources keep theirs
 * ("reserved:init" becomes the key "reserved:init" with value "").
 */
export function identityLabelsFromStrings(items: readonly string[]): Labels {
  const out = new Map<string, string>();
  for (const item of items) {
    const eq = item.indexOf('=');
    const rawKey = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    const key = rawKey.startsWith('k8s:') ? rawKey.slice(4) : rawKey;
    if (key !== '') out.set(key, value);
  }
  return sortLabels(out);
}

function sortLabels(l: ReadonlyMap<string, string>): Labels {
  // fromEntries defines own properties, so no key (not even __proto__) is lost.
  return Object.fromEntries([...l.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
