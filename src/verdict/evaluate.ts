// The verdict for one flow, derived from the HostModel alone (reference §6.7 + §8):
// datapath exceptions, then failsafe entries (failsafe-verdict.ts), enforcement, deny entries,
// allow entries, default deny.
//
// Datapath decisions (the nft renderer does the same):
// - traffic between this node's own addresses (and 127.0.0.0/8, ::1) travels over the
//   loopback interface, which is never filtered (Cilium's host firewall is not attached
//   to lo either); the renderer's first rule accepts iif/oif lo;
// - frag-needed and the ICMPv6 always-allow types pass in both directions, and ICMPv6
//   types other than echo request/reply arriving at the host are dropped, in every mode
//   (Cilium's host datapath does this whenever the host firewall runs);
// - without enableExtendedIPProtocols, protocols other than tcp/udp/sctp/icmp/icmpv6 are
//   dropped in an enforced direction even where a peer-only allow would match (§5); an
//   unenforced direction passes them.
//
// The model is compiled once per model object (compiled-model.ts): per flow, one address parse, one
// membership lookup and the entries the flow's protocol and port can match; test/helpers/
// evaluate-reference.ts is the straightforward version it is tested against.

import { parseAddress, type Address } from '../policy/cidr.js';
import type { DirectionPolicy, HostModel, L4Match } from '../policy/model.js';
import { failsafeVerdict } from './failsafe-verdict.js';
import { parseFlowAddress, toFlowAddress, type FlowAddress } from './address-ranges.js';
import { compiledModel, type CompiledDirection, type CompiledModel } from './compiled-model.js';
import { l4Candidates, type NormalizedProto } from './entry-index.js';
import type { Flow, MatchedEntry, Verdict } from './types.js';

export type { NormalizedProto };

export class FlowError extends Error {
  override readonly name = 'FlowError';
}

/** Names of the identity sets `peer` belongs to (exclusions honoured), sorted. */
export function peerIdentities(model: HostModel, peer: Address): string[] {
  return [...compiledModel(model).membership(toFlowAddress(peer)).names];
}

/** Sets whose prefixes contain `peer` but whose exclusion removes it (a cluster address inside a CIDR/world peer). */
export function excludedIdentities(model: HostModel, peer: Address): string[] {
  const a = toFlowAddress(peer);
  const out: string[] = [];
  for (const s of compiledModel(model).sets) {
    if (s.exclusion !== undefined && s.ranges().has(a) && s.exclusion().has(a)) out.push(s.name);
  }
  return out;
}

const protoNumbers: Readonly<Record<number, NormalizedProto>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

/** Protocol numbers 1/6/17/58/132 as their names; other numbers unchanged. */
export function normalizeProto(p: Flow['proto']): NormalizedProto {
  return typeof p === 'number' ? (protoNumbers[p] ?? p) : p;
}

/** Does one L4 match cover the flow? */
export function l4Matches(m: L4Match, proto: NormalizedProto, flow: Flow): boolean {
  switch (m.kind) {
    case 'all':
      return true;
    case 'ports': {
      if (proto !== m.proto) return false;
      const port = flow.port;
      if (port === undefined) return m.ranges.some(([lo, hi]) => lo === 0 && hi === 65535);
      return m.ranges.some(([lo, hi]) => port >= lo && port <= hi);
    }
    case 'icmp':
      return proto === (m.family === 'ipv4' ? 'icmp' : 'icmpv6') && flow.icmpType !== undefined && m.types.includes(flow.icmpType);
    case 'proto':
      return proto === m.proto;
  }
}

const coreProtos: readonly NormalizedProto[] = ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'];

function datapathVerdict(cm: CompiledModel, model: HostModel, dp: DirectionPolicy, flow: Flow, proto: NormalizedProto, peer: FlowAddress): { verdict: 'allow' | 'deny'; reason: string } | undefined {
  const d = model.datapath;
  if (cm.isLocal(peer)) {
    return {
      verdict: 'allow',
      reason: `${flow.peer} is this node's own (or a loopback) address: such traffic travels over the loopback interface, which is not filtered.`,
    };
  }
  if (proto === 'icmp' && d.allowICMPFragNeeded && flow.icmpType === 3 && flow.icmpCode === 4) {
    return { verdict: 'allow', reason: 'ICMPv4 fragmentation-needed (type 3 code 4) always passes (allowICMPFragNeeded).' };
  }
  if (proto === 'icmpv6' && flow.icmpType !== undefined) {
    if (d.icmpv6AlwaysAllow.includes(flow.icmpType)) {
      return { verdict: 'allow', reason: `ICMPv6 type ${flow.icmpType} (errors, neighbour discovery, MLD) always passes, whatever the policy.` };
    }
    if (flow.direction === 'ingress' && !d.icmpv6IngressPolicyTypes.includes(flow.icmpType)) {
      return {
        verdict: 'deny',
        reason: `ICMPv6 type ${flow.icmpType} arriving at the host is always dropped by the datapath; only types ${d.icmpv6IngressPolicyTypes.join('/')} are left to policy.`,
      };
    }
  }
  if (dp.enforced && !d.extendedProtocols && !coreProtos.includes(proto)) {
    return {
      verdict: 'deny',
      reason: `IP protocol ${String(proto)} is dropped while ${flow.direction} is enforced because enableExtendedIPProtocols is off.`,
    };
  }
  return undefined;
}

/**
 * The matching entries of one action, in entry order, appended to `out`: the any-protocol entries and
 * the L4 candidates merged by index (both ascending), each checked against the marked peer. Returns
 * the first one's index, or -1.
 */
function collect(cm: CompiledModel, cd: CompiledDirection, candidates: Int32Array, deny: number, out: MatchedEntry[]): number {
  const ix = cd.index;
  const any = ix.anyL4;
  let first = -1;
  let a = 0;
  let c = 0;
  while (a < any.length || c < candidates.length) {
    const ea = a < any.length ? any[a]! : 0x7fffffff;
    const ec = c < candidates.length ? candidates[c]! : 0x7fffffff;
    const e = ea <= ec ? ea : ec;
    if (ea === e) a++;
    if (ec === e) c++;
    if (ix.deny[e] !== deny || !cm.peerIn(cd.peers[e]!)) continue;
    if (first < 0) first = e;
    out.push(ix.matched[e]!);
  }
  return first;
}

/** Every entry checked with l4Matches, for flows outside what the index cuts (a fractional port, a NaN protocol). */
function collectByScan(cm: CompiledModel, cd: CompiledDirection, proto: NormalizedProto, flow: Flow, deny: number, out: MatchedEntry[]): number {
  const ix = cd.index;
  let first = -1;
  ix.entries.forEach((e, i) => {
    if (ix.deny[i] !== deny || !cm.peerIn(cd.peers[i]!) || !e.l4.some((m) => l4Matches(m, proto, flow))) return;
    if (first < 0) first = i;
    out.push(ix.matched[i]!);
  });
  return first;
}

/** The verdict for `flow` under `model`. Throws FlowError when the peer is not an IP address. */
export function evaluate(model: HostModel, flow: Flow): Verdict {
  let addr: FlowAddress;
  try {
    addr = parseFlowAddress(flow.peer);
  } catch (err) {
    throw new FlowError(`flow peer "${flow.peer}" is not an IP address`, { cause: err });
  }
  const cm = compiledModel(model);
  const cd = flow.direction === 'ingress' ? cm.ingress : cm.egress;
  const dp = cd.policy;
  const proto = normalizeProto(flow.proto);
  const membership = cm.membership(addr);
  const identities = membership.names;

  const dpv = datapathVerdict(cm, model, dp, flow, proto, addr);
  if (dpv !== undefined) {
    return { verdict: dpv.verdict, enforced: dp.enforced, reason: dpv.reason, matched: [], peerIdentities: identities, decidedBy: 'datapath' };
  }
  // Failsafe entries (config, usually none) come right after the datapath, before anything policy decides.
  if ((flow.direction === 'ingress' ? model.failsafe.ingress : model.failsafe.egress).length > 0) {
    const fs = failsafeVerdict(model, flow, proto, parseAddress(flow.peer), identities);
    if (fs !== undefined) return fs;
  }
  if (!dp.enforced) {
    return { verdict: 'allow', enforced: false, reason: dp.reason, matched: [], peerIdentities: identities, decidedBy: 'not-enforced' };
  }
  cm.mark(membership);
  const matched: MatchedEntry[] = [];
  const candidates = l4Candidates(cd.index, proto, flow.port, flow.icmpType);
  // Deny entries first, then allow entries, each in entry order (the model lists denies first anyway).
  const firstDeny = candidates === undefined ? collectByScan(cm, cd, proto, flow, 1, matched) : collect(cm, cd, candidates, 1, matched);
  const firstAllow = candidates === undefined ? collectByScan(cm, cd, proto, flow, 0, matched) : collect(cm, cd, candidates, 0, matched);
  const first = firstDeny >= 0 ? firstDeny : firstAllow;
  if (first >= 0) {
    const deny = firstDeny >= 0;
    return { verdict: deny ? 'deny' : 'allow', enforced: true, reason: cd.index.decides[first]!, matched, peerIdentities: identities, decidedBy: deny ? 'deny-entry' : 'allow-entry' };
  }
  if (!dp.defaultDeny) {
    return { verdict: 'allow', enforced: true, reason: cd.defaultAllowReason, matched, peerIdentities: identities, decidedBy: 'default-allow' };
  }
  return { verdict: 'deny', enforced: true, reason: cd.defaultDenyReason, matched, peerIdentities: identities, decidedBy: 'default-deny' };
}
