// Which host rules select a node (reference §3): rules with nodeSelector from
// CCNPs, matched against the host endpoint's labels after the label filter.

import type { LabelSelector, PolicyDocument, Requirement, Rule } from '../api/types.js';
import type { LabelFilter, Labels } from '../inventory/types.js';
import { hostEndpointLabels } from './label-filter.js';
import { matchRequirement, parseSelectorKey, selectorRequirements } from './match-selector.js';

export interface SelectedRule {
  readonly policy: PolicyDocument;
  readonly rule: Rule;
}

// `reserved:host` (or the bare `host`, i.e. `any:host`) is carried by every host
// endpoint whatever value a selector asks for: positive requirements on it hold,
// negative ones (NotIn, DoesNotExist) cannot hold.
function isHostKey(r: Requirement): boolean {
  const k = parseSelectorKey(r.key);
  return k.key === 'host' && (k.source === 'reserved' || k.source === 'any');
}

/** Does `sel` select a host endpoint whose node carries `nodeLabels`? */
export function nodeSelectorMatches(sel: LabelSelector, nodeLabels: Labels, filter: LabelFilter): boolean {
  const labels = hostEndpointLabels(nodeLabels, filter);
  return selectorRequirements(sel).every((r) => {
    if (isHostKey(r)) return r.operator === 'In' || r.operator === 'Exists';
    return matchRequirement(r, labels);
  });
}

/** Is this a host rule of a CCNP (the only kind nodewall enforces)? */
export function isHostRule(doc: PolicyDocument, rule: Rule): boolean {
  return doc.kind === 'CiliumClusterwideNetworkPolicy' && rule.nodeSelector !== undefined;
}

/** Host rules selecting the node, in input order. `policies` are the valid ones. */
export function selectingRules(policies: readonly PolicyDocument[], nodeLabels: Labels, filter: LabelFilter): SelectedRule[] {
  const out: SelectedRule[] = [];
  for (const policy of policies) {
    for (const rule of policy.rules) {
      if (!isHostRule(policy, rule) || rule.nodeSelector === undefined) continue;
      if (nodeSelectorMatches(rule.nodeSelector, nodeLabels, filter)) out.push({ policy, rule });
    }
  }
  return out;
}
