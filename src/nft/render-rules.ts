// Base chains (input, output) and, in audit mode, the chains that record
// would-be drops. Chain order per direction follows the reference (§6.7, §8):
// loopback, conntrack replies/related, datapath exceptions, not-enforced
// accept, deny entries, allow entries, default deny.

import type { Direction } from '../api/types.js';
import type { RunMode } from '../inventory/types.js';
import type { Entry, Family, HostModel, L4Match } from '../policy/model.js';
import { mergeRanges } from '../policy/resolve-l4.js';
import { RenderError, commentText, exclusionSetName, identitySetName, reservedPrefix } from './render-sets.js';

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
  audit: 'nodewall audit',
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

/** Number list -> "5" / "{ 1-4, 130 }" with runs collapsed. */
export function numberList(numbers: readonly number[]): string {
  const ranges = mergeRanges(numbers.map((n) => [n, n] as const));
  return valueList(ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)));
}

/** The L4 matches of an entry, grouped so that one rule covers each protocol (ports as anonymous sets). */
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
  const groups = new Map<string, ('tcp' | 'udp' | 'sctp')[]>();
  for (const proto of ['tcp', 'udp', 'sctp'] as const) {
    const ranges = ports.get(proto);
    if (ranges === undefined) continue;
    const merged = mergeRanges(ranges);
    const key = merged.some(([lo, hi]) => lo <= 0 && hi >= 65535) ? '' : valueList(merged.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)));
    groups.set(key, [...(groups.get(key) ?? []), proto]);
  }
  for (const [portList, protos] of groups) {
    if (protos.length === 1) out.push({ text: portList === '' ? `meta l4proto ${protos[0]}` : `${protos[0]} dport ${portList}` });
    else out.push({ text: `meta l4proto ${valueList(protos)}${portList === '' ? '' : ` th dport ${portList}`}` });
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

function dropVerdict(direction: Direction, mode: RunMode): string {
  return mode === 'audit' ? `goto ${auditChainNames[direction]}` : 'drop';
}

/** The rules of the base chain of one direction, without indentation. */
export function directionRules(model: HostModel, direction: Direction, mode: RunMode): string[] {
  const policy = direction === 'ingress' ? model.ingress : model.egress;
  const dp = model.datapath;
  const drop = dropVerdict(direction, mode);
  const c = (text: string) => `comment "${text}"`;
  const rules = [
    `${direction === 'ingress' ? 'iif' : 'oif'} "lo" counter accept ${c(fixedComments.loopback)}`,
    `ct direction reply counter accept ${c(fixedComments.reply)}`,
    `ct state related counter accept ${c(fixedComments.related)}`,
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
  if (!policy.enforced) {
    rules.push(`counter accept ${c(fixedComments.notEnforced)}`);
    return rules;
  }
  if (!dp.extendedProtocols) {
    // Without enableExtendedIPProtocols an enforced direction drops every other IP protocol, even where a
    // peer-only allow would match (as Cilium does).
    rules.push(`meta l4proto != { tcp, udp, sctp, icmp, ipv6-icmp } counter ${drop} ${c(fixedComments.extendedProtocols)}`);
  }
  const ordered = [...policy.entries.filter((e) => e.action === 'deny'), ...policy.entries.filter((e) => e.action === 'allow')];
  for (const entry of ordered) for (const r of entryRules(model, entry, direction, entry.action === 'deny' ? drop : 'accept')) rules.push(r);
  if (policy.defaultDeny) rules.push(`counter ${drop} ${c(fixedComments.defaultDeny)}`);
  return rules;
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
  const rules: string[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const addr = `${family === 'ipv4' ? 'ip' : 'ip6'} ${direction === 'ingress' ? 'saddr' : 'daddr'}`;
    const icmp = family === 'ipv4' ? 'icmp' : 'ipv6-icmp';
    const set = `@${auditSetName(direction, family)}`;
    rules.push(
      `meta nfproto ${family} meta l4proto ${icmp} update ${set} { ${addr} . meta l4proto . th sport } counter accept comment "${fixedComments.audit} ${icmp}"`,
      `meta nfproto ${family} update ${set} { ${addr} . meta l4proto . th dport } counter accept comment "${fixedComments.audit} ${family}"`,
    );
  }
  rules.push(`counter accept comment "${fixedComments.audit} unrecorded"`);
  return rules;
}

export function renderAuditSet(direction: Direction, family: Family): string[] {
  return [
    `\tset ${auditSetName(direction, family)} {`,
    `\t\ttype ${family === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr'} . inet_proto . inet_service`,
    `\t\tsize ${auditSetSize}`,
    '\t\tflags dynamic,timeout',
    `\t\ttimeout ${auditTimeout}`,
    `\t\tcomment "nodewall audit records ${direction}"`,
    '\t}',
  ];
}
