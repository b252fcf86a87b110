// Element deltas: when only set contents changed since the last apply, send
// `delete element` / `add element` in one transaction instead of rewriting the
// table (peers.md §2.3: ~17x cheaper at 100k elements).

import type { Family } from '../policy/model.js';
import type { RenderedRuleset } from './render.js';
import { elementText } from './render-sets.js';

/** What apply compares against: the kernel's table (read back) or the last rendered ruleset. */
export interface PreviousState {
  readonly structureHash: string | null;
  readonly sets: ReadonlyMap<string, { readonly elements: readonly string[] }>;
  /** True when the elements are already canonical (a RenderedRuleset); kernel read-backs get normalised. */
  readonly canonical?: boolean;
}

export interface SetDelta {
  readonly set: string;
  readonly family: Family;
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

export type ApplyPlan =
  | { readonly kind: 'noop'; readonly reason: string }
  | { readonly kind: 'delta'; readonly script: string; readonly deltas: readonly SetDelta[]; readonly added: number; readonly removed: number }
  | { readonly kind: 'full'; readonly script: string; readonly reason: string };

/** RFC 5952 text of an IPv6 address (lower case, longest zero run compressed). */
function canonicalV6(addr: string): string {
  let text = addr.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  const parts = groups.map((g) => Number.parseInt(g, 16).toString(16));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < parts.length; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < parts.length && parts[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

/** "2001:DB8:0::1" -> "2001:db8::1/128", "192.0.2.1" -> "192.0.2.1/32"; ranges and concatenations unchanged. */
export function normalizeElement(element: string): string {
  if (element.includes(' ') || /^[^/]*-/.test(element)) return element;
  const [addr = '', len] = element.split('/');
  if (addr.includes(':')) return `${canonicalV6(addr)}/${len ?? 128}`;
  return `${addr}/${len ?? 32}`;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function computeDeltas(prev: PreviousState, next: RenderedRuleset): SetDelta[] {
  const deltas: SetDelta[] = [];
  const norm = prev.canonical === true ? (e: string) => e : normalizeElement;
  for (const [name, spec] of next.sets) {
    const old = prev.sets.get(name)?.elements ?? [];
    // Most sets do not change between two models: an ordered compare avoids building sets for them.
    if (prev.canonical === true && sameList(old, spec.elements)) continue;
    const before = new Set(old.map(norm));
    const after = new Set(spec.elements.map(norm));
    const add = [...after].filter((e) => !before.has(e));
    const remove = [...before].filter((e) => !after.has(e));
    if (add.length > 0 || remove.length > 0) deltas.push({ set: name, family: spec.family, add, remove });
  }
  return deltas;
}

const chunk = 5000;

function elementStatements(verb: 'add' | 'delete', table: string, d: SetDelta, elements: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < elements.length; i += chunk) {
    const texts = elements.slice(i, i + chunk).map((e) => elementText(e, d.family));
    out.push(`${verb} element inet ${table} ${d.set} { ${texts.join(', ')} }`);
  }
  return out;
}

/**
 * One transaction: flushing the (always empty) structure marker set first
 * makes the whole delta fail if the kernel's table no longer has this
 * structure, so a stale delta can never land on a different ruleset.
 */
export function renderDelta(table: string, markerSet: string, deltas: readonly SetDelta[]): string {
  const lines = [`flush set inet ${table} ${markerSet}`];
  for (const d of deltas) for (const l of elementStatements('delete', table, d, d.remove)) lines.push(l);
  for (const d of deltas) for (const l of elementStatements('add', table, d, d.add)) lines.push(l);
  return `${lines.join('\n')}\n`;
}

/** Delta when the previous state has the same structure, full replace otherwise, noop when nothing changed. */
export function planApply(prev: PreviousState | null, next: RenderedRuleset): ApplyPlan {
  // The full script is rendered only when someone reads it (apply overlaps that with nft -c).
  const full = (reason: string): ApplyPlan => ({
    kind: 'full',
    reason,
    get script() {
      return next.script;
    },
  });
  if (prev === null) return full('no nodewall table in the kernel');
  if (prev.structureHash !== next.structureHash) {
    const reason =
      prev.structureHash === null
        ? 'the table has no structure marker'
        : `structure changed (${prev.structureHash} -> ${next.structureHash})`;
    return full(reason);
  }
  const deltas = computeDeltas(prev, next);
  if (deltas.length === 0) return { kind: 'noop', reason: 'the kernel already holds this ruleset' };
  const added = deltas.reduce((n, d) => n + d.add.length, 0);
  const removed = deltas.reduce((n, d) => n + d.remove.length, 0);
  return { kind: 'delta', script: renderDelta(next.table, next.markerSet, deltas), deltas, added, removed };
}

export interface RuleChange {
  readonly chain: string;
  /** Rule comment: "POLICY RULEPATH" or one of nodewall's fixed comments. */
  readonly comment: string;
  /** Rules with this comment added (positive) or removed (negative). */
  readonly count: number;
}

export interface PlanChanges {
  readonly sets: readonly SetDelta[];
  readonly setsAdded: readonly string[];
  readonly setsRemoved: readonly string[];
  readonly rules: readonly RuleChange[];
}

/** What would change between the previous state and the next ruleset, by set element and by rule comment. */
export function describeChanges(
  prev: (PreviousState & { readonly rules?: readonly { readonly chain: string; readonly comment?: string }[] }) | null,
  next: RenderedRuleset,
): PlanChanges {
  const prevSets = prev?.sets ?? new Map<string, { elements: readonly string[] }>();
  const isOwnSet = (n: string) => !n.startsWith('nw_structure_') && !n.startsWith('nw_audit_') && n !== 'nw_owner';
  const setsAdded = [...next.sets.keys()].filter((n) => !prevSets.has(n));
  const setsRemoved = [...prevSets.keys()].filter((n) => isOwnSet(n) && !next.sets.has(n));
  const counts = new Map<string, number>();
  const key = (chain: string, comment: string) => `${chain}\u0000${comment}`;
  for (const r of next.rules) counts.set(key(r.chain, r.comment), (counts.get(key(r.chain, r.comment)) ?? 0) + 1);
  for (const r of prev?.rules ?? []) {
    if (r.chain !== 'input' && r.chain !== 'output') continue;
    const k = key(r.chain, r.comment ?? '');
    counts.set(k, (counts.get(k) ?? 0) - 1);
  }
  const rules: RuleChange[] = [];
  for (const [k, count] of counts) {
    if (count === 0) continue;
    const [chain = '', comment = ''] = k.split('\u0000');
    rules.push({ chain, comment, count });
  }
  return { sets: computeDeltas(prev ?? { structureHash: null, sets: prevSets }, next), setsAdded, setsRemoved, rules };
}
