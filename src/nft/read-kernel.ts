// Reads nodewall's table back from the kernel (`nft -j list table inet T`):
// rules with their comments (policy + rule), counters, referenced sets and a
// protocol/port summary; sets with their elements. Never needs policy files.

import { stagedComment } from './render-staged.js';
import { fixedComments } from './render-rules.js';
import { reservedPrefix } from './render-sets.js';
import { parseNftJson, runNft } from './nft-exec.js';
import { type Ownership, isMissingTableError, ownershipOfSets } from './ownership.js';

export interface KernelSet {
  readonly name: string;
  readonly handle: number;
  /** "ipv4_addr", or the parts of a concatenation. */
  readonly type: string | readonly string[];
  readonly flags: readonly string[];
  readonly comment?: string;
  /** Normalised: "192.0.2.1/32", "10.0.0.0/8", "a-b" for ranges, "x . y . z" for concatenations. */
  readonly elements: readonly string[];
}

export interface KernelChain {
  readonly name: string;
  readonly handle: number;
  readonly hook?: string;
  readonly policy?: string;
}

export interface KernelRule {
  readonly chain: string;
  readonly handle: number;
  readonly comment?: string;
  /** From the comment "POLICY RULEPATH"; undefined for nodewall's fixed rules. */
  readonly policy?: string;
  readonly rule?: string;
  readonly packets: number;
  readonly bytes: number;
  /** Sets the rule's address matches must be in ("world_v4"). */
  readonly sets: readonly string[];
  /** Sets the rule's address matches must not be in (exclusions). */
  readonly excludedSets: readonly string[];
  readonly family?: 'ipv4' | 'ipv6';
  /** "tcp/22,8000-8080", "icmp/echo-request", "udp", "any". */
  readonly l4: string;
  /** "accept", "drop", "goto nw_audit_in", ... */
  readonly verdict: string;
}

export interface KernelTable {
  readonly table: string;
  readonly comment?: string;
  /** From the structure marker set; null when the table was not written by this nodewall version. */
  readonly structureHash: string | null;
  /** Whether nodewall made this table (ownership.ts): its mark, an older nodewall's structure marker, or neither. */
  readonly ownership: Exclude<Ownership, 'absent'>;
  readonly sets: ReadonlyMap<string, KernelSet>;
  readonly chains: readonly KernelChain[];
  readonly rules: readonly KernelRule[];
}

type Json = unknown;

function isObj(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: Json): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: Json): number {
  return typeof v === 'number' ? v : 0;
}

/** One element or value of nft JSON as text. */
export function valueText(v: Json, family?: 'ipv4' | 'ipv6'): string {
  if (typeof v === 'string') {
    if (family === 'ipv4' && /^\d+\.\d+\.\d+\.\d+$/.test(v)) return `${v}/32`;
    if (family === 'ipv6' && v.includes(':') && !v.includes('/')) return `${v}/128`;
    return v;
  }
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.map((x) => valueText(x, family)).join(',');
  if (isObj(v)) {
    const prefix = v['prefix'];
    if (isObj(prefix)) return `${str(prefix['addr']) ?? '?'}/${num(prefix['len'])}`;
    const range = v['range'];
    if (Array.isArray(range)) return `${valueText(range[0])}-${valueText(range[1])}`;
    const elem = v['elem'];
    if (isObj(elem)) return valueText(elem['val'], family);
    const concat = v['concat'];
    if (Array.isArray(concat)) return concat.map((x) => valueText(x)).join(' . ');
    const set = v['set'];
    if (Array.isArray(set)) return set.map((x) => valueText(x, family)).join(',');
  }
  return JSON.stringify(v);
}

const protoNames: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 47: 'gre', 58: 'icmpv6', 112: 'vrrp', 132: 'sctp' };

/** Protocol numbers (nft -n prints numbers) with the usual names. */
function protoText(v: Json): string {
  if (typeof v === 'number') return protoNames[v] ?? String(v);
  if (isObj(v) && Array.isArray(v['set'])) return v['set'].map(protoText).join(',');
  return valueText(v);
}

const fixed = new Set<string>(Object.values(fixedComments));

/** "demo-host-policy spec.ingress[1]" -> policy + rule; nodewall's own comments -> neither. */
export function splitComment(comment: string | undefined): { policy?: string; rule?: string } {
  if (comment === undefined || fixed.has(comment) || comment.startsWith(`${fixedComments.audit} `) || comment.startsWith(`${stagedComment} `) || comment.startsWith(`${fixedComments.dropRecord} `)) return {};
  // Failsafe rules are listed as policy "failsafe", rule = the entry ("tcp/22 from 192.0.2.0/24").
  if (comment.startsWith(`${fixedComments.failsafe} `)) return { policy: 'failsafe', rule: comment.slice(fixedComments.failsafe.length + 1) };
  const at = comment.lastIndexOf(' ');
  if (at <= 0) return { policy: comment };
  return { policy: comment.slice(0, at), rule: comment.slice(at + 1) };
}

const verdicts = ['accept', 'drop', 'reject', 'continue', 'return', 'goto', 'jump'] as const;

function parseRule(r: Record<string, Json>): KernelRule {
  const expr = Array.isArray(r['expr']) ? r['expr'] : [];
  let packets = 0;
  let bytes = 0;
  const sets: string[] = [];
  const excludedSets: string[] = [];
  const l4: string[] = [];
  let family: 'ipv4' | 'ipv6' | undefined;
  let verdict = 'continue';
  for (const e of expr) {
    if (!isObj(e)) continue;
    const counter = e['counter'];
    if (isObj(counter)) {
      packets = num(counter['packets']);
      bytes = num(counter['bytes']);
    }
    for (const v of verdicts) {
      if (!(v in e)) continue;
      const target = e[v];
      verdict = isObj(target) && typeof target['target'] === 'string' ? `${v} ${target['target']}` : v;
    }
    const match = e['match'];
    if (!isObj(match)) continue;
    const left = match['left'];
    const right = match['right'];
    const op = str(match['op']) ?? '==';
    if (!isObj(left)) continue;
    const payload = left['payload'];
    const meta = left['meta'];
    if (isObj(payload)) {
      const proto = str(payload['protocol']) ?? '';
      const field = str(payload['field']) ?? '';
      if ((proto === 'ip' || proto === 'ip6') && (field === 'saddr' || field === 'daddr')) {
        family = proto === 'ip' ? 'ipv4' : 'ipv6';
        if (typeof right === 'string' && right.startsWith('@')) (op === '!=' ? excludedSets : sets).push(right.slice(1));
        else l4.push(`${field} ${op === '==' ? '' : `${op} `}${valueText(right)}`);
      } else if (field === 'dport' || field === 'type' || field === 'code') {
        const eq = op === '==' || op === 'in';
        const label = field === 'code' ? `${proto} code` : proto;
        l4.push(`${label}${eq ? (field === 'code' ? ' ' : '/') : ` ${op} `}${valueText(right)}`);
      }
    } else if (isObj(meta)) {
      const key = str(meta['key']);
      if (key === 'l4proto') l4.push(`${op === '==' || op === 'in' ? '' : `${op} `}${protoText(right)}`);
      else if (key === 'nfproto') family = right === 'ipv6' ? 'ipv6' : 'ipv4';
    }
  }
  const comment = str(r['comment']);
  const names = splitComment(comment);
  return {
    chain: str(r['chain']) ?? '',
    handle: num(r['handle']),
    ...(comment === undefined ? {} : { comment }),
    ...names,
    packets,
    bytes,
    sets,
    excludedSets,
    ...(family === undefined ? {} : { family }),
    l4: l4.length === 0 ? 'any' : l4.join(' '),
    verdict,
  };
}

function setFamily(type: Json): 'ipv4' | 'ipv6' | undefined {
  return type === 'ipv4_addr' ? 'ipv4' : type === 'ipv6_addr' ? 'ipv6' : undefined;
}

/** Parse `nft -j list table inet T` output. Pure. */
export function parseTableJson(json: string, table: string): KernelTable {
  return parseTableDoc(JSON.parse(json), table);
}

/** The same, from the parsed document. Pure. */
export function parseTableDoc(doc: Json, table: string): KernelTable {
  const items = isObj(doc) && Array.isArray(doc['nftables']) ? doc['nftables'] : [];
  const sets = new Map<string, KernelSet>();
  const chains: KernelChain[] = [];
  const rules: KernelRule[] = [];
  let comment: string | undefined;
  for (const item of items) {
    if (!isObj(item)) continue;
    const t = item['table'];
    const s = item['set'];
    const c = item['chain'];
    const r = item['rule'];
    if (isObj(t)) comment = str(t['comment']);
    if (isObj(s)) {
      const family = setFamily(s['type']);
      const elem = Array.isArray(s['elem']) ? s['elem'] : [];
      const type = s['type'];
      const setComment = str(s['comment']);
      const name = str(s['name']) ?? '';
      sets.set(name, {
        name,
        handle: num(s['handle']),
        type: Array.isArray(type) ? type.map((x) => String(x)) : String(type),
        flags: Array.isArray(s['flags']) ? s['flags'].map((x) => String(x)) : [],
        ...(setComment === undefined ? {} : { comment: setComment }),
        elements: elem.map((e) => valueText(e, family)),
      });
    }
    if (isObj(c)) {
      const hook = str(c['hook']);
      const policy = str(c['policy']);
      chains.push({ name: str(c['name']) ?? '', handle: num(c['handle']), ...(hook === undefined ? {} : { hook }), ...(policy === undefined ? {} : { policy }) });
    }
    if (isObj(r)) rules.push(parseRule(r));
  }
  const markerPrefix = `${reservedPrefix}structure_`;
  const marker = [...sets.keys()].find((n) => n.startsWith(markerPrefix));
  return {
    table,
    ...(comment === undefined ? {} : { comment }),
    structureHash: marker === undefined ? null : marker.slice(markerPrefix.length),
    ownership: ownershipOfSets(sets.values()),
    sets,
    chains,
    rules,
  };
}

/**
 * nodewall's table as the kernel holds it, or null when the table does not exist.
 * Output that is not nft JSON (nft.path is some other program) is an NftError saying so.
 */
export async function readTable(nftPath: string, table: string, opts: { netns?: string; timeoutMs?: number } = {}): Promise<KernelTable | null> {
  // -n: ICMP types and protocols as numbers (names like "destination-unreachable" make ranges unreadable).
  const args = ['-n', '-j', 'list', 'table', 'inet', table];
  let stdout: string;
  try {
    ({ stdout } = await runNft(nftPath, args, opts));
  } catch (err) {
    if (isMissingTableError(err)) return null;
    throw err;
  }
  return parseTableDoc(parseNftJson(stdout, nftPath, args), table);
}

/** Rule handles per chain, in order: what `list` shows and what element-only updates must keep. */
export function ruleHandles(t: KernelTable): string[] {
  return t.rules.map((r) => `${r.chain}#${r.handle}`);
}
