// The straightforward evaluator (src/verdict/evaluate.ts before it was precompiled), kept as the
// reference for the differential test (test/verdict/evaluate-differential.prop.test.ts): every set
// checked for every flow, every entry filtered. Used by tests only.

import { AddressMatcher, hostPrefix, parseAddress, parsePrefix, type Address } from '../../src/policy/cidr.js';
import type { DirectionPolicy, Entry, HostModel, L4Match } from '../../src/policy/model.js';
import type { Flow, MatchedEntry, Verdict } from '../../src/verdict/types.js';
import { failsafeVerdict } from '../../src/verdict/failsafe-verdict.js';

export class ReferenceFlowError extends Error {
  override readonly name = 'FlowError';
}

type Addresses = { readonly v4: readonly string[]; readonly v6: readonly string[] };

/**
 * Matchers by the address lists' holder (an IdentitySet or an exclusion), not by model: models are
 * immutable and an incremental update keeps the objects of what did not change, so a pod event
 * rebuilds the matchers of the sets it changed alone, and a model copied with another run mode
 * (lint) shares them all. Exclusions are built on first need.
 */
const cache = new WeakMap<Addresses, AddressMatcher>();

function matcherOf(a: Addresses): AddressMatcher {
  let m = cache.get(a);
  if (m === undefined) {
    m = new AddressMatcher([...a.v4, ...a.v6].map((s) => parsePrefix(s)));
    cache.set(a, m);
  }
  return m;
}

/** Is `peer` in set `s`, its exclusion honoured? */
function inSet(model: HostModel, s: HostModel['sets'][string], peer: Address): boolean {
  if (!matcherOf(s).has(peer)) return false;
  return s.exclude === undefined || !matcherOf(model.exclusions[s.exclude]).has(peer);
}

/** Names of the identity sets `peer` belongs to (exclusions honoured), sorted. */
export function referencePeerIdentities(model: HostModel, peer: Address): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(model.sets)) if (inSet(model, s, peer)) out.push(name);
  return out.sort();
}

/** Sets whose prefixes contain `peer` but whose exclusion removes it (a cluster address inside a CIDR/world peer). */
export function referenceExcludedIdentities(model: HostModel, peer: Address): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(model.sets)) {
    if (s.exclude !== undefined && matcherOf(s).has(peer) && matcherOf(model.exclusions[s.exclude]).has(peer)) out.push(name);
  }
  return out.sort();
}

type NormalizedProto = 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6' | number;

const protoNumbers: Readonly<Record<number, NormalizedProto>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

/** Protocol numbers 1/6/17/58/132 as their names; other numbers unchanged. */
function normalizeProto(p: Flow['proto']): NormalizedProto {
  return typeof p === 'number' ? (protoNumbers[p] ?? p) : p;
}

/** Does one L4 match cover the flow? */
function l4Matches(m: L4Match, proto: NormalizedProto, flow: Flow): boolean {
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

function entryMatches(e: Entry, identities: readonly string[], proto: NormalizedProto, flow: Flow): boolean {
  if (e.peer !== null && !identities.includes(e.peer)) return false;
  return e.l4.some((m) => l4Matches(m, proto, flow));
}

function toMatched(e: Entry): MatchedEntry {
  return { policy: e.policy, rule: e.rule, action: e.action, peer: e.peer };
}

const coreProtos: readonly NormalizedProto[] = ['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'];

const loopbackNets = [parsePrefix('127.0.0.0/8'), parsePrefix('::1/128')];
const hostMatchers = new WeakMap<HostModel, AddressMatcher>();

/** True for a peer that the kernel reaches over lo: a loopback address or one of this node's own. */
function isLocalPeer(model: HostModel, peer: Address): boolean {
  let m = hostMatchers.get(model);
  if (m === undefined) {
    m = new AddressMatcher([...loopbackNets, ...model.hostAddresses.map((a) => hostPrefix(a))]);
    hostMatchers.set(model, m);
  }
  return m.has(peer);
}

function datapathVerdict(model: HostModel, dp: DirectionPolicy, flow: Flow, proto: NormalizedProto, peer: Address): { verdict: 'allow' | 'deny'; reason: string } | undefined {
  const d = model.datapath;
  if (isLocalPeer(model, peer)) {
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

/** The verdict for `flow` under `model`. Throws FlowError when the peer is not an IP address. */
export function referenceEvaluate(model: HostModel, flow: Flow): Verdict {
  let addr: Address;
  try {
    addr = parseAddress(flow.peer);
  } catch (err) {
    throw new ReferenceFlowError(`flow peer "${flow.peer}" is not an IP address`, { cause: err });
  }
  const dp = flow.direction === 'ingress' ? model.ingress : model.egress;
  const proto = normalizeProto(flow.proto);
  const identities = referencePeerIdentities(model, addr);

  const dpv = datapathVerdict(model, dp, flow, proto, addr);
  if (dpv !== undefined) {
    return { verdict: dpv.verdict, enforced: dp.enforced, reason: dpv.reason, matched: [], peerIdentities: identities, decidedBy: 'datapath' };
  }
  const fs = failsafeVerdict(model, flow, proto, addr, identities);
  if (fs !== undefined) return fs;
  if (!dp.enforced) {
    return { verdict: 'allow', enforced: false, reason: dp.reason, matched: [], peerIdentities: identities, decidedBy: 'not-enforced' };
  }
  const hits = dp.entries.filter((e) => entryMatches(e, identities, proto, flow));
  const denies = hits.filter((e) => e.action === 'deny');
  const allows = hits.filter((e) => e.action === 'allow');
  const matched = [...denies, ...allows].map(toMatched);
  const first = denies[0] ?? allows[0];
  if (first !== undefined) {
    const verdict = first.action;
    const reason = `${first.action === 'deny' ? 'Denied' : 'Allowed'} by policy ${first.policy} ${first.rule}` +
      (first.action === 'deny' ? ' (deny entries win over allow entries).' : '.');
    return { verdict, enforced: true, reason, matched, peerIdentities: identities, decidedBy: first.action === 'deny' ? 'deny-entry' : 'allow-entry' };
  }
  if (!dp.defaultDeny) {
    return { verdict: 'allow', enforced: true, reason: `No entry matched and ${flow.direction} has no default deny. ${dp.reason}`, matched, peerIdentities: identities, decidedBy: 'default-allow' };
  }
  return { verdict: 'deny', enforced: true, reason: `No allow entry matched; default deny. ${dp.reason}`, matched, peerIdentities: identities, decidedBy: 'default-deny' };
}
