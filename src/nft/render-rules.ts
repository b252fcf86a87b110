// Base chains (input, output), one regular chain per policy, action and
// direction, and, in audit mode, the chains that record would-be drops. Rule
// order per direction follows the reference (§6.7, §8): loopback, conntrack
// replies/related, datapath exceptions, not-enforced accept, deny entries (a
// jump to every policy's deny chain), allow entries (a jump to every policy's
// allow chain), default deny. A policy's chains can be flushed and refilled
// in one transaction without touching any other policy's rules (set-delta.ts).

import { createHash } from 'node:crypto';
import type { Direction } from '../api/types.js';
import type { RunMode } from '../inventory/types.js';
import type { Entry, Family, HostModel, L4Match } from '../policy/model.js';
import { mergeRanges } from '../policy/resolve-l4.js';
import { stagedRecordRules } from './render-staged.js';
import { withDropLogs } from './render-drop-log.js';
import { failsafeFamily, type FailsafeEntry } from '../policy/failsafe.js';
import { RenderError, commentText, exclusionSetName, identitySetName, recordSetLines, reservedPrefix } from './render-sets.js';

export const chainNames: Record<Direction, string> = { ingress: 'input', egress: 'output' };
export const auditChainNames: Record<Direction, string> = { ingress: `${reservedPrefix}audit_in`, egress: `${reservedPrefix}audit_out` };

export function auditSetName(direction: Direction, family: Family): string {
  return `${auditChainNames[direction]}_${family === 'ipv4' ? 'v4' : 'v6'}`;
}

/** Audit records expire after this long without a new packet (the agent reads them more often). */
export const auditTimeout = '10m';
export const auditSetSize = 65535;

/** Fixed rule comments, also read back by `list`. */
export const fixedComments = {
  loopback: 'nodewall loopback',
  reply: 'nodewall conntrack reply',
  related: 'nodewall conntrack related',
  fragNeeded: 'nodewall datapath icmp frag-needed',
  icmpv6Allow: 'nodewall datapath icmpv6',
  icmpv6Drop: 'nodewall datapath icmpv6 drop',
  notEnforced: 'nodewall not enforced',
  extendedProtocols: 'nodewall datapath extended protocols',
  defaultDeny: 'nodewall default-deny',
  /** Followed by a space and the entry's text: "nodewall failsafe tcp/22 from 192.0.2.0/24". */
  failsafe: 'nodewall failsafe',
  jump: 'nodewall jump',
  audit: 'nodewall audit',
  /** Prefix of the drop-record chains' rules (render-drop-records.ts). */
  dropRecord: 'nodewall drop',
} as const;

interface L4Part {
  /** Only valid in this family (ICMP types); undefined = both. */
  readonly family?: Family;
  /** nft match text, '' = any protocol. */
  readonly text: string;
}

type Range = readonly [number, number];

function valueList(values: readonly string[]): string {
  return values.length === 1 ? (values[0] ?? '') : `{ ${values.join(', ')} }`;
}

/**
 * Number list -> "5" / "{ 1, 2, 130 }", sorted, no duplicates, never a range. An anonymous set with a range
 * is an interval set, and the kernel (6.18, rbtree) publishes a new interval set's elements only after the
 * transaction has made the rules that use it visible: for a moment such a rule matches nothing (measured with
 * packets, README "Transactions and the kernel"). Plain anonymous sets (hash, bitmap) do not have that window.
 */
export function numberList(numbers: readonly number[]): string {
  return valueList([...new Set(numbers)].sort((a, b) => a - b).map(String));
}

/** Port ranges -> the texts of the matches that cover them: the single ports as one plain value or set, each run
 *  of two or more ports as a range expression of its own (no interval set, see numberList). */
function portMatches(ranges: readonly Range[]): string[] {
  const singles: number[] = [];
  const runs: string[] = [];
  for (const [lo, hi] of ranges) {
    if (lo === hi) singles.push(lo);
    else runs.push(`${lo}-${hi}`);
  }
  return [...(singles.length > 0 ? [numberList(singles)] : []), ...runs];
}

/** The L4 matches of an entry, grouped so that one rule covers each protocol (single ports as plain anonymous sets, runs as range expressions). */
export function l4Parts(l4: readonly L4Match[]): L4Part[] {
  if (l4.some((m) => m.kind === 'all')) return [{ text: '' }];
  const ports = new Map<string, Range[]>();
  const icmp = new Map<Family, number[]>();
  const protos: number[] = [];
  for (const m of l4) {
    if (m.kind === 'ports') ports.set(m.proto, [...(ports.get(m.proto) ?? []), ...m.ranges]);
    else if (m.kind === 'icmp') icmp.set(m.family, [...(icmp.get(m.family) ?? []), ...m.types]);
    else if (m.kind === 'proto') protos.push(m.proto);
  }
  const out: L4Part[] = [];
  // Protocols with the same ports share one rule (`protocol: ANY` gives tcp, udp and sctp the same ranges):
  // th dport sits at the same offset in all three.
  // Keyed by the merged ranges ('' = every port): protocols with the same ports share the rules.
  const groups = new Map<string, { readonly ranges: readonly Range[]; readonly protos: ('tcp' | 'udp' | 'sctp')[] }>();
  for (const proto of ['tcp', 'udp', 'sctp'] as const) {
    const ranges = ports.get(proto);
    if (ranges === undefined) continue;
    const merged = mergeRanges(ranges);
    const all = merged.some(([lo, hi]) => lo <= 0 && hi >= 65535);
    const key = all ? '' : merged.map(([lo, hi]) => `${lo}-${hi}`).join(',');
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { ranges: all ? [] : merged, protos: [proto] });
    else g.protos.push(proto);
  }
  for (const { ranges, protos } of groups.values()) {
    const match = protos.length === 1 ? `meta l4proto ${protos[0]}` : `meta l4proto ${valueList(protos)}`;
    if (ranges.length === 0) out.push({ text: match });
    else for (const m of portMatches(ranges)) out.push({ text: `${protos.length === 1 ? `${protos[0]} dport` : `${match} th dport`} ${m}` });
  }
  const v4 = icmp.get('ipv4');
  if (v4 !== undefined) out.push({ family: 'ipv4', text: `icmp type ${numberList(v4)}` });
  const v6 = icmp.get('ipv6');
  if (v6 !== undefined) out.push({ family: 'ipv6', text: `icmpv6 type ${numberList(v6)}` });
  if (protos.length > 0) out.push({ text: `meta l4proto ${numberList(protos)}` });
  return out;
}

function join(...parts: string[]): string {
  return parts.filter((p) => p !== '').join(' ');
}

function peerMatch(model: HostModel, peer: string, family: Family, direction: Direction): string {
  const identity = model.sets[peer];
  if (identity === undefined) throw new RenderError(`entry refers to identity set "${peer}" which the model does not declare`);
  const field = `${family === 'ipv4' ? 'ip' : 'ip6'} ${direction === 'ingress' ? 'saddr' : 'daddr'}`;
  const match = `${field} @${identitySetName(peer, family)}`;
  return identity.exclude === undefined ? match : `${match} ${field} != @${exclusionSetName(identity.exclude, family)}`;
}

/** Rules of one policy entry; `verdict` is "accept", "drop" or "goto <audit chain>". */
export function entryRules(model: HostModel, entry: Entry, direction: Direction, verdict: string): string[] {
  const comment = `comment "${commentText(`${entry.policy} ${entry.rule}`)}"`;
  const rules: string[] = [];
  for (const part of l4Parts(entry.l4)) {
    if (entry.peer === null) {
      rules.push(join(part.text, 'counter', verdict, comment));
      continue;
    }
    for (const family of ['ipv4', 'ipv6'] as const) {
      if (part.family !== undefined && part.family !== family) continue;
      rules.push(join(peerMatch(model, entry.peer, family, direction), part.text, 'counter', verdict, comment));
    }
  }
  return rules;
}

/** Drop-record chains (render-drop-records.ts): record the dropped packet, then drop it. */
export const dropRecordChainNames: Record<Direction, string> = { ingress: `${reservedPrefix}drop_in`, egress: `${reservedPrefix}drop_out` };

function dropVerdict(direction: Direction, mode: RunMode, recordDrops: boolean): string {
  if (mode === 'audit') return `goto ${auditChainNames[direction]}`;
  return recordDrops ? `goto ${dropRecordChainNames[direction]}` : 'drop';
}

/** A regular chain holding one policy's deny or allow entries of one direction. */
export interface PolicyChain {
  readonly name: string;
  readonly policy: string;
  readonly action: 'deny' | 'allow';
  readonly rules: readonly string[];
}

/** One direction's base chain rules (with `jump` rules to the policy chains) and the policy chains, in jump order. */
export interface DirectionLayout {
  readonly base: readonly string[];
  readonly chains: readonly PolicyChain[];
}

const chainPrefix: Record<Direction, string> = { ingress: `${reservedPrefix}in_`, egress: `${reservedPrefix}out_` };

/**
 * Name of the chain holding `policy`'s `action` entries of `direction`: readable part of the policy name plus a
 * hash of the whole name, so names stay unique, nft-safe ([a-z0-9_]) and well below nft's 256-byte limit.
 */
export function policyChainName(direction: Direction, action: 'deny' | 'allow', policy: string): string {
  const slug = policy.toLowerCase().replace(/[^a-z0-9]+/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(policy).digest('hex').slice(0, 12);
  return `${chainPrefix[direction]}${action}_${slug}_${hash}`;
}

/** The base chain ("input"/"output") whose packets a chain of nodewall's table sees, or undefined (audit chains). */
export function baseChainOf(chain: string): string | undefined {
  if (chain === chainNames.ingress || chain.startsWith(chainPrefix.ingress)) return chainNames.ingress;
  if (chain === chainNames.egress || chain.startsWith(chainPrefix.egress)) return chainNames.egress;
  return undefined;
}

/**
 * Entries grouped into one chain per policy and action, in the order the policies first appear (the model sorts
 * entries by policy name and rule, so concatenating the chains gives the entries' own order back).
 */
function policyChains(model: HostModel, entries: readonly Entry[], action: 'deny' | 'allow', direction: Direction, verdict: string): PolicyChain[] {
  const byPolicy = new Map<string, string[]>();
  for (const entry of entries) {
    if (entry.action !== action) continue;
    let rules = byPolicy.get(entry.policy);
    if (rules === undefined) byPolicy.set(entry.policy, (rules = []));
    for (const r of entryRules(model, entry, direction, verdict)) rules.push(r);
  }
  const out: PolicyChain[] = [];
  const names = new Map<string, string>();
  for (const [policy, rules] of byPolicy) {
    const name = policyChainName(direction, action, policy);
    const clash = names.get(name);
    if (clash !== undefined) throw new RenderError(`policies "${clash}" and "${policy}" map to the same chain name ${name}`);
    names.set(name, policy);
    out.push({ name, policy, action, rules });
  }
  return out;
}

/**
 * The layout of one direction, rules without indentation. Every policy's deny chain is jumped to before any
 * policy's allow chain, so deny-before-allow holds across all policies exactly as in one flat chain: a
 * jumped-to chain's accept or drop ends the packet's walk, no match returns to the next jump.
 */
export function directionLayout(model: HostModel, direction: Direction, mode: RunMode, recordDrops = false, logDrops = false): DirectionLayout {
  const layout = plainLayout(model, direction, mode, recordDrops);
  return logDrops && mode === 'enforce' ? withDropLogs(layout, dropVerdict(direction, mode, recordDrops)) : layout;
}

function plainLayout(model: HostModel, direction: Direction, mode: RunMode, recordDrops: boolean): DirectionLayout {
  const policy = direction === 'ingress' ? model.ingress : model.egress;
  const dp = model.datapath;
  const drop = dropVerdict(direction, mode, recordDrops);
  const c = (text: string) => `comment "${text}"`;
  const rules = [
    `${direction === 'ingress' ? 'iif' : 'oif'} "lo" counter accept ${c(fixedComments.loopback)}`,
    `ct direction reply counter accept ${c(fixedComments.reply)}`,
    `ct state related counter accept ${c(fixedComments.related)}`,
    // Staged policies: record candidate flows, no verdict (render-staged.ts).
    ...stagedRecordRules(model, direction),
  ];
  if (dp.allowICMPFragNeeded) {
    rules.push(`icmp type destination-unreachable icmp code frag-needed counter accept ${c(fixedComments.fragNeeded)}`);
  }
  if (dp.icmpv6AlwaysAllow.length > 0) {
    rules.push(`icmpv6 type ${numberList(dp.icmpv6AlwaysAllow)} counter accept ${c(fixedComments.icmpv6Allow)}`);
  }
  if (direction === 'ingress') {
    const keep = dp.icmpv6IngressPolicyTypes;
    rules.push(
      keep.length > 0
        ? `icmpv6 type != ${numberList(keep)} counter ${drop} ${c(fixedComments.icmpv6Drop)}`
        : `meta l4proto ipv6-icmp counter ${drop} ${c(fixedComments.icmpv6Drop)}`,
    );
  }
  // Failsafes: after the datapath rules (loopback, conntrack, ICMP), before everything policy decides, in
  // every mode (accept, never audited) — Calico's precedence for its failsafe rules (README "Failsafes").
  for (const e of direction === 'ingress' ? model.failsafe.ingress : model.failsafe.egress) rules.push(failsafeRule(e, direction));
  if (!policy.enforced) {
    rules.push(`counter accept ${c(fixedComments.notEnforced)}`);
    return { base: rules, chains: [] };
  }
  if (!dp.extendedProtocols) {
    // Without enableExtendedIPProtocols an enforced direction drops every other IP protocol, even where a
    // peer-only allow would match (as Cilium does).
    rules.push(`meta l4proto != { tcp, udp, sctp, icmp, ipv6-icmp } counter ${drop} ${c(fixedComments.extendedProtocols)}`);
  }
  const chains = [
    ...policyChains(model, policy.entries, 'deny', direction, drop),
    ...policyChains(model, policy.entries, 'allow', direction, 'accept'),
  ];
  for (const ch of chains) rules.push(`jump ${ch.name} ${c(fixedComments.jump)}`);
  if (policy.defaultDeny) rules.push(`counter ${drop} ${c(fixedComments.defaultDeny)}`);
  return { base: rules, chains };
}

/** The accept rule of one failsafe entry (tcp/udp/sctp, a port range, optionally one peer CIDR). */
export function failsafeRule(e: FailsafeEntry, direction: Direction): string {
  const family = failsafeFamily(e);
  const peer = family === undefined ? '' : `${family === 'ipv4' ? 'ip' : 'ip6'} ${direction === 'ingress' ? 'saddr' : 'daddr'} ${e.peer ?? ''} `;
  const ports = e.ports[0] === e.ports[1] ? `${e.ports[0]}` : `${e.ports[0]}-${e.ports[1]}`;
  return `${peer}${e.proto} dport ${ports} counter accept comment "${commentText(`${fixedComments.failsafe} ${e.text}`)}"`;
}

/** Every rule a packet of this direction can walk through, in order, jumps expanded (tests, `list`). */
export function directionRules(model: HostModel, direction: Direction, mode: RunMode, recordDrops = false, logDrops = false): string[] {
  const layout = directionLayout(model, direction, mode, recordDrops, logDrops);
  const byName = new Map(layout.chains.map((ch) => [ch.name, ch.rules]));
  const out: string[] = [];
  for (const r of layout.base) {
    const target = /^jump (\S+) /.exec(r)?.[1];
    const inner = target === undefined ? undefined : byName.get(target);
    if (inner === undefined) out.push(r);
    else for (const x of inner) out.push(x);
  }
  return out;
}

/**
 * Audit chain of one direction: records (peer, protocol, port) of the packet in
 * a timed dynamic set and accepts. Record format, per element of
 * nw_audit_{in,out}_{v4,v6} (`ipv4_addr . inet_proto . inet_service`):
 * peer = source address (in) or destination address (out); protocol = IP
 * protocol number; port = destination port for tcp/udp/sctp/udplite/dccp,
 * type*256+code for icmp/ipv6-icmp, meaningless for other protocols.
 */
export function auditChainRules(direction: Direction): string[] {
  return [
    ...recordRules(direction, (family, addr, port) => `update @${auditSetName(direction, family)} { ${addr} . meta l4proto . ${port} }`, 'accept', fixedComments.audit),
    `counter accept comment "${fixedComments.audit} unrecorded"`,
  ];
}

/**
 * The recording rules of a record chain (audit records, drop records), per family: one for ICMP (port =
 * type*256+code, the first two bytes of the ICMP header) and one for everything else (destination port).
 * `statement(family, addr, port)` adds the key made of the peer address, `meta l4proto` and the port to that family's set(s); when the set is full the statement fails, the rule does not
 * match and the packet goes on to the chain's next rule, so the chain must end with an unconditional verdict.
 */
export function recordRules(
  direction: Direction,
  statement: (family: Family, addr: string, port: 'th sport' | 'th dport') => string,
  verdict: 'accept' | 'drop',
  comment: string,
): string[] {
  const rules: string[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const addr = `${family === 'ipv4' ? 'ip' : 'ip6'} ${direction === 'ingress' ? 'saddr' : 'daddr'}`;
    const icmp = family === 'ipv4' ? 'icmp' : 'ipv6-icmp';
    rules.push(
      `meta nfproto ${family} meta l4proto ${icmp} ${statement(family, addr, 'th sport')} counter ${verdict} comment "${comment} ${icmp}"`,
      `meta nfproto ${family} ${statement(family, addr, 'th dport')} counter ${verdict} comment "${comment} ${family}"`,
    );
  }
  return rules;
}

export function renderAuditSet(direction: Direction, family: Family): string[] {
  return recordSetLines(auditSetName(direction, family), family, auditSetSize, auditTimeout, `nodewall audit records ${direction}`);
}
