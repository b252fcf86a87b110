// What a rollout-probe rollback refuses, and the words for it (the agent restores the ruleset itself).
//
// The policies involved are those whose entries changed between the ruleset in force and the change
// (rollout-probes.ts changedPolicies). Each of them whose DOCUMENT changed too (a new version, not the
// version last in force) is refused by version: its last good version stays, a later edit is tried again.
// When no document changed (a node label, an address, the config), the input as a whole is refused: the
// ruleset in force stays until any input changes.

import type { HostModel } from '../policy/model.js';
import { policyKey, type GoodEntry, type LastGood } from './last-good.js';
import type { Desired } from './reconcile.js';
import type { Logger } from 'pino';
import { refusalLine, type Refusal, type RefusedChanges, type RefusedVersion } from './refused-changes.js';
import type { RefusalStatus } from './status-file.js';
import { changedPolicies, type ProbeFailure } from './rollout-probes.js';

export interface RollbackPlan {
  /** Policies whose entries changed (named in the log and the refusal reason). */
  readonly policies: readonly string[];
  readonly refusal: Omit<Refusal, 'at'>;
  /** The log line / status error. */
  readonly message: string;
}

export function rollbackPlan(d: Desired, inForce: HostModel, broken: ProbeFailure, lastGood: LastGood): RollbackPlan {
  const policies = changedPolicies(inForce, d.state.model);
  const current = new Map(d.state.valid.map((doc) => [policyKey(doc), doc.hash] as const));
  const versions: RefusedVersion[] = [];
  for (const p of policies) {
    const version = current.get(p);
    if (version !== undefined && lastGood.get(p)?.doc.hash !== version) versions.push({ policy: p, version });
  }
  const named = policies.length === 0 ? 'no policy entry changed' : `policies involved: ${policies.join(', ')}`;
  const reason = `probe ${broken.probe} passed before the change and failed for ${broken.attempts} attempt(s) after it (${broken.error}); ${named}`;
  const message = `rollout probe ${broken.probe} broke after the change: previous ruleset restored; ` +
    (versions.length > 0
      ? `refused ${versions.map((v) => v.policy).join(', ')} until ${versions.length === 1 ? 'it changes' : 'they change'} again (${named})`
      : `refused this input until any input changes (${named})`);
  return { policies, refusal: { policies: versions, inputHash: d.inputHash, by: `probe ${broken.probe}`, reason }, message };
}

/**
 * The refused policies' entries of the merge's new last good map go back to the versions in force before
 * (or away, for a new policy), so the refused versions are never persisted as last good.
 */
export function restoreLastGood(next: Map<string, GoodEntry>, before: LastGood, refused: readonly RefusedVersion[]): void {
  for (const r of refused) {
    const old = before.get(r.policy);
    if (old === undefined) next.delete(r.policy);
    else next.set(r.policy, old);
  }
}

/** Log lines of a pass about refusals: changes tried again, refused new policies withheld, a bad store. */
export function logRefusals(d: Desired, log: Logger, noteError: (m: string) => void): void {
  logRetried(d, log);
  for (const w of d.merge.withheld ?? []) {
    log.warn({ policy: w.policy, file: w.file, refused: true }, `policy ${w.policy}: this version was rolled back and is refused (see nodewall status); not applied until it changes`);
  }
  if (d.refusedLoadError !== undefined) {
    log.warn({ error: d.refusedLoadError }, 'refused changes store unusable: moved aside, every refused change will be tried again');
    noteError(d.refusedLoadError);
  }
}

/** Refusals forgotten in this pass (their change is tried again): logged in every pass that has them. */
export function logRetried(d: Desired, log: Logger): void {
  for (const r of d.retried) {
    log.info({ refused: false, policies: r.policies.map((p) => p.policy), by: r.by },
      r.policies.length === 0 ? 'inputs changed since a refused change: trying again' : `refused change of ${r.policies.map((p) => p.policy).join(', ')} changed since: trying it again`);
  }
}

/** The status file's `refused` field (absent when nothing is refused). */
export function refusedStatus(r: RefusedChanges | undefined): { refused?: RefusalStatus[] } {
  if (r === undefined || r.size === 0) return {};
  return { refused: r.list().map((x) => ({ policies: x.policies.map((p) => ({ policy: p.policy, version: p.version })), by: x.by, reason: x.reason, at: x.at })) };
}

export { refusalLine };
