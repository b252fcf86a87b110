// Audit mode: the kernel ruleset accepts what enforce mode would drop and
// records it in timed dynamic sets nw_audit_{in,out}_{v4,v6} (render-rules.ts),
// elements "peer . l4proto . port" (port = type*256+code for ICMP). This
// module reads them back and turns each record into a verdict line of the
// dry-run shape; the deciding policy/rule comes from the model (evaluate).
// The same reader serves the drop records of enforce mode (drop-records.ts).

import type { Direction } from '../api/types.js';
import { runNft } from '../nft/nft-exec.js';
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

/** A record of the drop-record sets (render-drop-records.ts): an audit record plus counter and first-seen time. */
export interface FlowRecord extends AuditRecord {
  readonly packets?: number;
  readonly bytes?: number;
  /** When the flow was first dropped (ms since the epoch), from the element's map data or a companion set. */
  readonly firstSeenMs?: number;
  /** The set's timeout in seconds, when it has one (last seen = read time - (timeout - expires)). */
  readonly timeoutSeconds?: number;
}

/** Where the peer, protocol and port sit in the concatenated key: audit sets, drop-record maps. */
export type RecordLayout = 'peer-proto-port' | 'proto-port-peer';

/** nft prints protocols by /etc/protocols name; the ones a host firewall sees. */
const protoNumbers: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, tcp: 6, udp: 17, dccp: 33, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58,
  ospf: 89, pim: 103, vrrp: 112, l2tp: 115, sctp: 132, udplite: 136,
};

function protoNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Object.hasOwn(protoNumbers, v) ? protoNumbers[v] : (/^\d+$/.test(v) ? Number(v) : undefined);
  return undefined;
}

/**
 * nft prints `meta time` data as "YYYY-MM-DD HH:MM:SS" in its local time zone, which is this process's (the
 * same environment and /etc/localtime): read back as local time. undefined for anything else.
 */
export function parseNftTime(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(v);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = new Date(y, mo - 1, d, h, mi, sec).getTime();
  return Number.isFinite(t) ? t : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * Parse `nft -j list set|map inet T NAME` output: elements of a set (`{elem: {val, expires}}` or a bare key)
 * or of a map (`[{elem: {val, expires, counter}}, data]`). Elements of another shape are skipped.
 */
export function parseRecordSet(json: string, direction: Direction, layout: RecordLayout = 'peer-proto-port'): FlowRecord[] {
  const doc = JSON.parse(json) as { nftables?: unknown[] };
  const out: FlowRecord[] = [];
  for (const item of Array.isArray(doc.nftables) ? doc.nftables : []) {
    const obj = item as { set?: { elem?: unknown[]; timeout?: unknown }; map?: { elem?: unknown[]; timeout?: unknown } };
    const set = obj.set ?? obj.map;
    const timeoutSeconds = num(set?.timeout);
    for (const e of Array.isArray(set?.elem) ? set.elem : []) {
      // A map element is [key, data].
      const [key, data] = Array.isArray(e) ? [e[0], e[1]] : [e, undefined];
      const elem = (key as { elem?: { val?: unknown; expires?: unknown; counter?: { packets?: unknown; bytes?: unknown } } } | null)?.elem;
      const val = elem?.val ?? key;
      const concat = (val as { concat?: unknown[] } | null)?.concat;
      if (!Array.isArray(concat) || concat.length !== 3) continue;
      const [peer, proto, port] = layout === 'peer-proto-port' ? concat : [concat[2], concat[0], concat[1]];
      const p = protoNumber(proto);
      if (typeof peer !== 'string' || p === undefined || typeof port !== 'number') continue;
      const expires = num(elem?.expires);
      const packets = num(elem?.counter?.packets);
      const bytes = num(elem?.counter?.bytes);
      const firstSeenMs = parseNftTime(data);
      out.push({
        direction, peer, proto: p, port,
        ...(expires === undefined ? {} : { expires }),
        ...(packets === undefined ? {} : { packets }),
        ...(bytes === undefined ? {} : { bytes }),
        ...(firstSeenMs === undefined ? {} : { firstSeenMs }),
        ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
      });
    }
  }
  return out;
}

/** Parse `nft -j list set inet T <audit set>` output. */
export function parseAuditSet(json: string, direction: Direction): AuditRecord[] {
  return parseRecordSet(json, direction, 'peer-proto-port').map((r) => ({
    direction: r.direction, peer: r.peer, proto: r.proto, port: r.port, ...(r.expires === undefined ? {} : { expires: r.expires }),
  }));
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

/** `nft -j list set|map inet T NAME` (bounded by nft-exec: output size, timeout). */
export async function listRecordSet(nftPath: string, table: string, kind: 'set' | 'map', name: string, opts: { netns?: string; timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await runNft(nftPath, ['-j', 'list', kind, 'inet', table, name], { timeoutMs: opts.timeoutMs ?? 10_000, ...(opts.netns === undefined ? {} : { netns: opts.netns }) });
  return stdout;
}

/** Read all four audit sets. A missing set (table not in audit mode) is an error for the caller to log. */
export async function readAuditRecords(nftPath: string, table: string, netns?: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      out.push(...parseAuditSet(await listRecordSet(nftPath, table, 'set', auditSetName(direction, family), netns === undefined ? {} : { netns }), direction));
    }
  }
  return out;
}
