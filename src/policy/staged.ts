// Staged policies: a CCNP annotated `nodewall.io/stage: audit` (or named in the
// config's `stagedPolicies`) is evaluated but never enforced. The HostModel's
// enforced parts are built without the staged policies; `model.staged` holds
// the direction policies as they would be with them (StagedPart). The renderer
// reads `stagedRecordDirections` to record candidate flows without changing any
// verdict; the evaluator runs on `stagedView(model)` for the second verdict.

import type { Direction, PolicyDocument } from '../api/types.js';
import type { NodewallConfig } from '../inventory/types.js';
import type { DirectionPolicy, HostModel, StagedPart } from './model.js';

/** True when `doc` is staged, by its annotation or by the config. */
export function isStaged(doc: PolicyDocument, config: Pick<NodewallConfig, 'stagedPolicies'>): boolean {
  return doc.stage === 'audit' || (config.stagedPolicies?.includes(doc.name) ?? false);
}

/** The valid policies split into those enforced and the names of the staged ones. */
export function partitionStaged(valid: readonly PolicyDocument[], config: Pick<NodewallConfig, 'stagedPolicies'>): { enforced: PolicyDocument[]; staged: Set<string> } {
  const enforced: PolicyDocument[] = [];
  const staged = new Set<string>();
  for (const doc of valid) {
    if (doc.kind === 'CiliumClusterwideNetworkPolicy' && isStaged(doc, config)) staged.add(doc.name);
    else enforced.push(doc);
  }
  return { enforced, staged };
}

// The same (enforced, full) pair gives the same model object, so a model key by identity stays stable.
const attached = new WeakMap<HostModel, { readonly full: HostModel; readonly result: HostModel }>();

/**
 * `enforced` (built without the staged policies) with the staged part taken from `full` (built with
 * them). When no staged policy selects this node, `enforced` itself.
 */
export function attachStaged(enforced: HostModel, full: HostModel, staged: ReadonlySet<string>): HostModel {
  const policies = full.selectedPolicies.filter((p) => staged.has(p));
  if (policies.length === 0) return enforced;
  const hit = attached.get(enforced);
  if (hit !== undefined && hit.full === full) return hit.result;
  const part: StagedPart = { policies, ingress: full.ingress, egress: full.egress, sets: full.sets };
  const result: HostModel = { ...enforced, staged: part };
  attached.set(enforced, { full, result });
  return result;
}

const views = new WeakMap<HostModel, HostModel>();

/** The model as it would be with the staged policies enforced (for evaluate/explain), or undefined. */
export function stagedView(model: HostModel): HostModel | undefined {
  const s = model.staged;
  if (s === undefined) return undefined;
  let v = views.get(model);
  if (v === undefined) {
    const { staged: _omit, ...rest } = model;
    v = {
      ...rest,
      selectedPolicies: [...new Set([...model.selectedPolicies, ...s.policies])].sort(),
      ingress: s.ingress,
      egress: s.egress,
      sets: s.sets,
    };
    views.set(model, v);
  }
  return v;
}

function differs(a: DirectionPolicy, b: DirectionPolicy, staged: readonly string[]): boolean {
  return a.enforced !== b.enforced || a.defaultDeny !== b.defaultDeny || b.entries.some((e) => staged.includes(e.policy));
}

/**
 * Directions in which a staged policy can change a verdict: the kernel records every new flow of
 * these (render-staged.ts) and userspace keeps those whose two verdicts differ.
 */
export function stagedRecordDirections(model: HostModel): Direction[] {
  const s = model.staged;
  if (s === undefined) return [];
  const out: Direction[] = [];
  if (differs(model.ingress, s.ingress, s.policies)) out.push('ingress');
  if (differs(model.egress, s.egress, s.policies)) out.push('egress');
  return out;
}
