// `trace` output for staged policies: the enforced verdict is explained as
// before; this adds the verdict with the staged policies and whether it differs.

import type { HostModel } from '../policy/model.js';
import { stagedPhrase, type StagedVerdicts } from './staged-verdict.js';

/** Extra lines for `trace` (empty when no staged policy selects this node). */
export function stagedText(model: HostModel, v: StagedVerdicts): string {
  if (model.staged === undefined || v.staged === undefined) return '';
  const lines = [`staged policies (evaluated, not enforced): ${model.staged.policies.join(', ')}`];
  if (v.changed) {
    lines.push(`with staged policies: ${v.staged.verdict.toUpperCase()}: ${stagedPhrase(v.staged)}; enforced: ${v.enforced.verdict.toUpperCase()} (the kernel keeps this one)`);
  } else {
    lines.push(`with staged policies: ${v.staged.verdict.toUpperCase()} as well (no change): ${v.staged.reason}`);
  }
  return lines.join('\n');
}

/** Extra fields for `trace --output json`. */
export function stagedJson(model: HostModel, v: StagedVerdicts): { staged?: object } {
  if (model.staged === undefined || v.staged === undefined) return {};
  return {
    staged: {
      policies: model.staged.policies,
      verdict: v.staged.verdict,
      changed: v.changed,
      decidedBy: v.staged.decidedBy,
      matched: v.staged.matched,
      reason: v.staged.reason,
      ...(v.changed ? { summary: stagedPhrase(v.staged) } : {}),
    },
  };
}
