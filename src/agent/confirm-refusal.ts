// What a commit-confirm rollback of an AGENT change (rollout.confirm: manual) refuses, through the same
// record the rollout probes use (refused-changes.ts): one refusal mechanism, one status line, one retry
// rule ("a later change of the same policy is tried again").
//
// - The change was made by this agent process (it knows the ruleset in force before it): the policies
//   whose entries changed AND whose document is not the version last good before the change are refused
//   by version; their last good versions go back into the merge (rollback.ts restoreLastGood). When no
//   document explains the change (a node label, the config), the input as a whole is refused.
// - The change was made by an earlier run (the agent restarted, the node rebooted): nothing is known but
//   the record's input hash, so that input as a whole is refused.
// - A CLI `apply --confirm-within` is not the agent's input: nothing is refused.
//
// The plan is made when the change is put on probation (the models and last good versions are at hand
// then) and used when it is rolled back, possibly much later.

import type { HostModel } from '../policy/model.js';
import type { PendingConfirm } from './commit-confirm.js';
import { policyKey, type GoodEntry, type LastGood } from './last-good.js';
import type { Desired } from './reconcile.js';
import { restoreLastGood } from './rollback.js';
import type { Refusal, RefusedChanges, RefusedVersion } from './refused-changes.js';
import { changedPolicies } from './rollout-probes.js';

/** `by` of every refusal commit-confirm makes. */
export const confirmRefuser = 'commit-confirm';

export interface ConfirmRefusalPlan {
  /** Refused policy versions; empty: the input as a whole. */
  readonly policies: readonly RefusedVersion[];
  readonly inputHash: string;
  /** The policies whose entries changed (named in the reason). */
  readonly changed: readonly string[];
  /** The last good versions before the first unconfirmed change of the chain (restored on rollback). */
  readonly lastGoodBefore: LastGood;
}

/**
 * At probation time. `before`: the model in force before the first unconfirmed change of the chain
 * (undefined: unknown, or no table), `lastGoodBefore`: the last good versions at that time.
 */
export function planConfirmRefusal(d: Desired, next: HostModel, before: HostModel | undefined, lastGoodBefore: LastGood): ConfirmRefusalPlan {
  if (before === undefined) return { policies: [], inputHash: d.inputHash, changed: [], lastGoodBefore };
  const changed = changedPolicies(before, next);
  const current = new Map(d.state.valid.map((doc) => [policyKey(doc), doc.hash] as const));
  const policies: RefusedVersion[] = [];
  for (const p of changed) {
    const version = current.get(p);
    if (version !== undefined && lastGoodBefore.get(p)?.doc.hash !== version) policies.push({ policy: p, version });
  }
  return { policies, inputHash: d.inputHash, changed, lastGoodBefore };
}

/**
 * At rollback time: record the refusal (the caller saves `refused`) and put the refused policies' last good
 * versions back. Returns undefined for a change that is not the agent's (a CLI apply).
 */
export function refuseUnconfirmed(
  refused: RefusedChanges, lastGood: Map<string, GoodEntry>, record: PendingConfirm, plan: ConfirmRefusalPlan | undefined, detail: string,
): Refusal | undefined {
  if (record.origin !== 'agent') return undefined;
  const inputHash = plan?.inputHash ?? record.inputHash;
  if (inputHash === undefined) return undefined;
  const policies = plan?.policies ?? [];
  const named = plan === undefined
    ? 'made by an earlier run of the agent (the policies involved are not known)'
    : plan.changed.length === 0 ? 'no policy entry changed' : `policies involved: ${plan.changed.join(', ')}`;
  const r = refused.refuse({ policies, inputHash, by: confirmRefuser, reason: `change ${record.id} was not confirmed (${detail}); ${named}` });
  if (plan !== undefined && policies.length > 0) restoreLastGood(lastGood, plan.lastGoodBefore, policies);
  return r;
}

/** The refusal of this whole input, if any. */
export function inputRefusal(refused: RefusedChanges | undefined, inputHash: string): Refusal | undefined {
  return refused?.list().find((r) => r.policies.length === 0 && r.inputHash === inputHash);
}

/** The merge of this pass left out refused versions that commit-confirm refused. */
export function confirmRefusalsInForce(refused: RefusedChanges | undefined, d: Desired): Refusal[] {
  if (refused === undefined || refused.size === 0) return [];
  const keys = new Set([...d.merge.kept.filter((k) => k.reason === 'refused').map((k) => k.policy), ...(d.merge.withheld ?? []).map((w) => w.policy)]);
  return refused.list().filter((r) => r.by === confirmRefuser && r.policies.some((p) => keys.has(p.policy)));
}
