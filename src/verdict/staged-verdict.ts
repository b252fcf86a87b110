// The second verdict: the same evaluate() on the model as it would be with the
// staged policies (policy/staged.ts). A flow is "staged-changed" when the two
// verdicts differ; that is what the agent reports and what `trace` shows.

import type { HostModel } from '../policy/model.js';
import { stagedView } from '../policy/staged.js';
import type { Flow, Verdict } from './types.js';

export interface StagedVerdicts {
  /** What the kernel does (the staged policies left out). */
  readonly enforced: Verdict;
  /** With the staged policies; undefined when none selects this node. */
  readonly staged?: Verdict;
  /** Both present and different. */
  readonly changed: boolean;
}

export type Evaluate = (model: HostModel, flow: Flow) => Verdict;

export function stagedVerdicts(model: HostModel, flow: Flow, evaluate: Evaluate): StagedVerdicts {
  const enforced = evaluate(model, flow);
  const view = stagedView(model);
  if (view === undefined) return { enforced, changed: false };
  const staged = evaluate(view, flow);
  return { enforced, staged, changed: staged.verdict !== enforced.verdict };
}

/** What decided the staged verdict: "POLICY RULE" for an entry, else the decider ("default-deny", ...). */
export function stagedDecider(v: Verdict): { policy: string | null; rule: string } {
  const d = v.matched[0];
  if ((v.decidedBy === 'deny-entry' || v.decidedBy === 'allow-entry') && d !== undefined) return { policy: d.policy, rule: d.rule };
  return { policy: null, rule: v.decidedBy };
}

/** "would deny (staged: POLICY RULE)" / "would allow (staged: default-allow)". */
export function stagedPhrase(v: Verdict): string {
  const d = stagedDecider(v);
  return `would ${v.verdict} (staged: ${d.policy === null ? d.rule : `${d.policy} ${d.rule}`})`;
}
