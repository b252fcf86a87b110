// The complete nft script for one HostModel. One file, one transaction:
//   table inet T {} / delete table inet T / table inet T { ... }
// creates or atomically replaces nodewall's table and nothing else.
//
// Layout of table inet T:
//   set nw_owner                 empty; nodewall's ownership mark (ownership.ts).
//   set nw_structure_<hash>      empty; its name is the hash of everything below except set elements.
//                                Element deltas flush it first, so they fail on any other structure.
//   set <identity>_v4/_v6        one per IdentitySet and family, declared even when empty; hash sets when
//                                every element is a single address, interval sets otherwise.
//   set nw_excl_<exclusion>_v4/6 the cluster addresses CIDR/world identities never match.
//   chain input / output         filter hooks, priority filter, policy accept:
//                                loopback, conntrack reply, related, ICMPv4 frag-needed, ICMPv6 always-allow,
//                                (input) other ICMPv6 except echo dropped, [not enforced: accept],
//                                extended-protocol drop, deny entries, allow entries, [default deny: drop].
//                                Every rule: counter + comment "POLICY RULEPATH" or "nodewall <what>".
//   audit mode only:             would-drop rules `goto nw_audit_in|out`, which records the packet in
//                                nw_audit_{in,out}_{v4,v6} (peer . l4proto . port, timeout 10m; port =
//                                type*256+code for ICMP; see auditChainRules) and accepts.

import { createHash } from 'node:crypto';
import type { RunMode } from '../inventory/types.js';
import type { HostModel } from '../policy/model.js';
import { ownerMarkLines } from './ownership.js';
import { auditChainNames, auditChainRules, chainNames, directionRules, renderAuditSet } from './render-rules.js';
import { type SetSpec, RenderError, collectSets, commentText, renderSet, reservedPrefix } from './render-sets.js';
import { replaceUnprintable } from '../api/printable.js';

export interface RenderOptions {
  readonly table: string;
  readonly mode: RunMode;
}

export interface RenderedRuleset {
  readonly table: string;
  readonly mode: RunMode;
  /** The complete script for `nft -f -`. */
  readonly script: string;
  /** The same script without set elements: cheap to `nft -c`, and what the structure hash covers. */
  readonly structureScript: string;
  /** Hash of everything except set elements (sets, set types, chains, rules, comments). */
  readonly structureHash: string;
  /** Empty marker set whose name carries the structure hash; element deltas refuse to run without it. */
  readonly markerSet: string;
  /** Identity and exclusion sets with their elements, by set name. */
  readonly sets: ReadonlyMap<string, SetSpec>;
  /** Elements are the model's canonical CIDR strings (no normalisation needed to compare them). */
  readonly canonical: true;
  /** Rules of the base chains (audit chains excluded). */
  readonly ruleCount: number;
  /** Base-chain rules in order, with their comments (what `list` reads back). */
  readonly rules: readonly RenderedRule[];
}

export interface RenderedRule {
  readonly chain: string;
  readonly comment: string;
  readonly text: string;
}

function ruleComment(text: string): string {
  return /comment "([^"]*)"$/.exec(text)?.[1] ?? '';
}

const tableName = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export function markerSetName(structureHash: string): string {
  return `${reservedPrefix}structure_${structureHash}`;
}

interface Parts {
  readonly head: readonly string[];
  readonly sets: readonly SetSpec[];
  /** Audit sets and chains, base chains. */
  readonly tail: readonly string[];
  readonly rules: readonly RenderedRule[];
}

/** Everything but the set declarations, rendered once. */
function parts(model: HostModel, opts: RenderOptions, sets: readonly SetSpec[]): Parts {
  // The ownership mark (ownership.ts) comes first: apply and delete refuse tables without it.
  const head = [`\tcomment "${commentText(`nodewall node=${model.node} mode=${opts.mode}`)}"`, ...ownerMarkLines()];
  const tail: string[] = [];
  if (opts.mode === 'audit') {
    for (const direction of ['ingress', 'egress'] as const) {
      tail.push(...renderAuditSet(direction, 'ipv4'), ...renderAuditSet(direction, 'ipv6'));
    }
    for (const direction of ['ingress', 'egress'] as const) {
      tail.push(`\tchain ${auditChainNames[direction]} {`, ...auditChainRules(direction).map((r) => `\t\t${r}`), '\t}');
    }
  }
  const rules: RenderedRule[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    const hook = chainNames[direction];
    const texts = directionRules(model, direction, opts.mode);
    for (const text of texts) rules.push({ chain: hook, comment: ruleComment(text), text });
    tail.push(`\tchain ${hook} {`, `\t\ttype filter hook ${hook} priority filter; policy accept;`);
    for (const r of texts) tail.push(`\t\t${r}`);
    tail.push('\t}');
  }
  return { head, sets, tail, rules };
}

function body(p: Parts, withElements: boolean, marker: string | null): string[] {
  const lines = [...p.head];
  if (marker !== null) lines.push(`\tset ${marker} {`, '\t\ttype inet_proto', '\t\tcomment "nodewall structure marker"', '\t}');
  // Loops, not push(...spread): a spread of 100k+ lines overflows the call stack.
  for (const s of p.sets) for (const l of renderSet(s, withElements)) lines.push(l);
  for (const l of p.tail) lines.push(l);
  return lines;
}

function script(table: string, header: string, lines: readonly string[]): string {
  return [header, `table inet ${table} {}`, `delete table inet ${table}`, `table inet ${table} {`, ...lines, '}', ''].join('\n');
}

/**
 * Render the model with everything apply needs to decide between a full replace and an element delta.
 * The complete script (with every element) is rendered on first access only: an element delta never needs it.
 */
export function renderPlan(model: HostModel, opts: RenderOptions): RenderedRuleset {
  if (!tableName.test(opts.table)) throw new RenderError(`table name "${opts.table}" is not a plain nft identifier`);
  const sets = collectSets(model);
  const p = parts(model, opts, sets);
  const structureHash = createHash('sha256').update(script(opts.table, '', body(p, false, null))).digest('hex').slice(0, 16);
  const marker = markerSetName(structureHash);
  const header = `# nodewall ruleset for node ${replaceUnprintable(model.node, '?')} (mode ${opts.mode}, structure ${structureHash}); generated, do not edit`;
  let full: string | undefined;
  let bare: string | undefined;
  return {
    table: opts.table,
    mode: opts.mode,
    get script(): string {
      full ??= script(opts.table, header, body(p, true, marker));
      return full;
    },
    get structureScript(): string {
      bare ??= script(opts.table, header, body(p, false, marker));
      return bare;
    },
    structureHash,
    markerSet: marker,
    sets: new Map(sets.map((s) => [s.name, s])),
    canonical: true,
    ruleCount: p.rules.length,
    rules: p.rules,
  };
}

/** The complete script: fed to `nft -f -` it creates or atomically replaces only nodewall's table. */
export function renderRuleset(model: HostModel, opts: { table: string; mode: RunMode }): string {
  return renderPlan(model, opts).script;
}

export { RenderError };
