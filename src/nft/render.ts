// The complete nft script for one HostModel. One file, one transaction:
//   table inet T {} / delete table inet T / table inet T { ... }
// creates or atomically replaces nodewall's table and nothing else.
//
// Layout of table inet T:
//   set nw_owner                 empty; nodewall's ownership mark (ownership.ts).
//   set nw_structure_<hash>      empty; its name is the hash of everything below except set elements.
//                                Every delta removes or flushes it first, so it fails on any other structure.
//   set <identity>_v4/_v6        one per IdentitySet and family, declared even when empty; hash sets for
//                                identities of single addresses (pods, nodes, host, API server), interval
//                                sets for those that can hold prefixes: by what the identity selects, never
//                                by its elements of the moment (render-sets.ts identitySetKind).
//   set nw_excl_<exclusion>_v4/6 the cluster addresses CIDR/world identities never match.
//   chain nw_{in,out}_{deny,allow}_<policy>_<hash>
//                                one regular chain per policy, direction and action: that policy's entries.
//   chain input / output         filter hooks, priority filter, policy accept:
//                                loopback, conntrack reply, related, ICMPv4 frag-needed, ICMPv6 always-allow,
//                                (input) other ICMPv6 except echo dropped, failsafe accepts (config
//                                failsafe), [not enforced: accept],
//                                extended-protocol drop, `jump` to every policy's deny chain, then to every
//                                policy's allow chain (policy-name order), [default deny: drop].
//                                Every rule but the jumps: counter + comment "POLICY RULEPATH" or "nodewall <what>".
//   audit mode only:             would-drop rules `goto nw_audit_in|out`, which records the packet in
//                                nw_audit_{in,out}_{v4,v6} (peer . l4proto . port, timeout 10m; port =
//                                type*256+code for ICMP; see auditChainRules) and accepts.
//   enforce mode, dropRecords:   drop rules `goto nw_drop_in|out`, which records the packet in the sets
//                                nw_drop_{in,out}_{v4,v6}[_first] and drops it (render-drop-records.ts).

import { createHash } from 'node:crypto';
import type { DropRecordSettings, RunMode } from '../inventory/types.js';
import type { DirectionPolicy, HostModel } from '../policy/model.js';
import { ownerMarkLines } from './ownership.js';
import { stagedRenderKey, stagedSetLines } from './render-staged.js';
import { dropRecordLines, recordsDrops } from './render-drop-records.js';
import { auditChainNames, auditChainRules, chainNames, directionLayout, renderAuditSet } from './render-rules.js';
import { type SetSpec, RenderError, collectSets, commentText, renderSet, reservedPrefix } from './render-sets.js';
import { replaceUnprintable } from '../api/printable.js';

export interface RenderOptions {
  readonly table: string;
  readonly mode: RunMode;
  /** Config dropRecords (enforce mode only; undefined = off): render-drop-records.ts. */
  readonly dropRecords?: DropRecordSettings | undefined;
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
  /** Rules of the base and policy chains, jumps included (audit chains excluded). */
  readonly ruleCount: number;
  /** Those rules in the order a packet walks them (a policy chain's rules right after the jump to it). */
  readonly rules: readonly RenderedRule[];
  /** Policy chains, then the base chains, by name. */
  readonly chains: ReadonlyMap<string, ChainSpec>;
  /**
   * Hash of what no delta may change: the table comment (node, mode), the ownership mark, the audit sets and
   * chains. Equal skeletons and equal declarations of the sets both sides have allow a chain delta.
   */
  readonly skeletonHash: string;
  /** The table comment and ownership mark, then the audit sets and chains: table body lines (cold-start.ts). */
  readonly skeletonLines: readonly string[];
  /** Comment line that heads every script. */
  readonly header: string;
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

/** A chain of the table other than the audit chains: a base chain (hook set) or a policy chain. */
export interface ChainSpec {
  readonly name: string;
  /** "input" / "output" for the base chains; undefined for policy chains. */
  readonly hook?: string;
  /** Rule texts in order, without indentation. */
  readonly rules: readonly string[];
}

interface Parts {
  readonly head: readonly string[];
  readonly sets: readonly SetSpec[];
  /** Audit sets and chains (mode-dependent, never changed by a delta). */
  readonly audit: readonly string[];
  /** Policy chains of both directions, then the base chains. */
  readonly chains: readonly ChainSpec[];
  readonly rules: readonly RenderedRule[];
  readonly digest: string;
}

/** Everything but the set declarations, rendered once. */
function parts(model: HostModel, opts: RenderOptions, sets: readonly SetSpec[]): Parts {
  // The ownership mark (ownership.ts) comes first: apply and delete refuse tables without it.
  const head = [`\tcomment "${commentText(`nodewall node=${model.node} mode=${opts.mode}`)}"`, ...ownerMarkLines()];
  const audit: string[] = [];
  if (opts.mode === 'audit') {
    for (const direction of ['ingress', 'egress'] as const) {
      audit.push(...renderAuditSet(direction, 'ipv4'), ...renderAuditSet(direction, 'ipv6'));
    }
    for (const direction of ['ingress', 'egress'] as const) {
      audit.push(`\tchain ${auditChainNames[direction]} {`, ...auditChainRules(direction).map((r) => `\t\t${r}`), '\t}');
    }
  }
  // Staged-policy record sets: skeleton like the audit sets (a change of them is a full replace).
  audit.push(...stagedSetLines(model));
  const recordDrops = recordsDrops(opts.mode, opts.dropRecords);
  if (recordDrops) for (const l of dropRecordLines(opts.dropRecords)) audit.push(l);
  // logDrops (config): a rate-limited log rule before each drop (render-drop-log.ts).
  const logDrops = recordDrops && opts.dropRecords.log === true;
  return { head, sets, audit, ...chainsPart(model, opts.mode, recordDrops, logDrops) };
}

interface ChainsPart {
  /** Policy chains of both directions, then the base chains. */
  readonly chains: readonly ChainSpec[];
  readonly rules: readonly RenderedRule[];
  /** sha256 of the chains' text, part of the structure hash. */
  readonly digest: string;
}

/**
 * What rule texts read from model.sets besides the entries: that each peer exists, and its exclusion.
 * undefined when a peer is missing (rendering throws the RenderError then).
 */
function peerSignature(model: HostModel): string | undefined {
  const parts: string[] = [];
  for (const dp of [model.ingress, model.egress]) {
    for (const e of dp.entries) {
      if (e.peer === null) continue;
      const s = Object.hasOwn(model.sets, e.peer) ? model.sets[e.peer] : undefined;
      if (s === undefined) return undefined;
      parts.push(s.exclude ?? '');
    }
  }
  return parts.join(',');
}

interface CachedChains {
  readonly egress: DirectionPolicy;
  readonly datapath: HostModel['datapath'];
  readonly failsafe: HostModel['failsafe'];
  readonly mode: RunMode;
  readonly recordDrops: boolean;
  readonly logDrops: boolean;
  readonly peers: string;
  readonly staged: string;
  readonly value: ChainsPart;
}

// Rule texts depend only on the direction policies, the datapath settings, the mode and each peer's
// exclusion, never on set elements. A model that changed only addresses (the incremental model keeps the
// direction policy objects) reuses the chains of the last render instead of rendering thousands of rules.
const chainsCache = new WeakMap<DirectionPolicy, CachedChains>();

function chainsPart(model: HostModel, mode: RunMode, recordDrops: boolean, logDrops = false): ChainsPart {
  const peers = peerSignature(model);
  const staged = stagedRenderKey(model);
  const hit = chainsCache.get(model.ingress);
  if (hit !== undefined && peers !== undefined && hit.egress === model.egress && hit.datapath === model.datapath && hit.failsafe === model.failsafe && hit.mode === mode
    && hit.recordDrops === recordDrops && hit.logDrops === logDrops && hit.peers === peers && hit.staged === staged) {
    return hit.value;
  }
  const rules: RenderedRule[] = [];
  const policyChains: ChainSpec[] = [];
  const baseChains: ChainSpec[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    const hook = chainNames[direction];
    const layout = directionLayout(model, direction, mode, recordDrops, logDrops);
    const inner = new Map(layout.chains.map((ch) => [ch.name, ch.rules]));
    // Rules in the order a packet walks them (jumps expanded after the jump itself), as `list` shows them.
    for (const text of layout.base) {
      rules.push({ chain: hook, comment: ruleComment(text), text });
      const target = /^jump (\S+) /.exec(text)?.[1];
      for (const r of (target === undefined ? undefined : inner.get(target)) ?? []) rules.push({ chain: target ?? hook, comment: ruleComment(r), text: r });
    }
    for (const ch of layout.chains) policyChains.push({ name: ch.name, rules: ch.rules });
    baseChains.push({ name: hook, hook, rules: layout.base });
  }
  const chains = [...policyChains, ...baseChains];
  const hash = createHash('sha256');
  for (const ch of chains) hash.update(`${chainLines(ch).join('\n')}\n`);
  const value = { chains, rules, digest: hash.digest('hex') };
  if (peers !== undefined) chainsCache.set(model.ingress, { egress: model.egress, datapath: model.datapath, failsafe: model.failsafe, mode, recordDrops, logDrops, peers, staged, value });
  return value;
}

/** The declaration and rules of one chain, indented for the table body. */
export function chainLines(ch: ChainSpec): string[] {
  const lines = [`\tchain ${ch.name} {`];
  if (ch.hook !== undefined) lines.push(`\t\ttype filter hook ${ch.hook} priority filter; policy accept;`);
  for (const r of ch.rules) lines.push(`\t\t${r}`);
  lines.push('\t}');
  return lines;
}

function body(p: Parts, withElements: boolean, marker: string | null): string[] {
  const lines = [...p.head];
  if (marker !== null) lines.push(`\tset ${marker} {`, '\t\ttype inet_proto', '\t\tcomment "nodewall structure marker"', '\t}');
  // Loops, not push(...spread): a spread of 100k+ lines overflows the call stack.
  for (const s of p.sets) for (const l of renderSet(s, withElements)) lines.push(l);
  for (const l of p.audit) lines.push(l);
  // Policy chains before the base chains that jump to them.
  for (const ch of p.chains) for (const l of chainLines(ch)) lines.push(l);
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
  // Everything but the elements: table name, head, set declarations, audit part, chains (by their digest).
  const h = createHash('sha256').update(`${opts.table}\n${p.head.join('\n')}\n`);
  for (const s of p.sets) h.update(`${renderSet(s, false).join('\n')}\n`);
  const structureHash = h.update(`${p.audit.join('\n')}\n${p.digest}`).digest('hex').slice(0, 16);
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
    chains: new Map(p.chains.map((ch) => [ch.name, ch])),
    skeletonLines: [...p.head, ...p.audit],
    header,
    skeletonHash: createHash('sha256').update([opts.table, ...p.head, ...p.audit].join('\n')).digest('hex').slice(0, 16),
  };
}

/** The complete script: fed to `nft -f -` it creates or atomically replaces only nodewall's table. */
export function renderRuleset(model: HostModel, opts: RenderOptions): string {
  return renderPlan(model, opts).script;
}

export { RenderError };
