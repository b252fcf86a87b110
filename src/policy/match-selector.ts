// Kubernetes LabelSelector matching with Cilium's label sources (reference §1.8):
// "k8s:app" matches only k8s labels, "app" (= "any:app") matches any source.

import type { LabelSelector, Requirement } from '../api/types.js';
import type { SourcedLabel } from './label-filter.js';

export interface SelectorKey {
  /** "any" when the key has no source prefix. */
  readonly source: string;
  readonly key: string;
}

/** Splits "k8s:app" into source and key; "$host" is Cilium's short form of "reserved:host". */
export function parseSelectorKey(text: string): SelectorKey {
  if (text.startsWith('$')) return { source: 'reserved', key: text.slice(1) };
  const i = text.indexOf(':');
  if (i < 0) return { source: 'any', key: text };
  return { source: text.slice(0, i), key: text.slice(i + 1) };
}

function valuesFor(k: SelectorKey, labels: readonly SourcedLabel[]): string[] {
  return labels.filter((l) => l.key === k.key && (k.source === 'any' || k.source === l.source)).map((l) => l.value);
}

/** All requirements of a selector, matchLabels turned into single-value `In`. */
export function selectorRequirements(sel: LabelSelector): Requirement[] {
  const out: Requirement[] = [];
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) out.push({ key, operator: 'In', values: [value] });
  for (const r of sel.matchExpressions ?? []) out.push(r);
  return out;
}

export function matchRequirement(r: Requirement, labels: readonly SourcedLabel[]): boolean {
  const present = valuesFor(parseSelectorKey(r.key), labels);
  const wanted = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return present.some((v) => wanted.includes(v));
    case 'NotIn':
      return !present.some((v) => wanted.includes(v));
    case 'Exists':
      return present.length > 0;
    case 'DoesNotExist':
      return present.length === 0;
    default:
      // Cilium rejects other operators when validating; an invalid selector selects nothing.
      return false;
  }
}

/** True when every requirement holds; `{}` matches everything. */
export function matchSelector(sel: LabelSelector, labels: readonly SourcedLabel[]): boolean {
  return selectorRequirements(sel).every((r) => matchRequirement(r, labels));
}

/** Keys the selector mentions (matchLabels and matchExpressions), parsed. */
export function selectorKeys(sel: LabelSelector): SelectorKey[] {
  return selectorRequirements(sel).map((r) => parseSelectorKey(r.key));
}

/** Canonical text of a selector: sorted, so equal selectors written differently compare equal. */
export function canonicalSelector(sel: LabelSelector): string {
  const labels = Object.entries(sel.matchLabels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  const exprs = (sel.matchExpressions ?? [])
    .map((r) => {
      const vals = [...(r.values ?? [])].sort();
      return r.operator === 'Exists' || r.operator === 'DoesNotExist' ? `${r.key} ${r.operator}` : `${r.key} ${r.operator} (${vals.join(',')})`;
    })
    .sort();
  return `{${[...labels, ...exprs].join(', ')}}`;
}
