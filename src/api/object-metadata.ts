// The API server's checks on the metadata of the cluster objects nodewall
// reads (Node, Pod, Namespace, ...): names, namespaces, label keys and values.
// An object that fails them could never exist in a cluster; the file loader
// rejects it and the inventory skips one that reaches it another way (a
// Kubernetes API that is not a real API server, a hand-edited cache).

import { childPath } from './field-path.js';
import { dns1123LabelProblems, dns1123SubdomainProblems, invalidValue, labelKeyProblems, labelValueProblems } from './k8s-names.js';

export interface MetadataProblem {
  /** Field path in the object, e.g. "metadata.labels.zone". */
  readonly field: string;
  readonly message: string;
}

/**
 * The first problem of `metadata` (name, namespace, labels as strings), or
 * undefined. Namespaces are named like a namespace field (DNS-1123 label),
 * everything else like a DNS-1123 subdomain.
 */
export function metadataProblem(kind: string, metadata: { readonly name: string; readonly namespace?: unknown; readonly labels?: unknown }): MetadataProblem | undefined {
  const nameProblems = kind === 'Namespace' ? dns1123LabelProblems(metadata.name) : dns1123SubdomainProblems(metadata.name);
  if (nameProblems.length > 0) return { field: 'metadata.name', message: invalidValue(metadata.name, nameProblems) };
  const ns = metadata.namespace;
  if (typeof ns === 'string' && ns !== '') {
    const nsProblems = dns1123LabelProblems(ns);
    if (nsProblems.length > 0) return { field: 'metadata.namespace', message: invalidValue(ns, nsProblems) };
  }
  const labels = metadata.labels;
  if (labels === null || typeof labels !== 'object') return undefined;
  // Keys, not entries: no pair array per label of 100k objects.
  for (const k of Object.keys(labels)) {
    const v = (labels as Record<string, unknown>)[k];
    if (validKeys.has(k) && (typeof v !== 'string' || validValues.has(v))) continue;
    const field = childPath('metadata.labels', k);
    const keyProblems = labelKeyProblems(k);
    if (keyProblems.length > 0) return { field, message: `invalid label key: ${invalidValue(k, keyProblems)}` };
    remember(validKeys, k);
    if (typeof v !== 'string') continue;
    const valueProblems = labelValueProblems(v);
    if (valueProblems.length > 0) return { field, message: `invalid label value: ${invalidValue(v, valueProblems)}` };
    remember(validValues, v);
  }
  return undefined;
}

// Label keys and values repeat across thousands of pods: remember the valid ones (bounded).
const validKeys = new Set<string>();
const validValues = new Set<string>();

function remember(set: Set<string>, s: string): void {
  if (set.size < 50_000) set.add(s);
}
