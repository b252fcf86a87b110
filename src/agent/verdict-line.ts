// One dry-run/audit verdict line, and the dedupe that keeps the agent from
// repeating itself for a flow it already reported.

import type { Verdict } from '../verdict/types.js';
import type { LiveFlow } from './live-flows.js';

export interface VerdictLine {
  readonly direction: 'ingress' | 'egress';
  readonly peer: string;
  readonly proto: string;
  readonly port?: number;
  readonly verdict: 'would-allow' | 'would-deny';
  /** Deciding policy, or null when no entry decided (default deny, not enforced, datapath). */
  readonly policy: string | null;
  /** Field path of the deciding entry, or what decided ("default-deny", "not-enforced", "datapath"). */
  readonly rule: string;
  readonly kind: 'connection' | 'listener' | 'audit-record' | 'staged-record';
  readonly local?: string;
  readonly peerSet?: string;
  readonly process?: string;
  /** Audit records: how many packets/elements the kernel recorded. */
  readonly count?: number;
  /** Staged policies: "would deny (staged: POLICY RULE)"; the line's verdict is the staged one. */
  readonly staged?: string;
  /** Staged policies: what the kernel does with the flow (the staged policies left out). */
  readonly enforcedVerdict?: 'allow' | 'deny';
}

export function verdictLine(lf: LiveFlow, v: Verdict): VerdictLine {
  const decider = v.matched[0];
  // A failsafe names itself as policy "failsafe", rule = the entry's text.
  const decidedByEntry = v.decidedBy === 'deny-entry' || v.decidedBy === 'allow-entry' || v.decidedBy === 'failsafe';
  return {
    direction: lf.flow.direction,
    peer: lf.flow.peer,
    proto: String(lf.flow.proto),
    ...(lf.flow.port === undefined ? {} : { port: lf.flow.port }),
    verdict: v.verdict === 'allow' ? 'would-allow' : 'would-deny',
    policy: decidedByEntry && decider !== undefined ? decider.policy : null,
    rule: decidedByEntry && decider !== undefined ? decider.rule : v.decidedBy,
    kind: lf.kind,
    local: lf.local,
    ...(lf.peerSet === undefined ? {} : { peerSet: lf.peerSet }),
    ...(lf.process === undefined ? {} : { process: lf.process }),
  };
}

/** Same flow, same outcome = same key. A verdict change (new policy) gives a new key, so it is reported again. */
export function dedupeKey(l: VerdictLine): string {
  return [l.kind, l.direction, l.peer, l.proto, l.port ?? '', l.local ?? '', l.verdict, l.policy ?? '', l.rule].join('|');
}

/** Remembers up to `max` keys, oldest forgotten first, so a long-running agent stays bounded. */
export class Deduper {
  readonly #seen = new Map<string, true>();
  readonly #max: number;
  constructor(max = 20_000) {
    this.#max = max;
  }

  /** True the first time a key is seen (and records it). */
  fresh(key: string): boolean {
    if (this.#seen.has(key)) return false;
    this.#seen.set(key, true);
    if (this.#seen.size > this.#max) {
      const oldest = this.#seen.keys().next();
      if (oldest.done !== true) this.#seen.delete(oldest.value);
    }
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}
