// Audit mode: the kernel ruleset accepts what enforce mode would drop and
// records it in timed dynamic sets nw_audit_{in,out}_{v4,v6} (render-rules.ts),
// elements "peer . l4proto . port" (port = type*256+code for ICMP). This
// module reads them back and turns each record into a verdict line of the
// dry-run shape; the deciding policy/rule comes from the model (evaluate).

import { execFile } from 'node:child_process';
import type { Direction } from '../api/types.js';
import { auditSetName } from '../nft/render-rules.js';
import type { HostModel } from '../policy/model.js';
import type { Flow, FlowProto, Verdict } from '../verdict/types.js';
import type { VerdictLine } from './verdict-line.js';

export interface AuditRecord {
  readonly direction: Direction;
  readonly peer: string;
  /** IP protocol number. */
  readonly proto: number;
  readonly port: number;
  /** Seconds until the record expires (refreshed by every new packet). */
  readonly expires?: number;
}

/** nft prints protocols by /etc/protocols name; the ones a host firewall sees. */
const protoNumbers: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, tcp: 6, udp: 17, dccp: 33, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58,
  ospf: 89, pim: 103, vrrp: 112, l2tp: 115, sctp: 132, udplite: 136,
};

function protoNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return protoNumbers[v] ?? (/^\d+$/.test(v) ? Number(v) : undefined);
  return undefined;
}

/** Parse `nft -j list set inet T <audit set>` output. */
export function parseAuditSet(json: string, direction: Direction): AuditRecord[] {
  const doc = JSON.parse(json) as { nftables?: unknown[] };
  const out: AuditRecord[] = [];
  for (const item of doc.nftables ?? []) {
    const set = (item as { set?: { elem?: unknown[] } }).set;
    for (const e of set?.elem ?? []) {
      const elem = (e as { elem?: { val?: unknown; expires?: number } }).elem;
      const val = elem?.val ?? e;
      const concat = (val as { concat?: unknown[] }).concat;
      if (!Array.isArray(concat) || concat.length !== 3) continue;
      const [peer, proto, port] = concat;
      const p = protoNumber(proto);
      if (typeof peer !== 'string' || p === undefined || typeof port !== 'number') continue;
      out.push({ direction, peer, proto: p, port, ...(elem?.expires === undefined ? {} : { expires: elem.expires }) });
    }
  }
  return out;
}

export function recordFlow(r: AuditRecord): Flow {
  const base = { direction: r.direction, peer: r.peer };
  switch (r.proto) {
    case 6: return { ...base, proto: 'tcp', port: r.port };
    case 17: return { ...base, proto: 'udp', port: r.port };
    case 132: return { ...base, proto: 'sctp', port: r.port };
    case 1: return { ...base, proto: 'icmp', icmpType: r.port >> 8, icmpCode: r.port & 0xff };
    case 58: return { ...base, proto: 'icmpv6', icmpType: r.port >> 8, icmpCode: r.port & 0xff };
    default: return { ...base, proto: r.proto as FlowProto };
  }
}

/**
 * One line per record. Every record is a would-drop by the kernel; the rule
 * that decides it comes from the model. `count` = records of the same
 * direction, protocol, port and rule (how many peers hit it).
 */
export function auditLines(records: readonly AuditRecord[], model: HostModel, evaluate: (m: HostModel, f: Flow) => Verdict): VerdictLine[] {
  const lines = records.map((r) => {
    const flow = recordFlow(r);
    const v = evaluate(model, flow);
    const d = v.matched[0];
    const byEntry = v.decidedBy === 'deny-entry' && d !== undefined;
    const line: VerdictLine = {
      direction: r.direction,
      peer: r.peer,
      proto: typeof flow.proto === 'number' ? String(flow.proto) : flow.proto,
      ...(flow.port !== undefined ? { port: flow.port } : flow.icmpType !== undefined ? { port: flow.icmpType } : {}),
      verdict: 'would-deny',
      policy: byEntry ? d.policy : null,
      // The model may have changed since the packet was recorded.
      rule: byEntry ? d.rule : v.verdict === 'deny' ? v.decidedBy : 'recorded-before-last-change',
      kind: 'audit-record',
    };
    return line;
  });
  const groups = new Map<string, number>();
  const groupKey = (l: VerdictLine) => `${l.direction}|${l.proto}|${l.port ?? ''}|${l.policy ?? ''}|${l.rule}`;
  for (const l of lines) groups.set(groupKey(l), (groups.get(groupKey(l)) ?? 0) + 1);
  return lines.map((l) => ({ ...l, count: groups.get(groupKey(l)) ?? 1 }));
}

export function listSet(nftPath: string, table: string, set: string, netns?: string): Promise<string> {
  const [cmd, args] = netns === undefined
    ? [nftPath, ['-j', 'list', 'set', 'inet', table, set]]
    : ['ip', ['netns', 'exec', netns, nftPath, '-j', 'list', 'set', 'inet', table, set]];
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 10_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${set}: ${(stderr || err.message).trim()}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** Read all four audit sets. A missing set (table not in audit mode) is an error for the caller to log. */
export async function readAuditRecords(nftPath: string, table: string, netns?: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      out.push(...parseAuditSet(await listSet(nftPath, table, auditSetName(direction, family), netns), direction));
    }
  }
  return out;
}
