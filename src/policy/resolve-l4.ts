// L4 part of one ingress/egress entry (reference §5): toPorts and icmps become
// L4Match values; nothing here looks at peers.

import { icmpTypeNumber } from '../api/icmp-types.js';
import type { Direction, PeerRule, PortProtocol } from '../api/types.js';
import type { EngineConfig } from '../inventory/types.js';
import type { Family, L4Match } from './model.js';

export type TransportProto = 'tcp' | 'udp' | 'sctp';

/** Port-less protocols Cilium accepts with enable-extended-ip-protocols. */
export const extendedProtocols: Readonly<Record<string, number>> = {
  VRRP: 112,
  IGMP: 2,
  GRE: 47,
  IPIP: 4,
  IPV6: 41,
  ESP: 50,
  AH: 51,
};

export interface L4Result {
  /** Empty = matches nothing. */
  readonly l4: L4Match[];
  /** Why parts of the L4 spec allow less than written. */
  readonly notes: string[];
}

/** Parses a port string the way Go's strconv.ParseUint(s, 0, 16) does for digits-only text ("010" is octal 8). */
export function parsePortNumber(s: string): number | undefined {
  let n: number;
  if (/^0[0-7]+$/.test(s)) n = Number.parseInt(s, 8);
  else if (/^(?:0|[1-9][0-9]*)$/.test(s)) n = Number(s);
  else return undefined;
  return n <= 65535 ? n : undefined;
}

/** A port string containing a letter is an IANA service name (a named port). */
export function isNamedPort(s: string): boolean {
  return /[a-zA-Z]/.test(s);
}

/** Inclusive port range of one PortProtocol, or undefined when it names no number. */
export function portRange(pp: PortProtocol): readonly [number, number] | undefined {
  const text = pp.port ?? '';
  const port = text === '' ? 0 : parsePortNumber(text);
  if (port === undefined) return undefined;
  if (port === 0) return [0, 65535];
  const end = pp.endPort;
  if (end !== undefined && end > port) return [port, Math.min(end, 65535)];
  return [port, port];
}

/** Sorted, merged inclusive ranges (adjacent ranges joined). */
export function mergeRanges(rs: readonly (readonly [number, number])[]): [number, number][] {
  const sorted = [...rs].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function icmpFamily(f: string | undefined): Family | undefined {
  if (f === undefined || f === '' || f === 'IPv4') return 'ipv4';
  if (f === 'IPv6') return 'ipv6';
  return undefined;
}

/**
 * L4 matches of one rule. No toPorts and no icmps (absent or empty lists, as
 * Cilium counts by length) = every protocol.
 */
export function resolveL4(rule: PeerRule, cfg: EngineConfig, direction: Direction = 'ingress'): L4Result {
  const toPorts = rule.toPorts ?? [];
  const icmps = rule.icmps ?? [];
  if (toPorts.length === 0 && icmps.length === 0) return { l4: [{ kind: 'all' }], notes: [] };

  const notes: string[] = [];
  const ranges: Record<TransportProto, [number, number][]> = { tcp: [], udp: [], sctp: [] };
  const protos = new Map<number, string>();
  const icmpTypes: Record<Family, Set<number>> = { ipv4: new Set(), ipv6: new Set() };
  let portEntries = 0;

  for (const pr of toPorts) {
    if (pr.l7 !== undefined) {
      const kinds = [pr.l7.http ? 'HTTP' : '', pr.l7.dns ? 'DNS' : '', pr.l7.kafka ? 'Kafka' : '', ...pr.l7.other].filter((k) => k !== '');
      if (kinds.length > 0) notes.push(`L7 content (${kinds.join(', ')}) is not enforced; only its L4 part (ports) applies, so this entry allows more than written`);
    }
    for (const pp of pr.ports ?? []) {
      portEntries++;
      const proto = (pp.protocol ?? 'ANY').toUpperCase();
      const ext = extendedProtocols[proto];
      if (ext !== undefined) {
        if (cfg.enableExtendedIPProtocols) protos.set(ext, proto.toLowerCase());
        else notes.push(`protocol ${proto} needs enableExtendedIPProtocols; this port entry matches nothing`);
        continue;
      }
      const targets: TransportProto[] = proto === 'ANY' || proto === '' ? ['tcp', 'udp', 'sctp'] : proto === 'TCP' ? ['tcp'] : proto === 'UDP' ? ['udp'] : proto === 'SCTP' ? ['sctp'] : [];
      if (targets.length === 0) {
        notes.push(`unknown protocol "${pp.protocol ?? ''}"; this port entry matches nothing`);
        continue;
      }
      const text = pp.port ?? '';
      if (isNamedPort(text)) {
        notes.push(
          direction === 'ingress'
            ? `named port "${text}" cannot resolve for the host endpoint (it has no container ports); this port entry matches nothing`
            : `named port "${text}" would resolve against the peers' container ports, which nodewall does not know; this port entry matches nothing`,
        );
        continue;
      }
      const range = portRange(pp);
      if (range === undefined) {
        notes.push(`port "${text}" is not a valid port number; this port entry matches nothing`);
        continue;
      }
      for (const t of targets) ranges[t].push([range[0], range[1]]);
    }
  }

  for (const ir of icmps) {
    for (const f of ir.fields ?? []) {
      const family = icmpFamily(f.family);
      if (family === undefined) {
        notes.push(`ICMP family "${f.family ?? ''}" is not IPv4 or IPv6; this ICMP field matches nothing`);
        continue;
      }
      const n = icmpTypeNumber(f.type, family === 'ipv4' ? 'IPv4' : 'IPv6');
      if (n === undefined || !Number.isInteger(n) || n < 0 || n > 255) {
        notes.push(`ICMP type ${JSON.stringify(f.type)} is not a known ${family === 'ipv4' ? 'ICMPv4' : 'ICMPv6'} type in 0..255; this ICMP field matches nothing`);
        continue;
      }
      icmpTypes[family].add(n);
    }
  }

  const l4: L4Match[] = [];
  for (const proto of ['tcp', 'udp', 'sctp'] as const) {
    if (ranges[proto].length > 0) l4.push({ kind: 'ports', proto, ranges: mergeRanges(ranges[proto]) });
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    if (icmpTypes[family].size > 0) l4.push({ kind: 'icmp', family, types: [...icmpTypes[family]].sort((a, b) => a - b) });
  }
  for (const [proto, name] of [...protos].sort((a, b) => a[0] - b[0])) l4.push({ kind: 'proto', proto, name });

  if (l4.length === 0 && notes.length === 0) {
    notes.push(
      portEntries === 0 && toPorts.length > 0
        ? 'toPorts without any port (`toPorts: [{}]` or `ports: []`) yields no port, so this entry matches nothing'
        : 'icmps without any field (`icmps: [{}]`) yields no ICMP type, so this entry matches nothing',
    );
  }
  return { l4, notes };
}
