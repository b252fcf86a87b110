// Failsafe entries (config `failsafe`, src/policy/failsafe.ts) decide right after the datapath exceptions
// and before anything else: enforcement, deny entries, allow entries, default deny. The renderer puts
// their accept rules at the same place in the base chains (render-rules.ts), so `trace` and the kernel agree.

import type { Address } from '../policy/cidr.js';
import { failsafeMatches } from '../policy/failsafe.js';
import type { HostModel } from '../policy/model.js';
import type { Flow, Verdict } from './types.js';

/** The policy name failsafe verdicts carry in `matched`, verdict lines, `list` and `audit`. */
export const failsafePolicy = 'failsafe';

/**
 * The verdict of the first failsafe entry of the flow's direction that accepts it, or undefined.
 * `proto` is the normalised protocol (evaluate.ts normalizeProto), `peer` the parsed flow peer.
 */
export function failsafeVerdict(model: HostModel, flow: Flow, proto: string | number, peer: Address, identities: readonly string[]): Verdict | undefined {
  const entries = flow.direction === 'ingress' ? model.failsafe.ingress : model.failsafe.egress;
  if (entries.length === 0) return undefined;
  const i = entries.findIndex((e) => failsafeMatches(e, proto, flow.port, peer));
  const e = entries[i];
  if (e === undefined) return undefined;
  const dp = flow.direction === 'ingress' ? model.ingress : model.egress;
  return {
    verdict: 'allow',
    enforced: dp.enforced,
    reason: `Accepted by failsafe \`${e.text}\` (config failsafe.${flow.direction}[${i}]): failsafe entries are accepted before any policy rule, in every mode.`,
    matched: [{ policy: failsafePolicy, rule: e.text, action: 'allow', peer: null }],
    peerIdentities: identities,
    decidedBy: 'failsafe',
  };
}
