// Whether this node needs pod addresses at all: only a host rule that selects
// it and has an endpoint selector peer (fromEndpoints/toEndpoints) or the
// `cluster` entity resolves pod addresses. Watching 100k pods on a node where
// no selected rule needs them is pure cost.

import type { PolicyDocument, Rule } from '../../api/types.js';
import type { LabelFilter, Labels } from '../types.js';
import { nodeSelectorMatches } from '../../policy/select-nodes.js';

const lists = ['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const;

export function ruleNeedsPods(rule: Rule): boolean {
  for (const list of lists) {
    for (const peer of rule[list] ?? []) {
      if (peer.endpoints !== undefined) return true;
      if (peer.entities?.includes('cluster') === true) return true;
    }
  }
  return false;
}

/** Does any host rule selecting a node with `nodeLabels` need pod addresses? */
export function selectedPoliciesNeedPods(policies: readonly PolicyDocument[], nodeLabels: Labels, filter: LabelFilter): boolean {
  for (const doc of policies) {
    if (doc.kind !== 'CiliumClusterwideNetworkPolicy') continue;
    for (const rule of doc.rules) {
      if (rule.nodeSelector === undefined || !ruleNeedsPods(rule)) continue;
      if (nodeSelectorMatches(rule.nodeSelector, nodeLabels, filter)) return true;
    }
  }
  return false;
}
