// Lockout guard: before a model change is enforced, find the established
// inbound TCP sessions (an operator's SSH, kubelet <- apiserver) that the new
// model would cut. Policy is evaluated on forward packets of established
// connections too (reference §8), so a removed allow cuts them at once.

import type { HostModel } from '../policy/model.js';
import type { Flow, Verdict } from '../verdict/types.js';
import { isLoopback, type ProcSocket } from './proc-net.js';

export type LockoutGuardMode = 'warn' | 'refuse' | 'off';

export interface InboundSession {
  readonly peer: string;
  readonly peerPort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export interface CutSession {
  readonly session: InboundSession;
  /** "peer:port -> local port", for the log line. */
  readonly text: string;
  readonly policy: string | null;
  /** Deciding rule, or what decided when no entry did ("default-deny"). */
  readonly rule: string;
  readonly reason: string;
}

export interface GuardDecision {
  readonly action: 'apply' | 'refuse';
  readonly cut: readonly CutSession[];
}

/** Established TCP sessions whose local port is a listening TCP port, loopback excluded. */
export function inboundSessions(sockets: readonly ProcSocket[]): InboundSession[] {
  const listening = new Set(
    sockets.filter((s) => s.proto === 'tcp' && s.state === 'listen').map((s) => s.localPort),
  );
  const seen = new Set<string>();
  const out: InboundSession[] = [];
  for (const s of sockets) {
    if (s.proto !== 'tcp' || s.state !== 'established') continue;
    // Port only: a dual-stack "::" listener reports its IPv4 sessions as IPv4 (v4-mapped).
    if (isLoopback(s.remoteAddress) || !listening.has(s.localPort)) continue;
    const key = `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ peer: s.remoteAddress, peerPort: s.remotePort, localAddress: s.localAddress, localPort: s.localPort });
  }
  return out;
}

export function sessionText(s: InboundSession): string {
  const peer = s.peer.includes(':') ? `[${s.peer}]` : s.peer;
  return `${peer}:${s.peerPort} -> local port ${s.localPort}`;
}

export function sessionsCut(
  model: HostModel,
  sessions: readonly InboundSession[],
  evaluate: (model: HostModel, flow: Flow) => Verdict,
): CutSession[] {
  const out: CutSession[] = [];
  for (const session of sessions) {
    const v = evaluate(model, { direction: 'ingress', peer: session.peer, proto: 'tcp', port: session.localPort });
    if (v.verdict !== 'deny') continue;
    const decider = v.matched[0];
    const byEntry = v.decidedBy === 'deny-entry' && decider !== undefined;
    out.push({
      session,
      text: sessionText(session),
      policy: byEntry ? decider.policy : null,
      rule: byEntry ? decider.rule : v.decidedBy,
      reason: v.reason,
    });
  }
  return out;
}

export function guardDecision(cut: readonly CutSession[], mode: LockoutGuardMode): GuardDecision {
  if (mode === 'off') return { action: 'apply', cut: [] };
  return { action: mode === 'refuse' && cut.length > 0 ? 'refuse' : 'apply', cut };
}
