// `validate` warning: a policy's deny entry that a failsafe overrides (the failsafe accepts first, so the
// deny never drops that part of the traffic). Overlap = same direction, the deny's L4 covers some port of
// the failsafe's protocol and range, and the deny's peer shares an address with the failsafe's peer.

import type { Direction } from '../api/types.js';
import type { Problem } from '../api/problem.js';
import type { PolicyDocument } from '../api/types.js';
import { parsePrefix, prefixToRange } from './cidr.js';
import { rangesOf } from '../verdict/address-ranges.js';
import type { FailsafeEntry } from './failsafe.js';
import type { Entry, HostModel } from './model.js';

function l4Overlaps(e: Entry, f: FailsafeEntry): boolean {
  return e.l4.some((m) => m.kind === 'all' || (m.kind === 'ports' && m.proto === f.proto && m.ranges.some(([lo, hi]) => lo <= f.ports[1] && hi >= f.ports[0])));
}

function peerOverlaps(model: HostModel, e: Entry, f: FailsafeEntry): boolean {
  if (e.peer === null) return true;
  const s = Object.hasOwn(model.sets, e.peer) ? model.sets[e.peer] : undefined;
  if (s === undefined) return false;
  if (f.peer === null) return s.v4.length + s.v6.length > 0;
  // The set's merged ranges, cached per list holder and shared with the evaluator: one bisection per
  // (deny, failsafe), not a parse of every prefix of the set on every lint pass (each reconcile).
  return rangesOf(s).overlaps(prefixToRange(parsePrefix(f.peer)));
}

/** One warning per (deny entry, failsafe entry) that overlap, at the deny entry's field. */
export function lintFailsafeOverrides(model: HostModel, byName: ReadonlyMap<string, PolicyDocument>): Problem[] {
  const out: Problem[] = [];
  for (const dir of ['ingress', 'egress'] as const satisfies readonly Direction[]) {
    const failsafes = model.failsafe[dir];
    if (failsafes.length === 0) continue;
    for (const e of model[dir].entries) {
      if (e.action !== 'deny') continue;
      const doc = byName.get(e.policy);
      if (doc === undefined) continue;
      failsafes.forEach((f, i) => {
        if (!l4Overlaps(e, f) || !peerOverlaps(model, e, f)) return;
        out.push({
          severity: 'warning', pos: doc.locate(e.rule), policy: doc.name, field: e.rule, code: 'lint/failsafe-overrides-deny',
          message: `this deny does not apply to ${dir} traffic that failsafe \`${f.text}\` (config failsafe.${dir}[${i}]) accepts: failsafes are accepted before any policy rule; `
            + 'narrow the failsafe (e.g. `from`/`to` a management CIDR) or drop it if the deny is meant',
        });
      });
    }
  }
  return out;
}
