// The element delta of a pod event straight from the incremental model's set deltas, instead of
// rendering the whole ruleset and diffing every set against the last one (render.ts + set-delta.ts
// computeDeltas, which stay the reference and the fallback).
//
// It is used only where it provably gives the same kernel result:
// - the previous state is the ruleset applyModel rendered (or derived here) for a model M0, with the same
//   table, mode and drop-record settings (noted by noteApplied);
// - the new model is reached from M0 by a chain of element-only updates (the caller's lookup: the
//   StateBuilder records each incremental update that changed set elements and nothing else);
// - along that chain every model part the rules, set declarations, head and audit lines are made from is
//   the same object (entries, datapath, failsafe, staged part, node...), and every set has the same name,
//   kind, label and exclusion: so the structure (hash, chains, declarations) is that of M0;
// - the model deltas along the chain, composed, are what the elements changed by; kernelDelta writes them
//   out as the kernel holds them (hash sets: single addresses).
// The result's sets hold the new models' lists, written out only when read (a later render+diff fallback,
// a cold start, a dry run), so a pod event allocates nothing per unchanged set. The full script, when read,
// is rendered from the model itself.

import type { DropRecordSettings, RunMode } from '../inventory/types.js';
import type { ModelSetDelta } from '../policy/incremental-model.js';
import type { ExclusionName, Family, HostModel, IdentitySet } from '../policy/model.js';
import { type RenderedRuleset, renderPlan } from './render.js';
import { type SetKind, type SetSpec, exclusionSetName, identitySetKind, identitySetName, kernelDelta, kernelElements } from './render-sets.js';
import type { PreviousState, SetDelta } from './set-delta.js';

/** One element-only step: `to` is `from` with these set deltas applied. */
export interface ModelDeltaLink {
  readonly from: HostModel;
  readonly deltas: readonly ModelSetDelta[];
}

/** The step that made `model`, when it was an element-only update of another model (else undefined). */
export type ModelDeltaLookup = (model: HostModel) => ModelDeltaLink | undefined;

export interface DeltaRenderOptions {
  readonly table: string;
  readonly mode: RunMode;
  readonly dropRecords?: DropRecordSettings | undefined;
}

interface Applied {
  readonly model: HostModel;
  readonly key: string;
  readonly elements: number;
}

/** What each state applyModel handed out was rendered from (states are never modified). */
const appliedStates = new WeakMap<object, Applied>();

function optionsKey(opts: DeltaRenderOptions): string {
  return JSON.stringify([opts.table, opts.mode, opts.dropRecords ?? null]);
}

/** Notes that `state` is the ruleset of `model` rendered with `opts`, holding `elements` elements. */
export function noteApplied(state: RenderedRuleset, model: HostModel, opts: DeltaRenderOptions, elements: number): void {
  appliedStates.set(state, { model, key: optionsKey(opts), elements });
}

/** Longest chain of element-only updates followed back (a pass makes one or two). */
const maxChain = 64;

/** Same structure: every part the renderer reads besides set elements is the same (identity, or equal set declarations). */
function sameStructure(a: HostModel, b: HostModel): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    if (k === 'sets' || k === 'exclusions') continue;
    if (!Object.hasOwn(b, k) || (a as unknown as Record<string, unknown>)[k] !== (b as unknown as Record<string, unknown>)[k]) return false;
  }
  if (a.sets === b.sets) return true;
  const names = Object.keys(a.sets);
  const other = Object.keys(b.sets);
  if (names.length !== other.length) return false;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (other[i] !== name) return false;
    const x = a.sets[name]!;
    const y = b.sets[name]!;
    if (x !== y && (x.name !== y.name || x.kind !== y.kind || x.label !== y.label || x.exclude !== y.exclude)) return false;
  }
  return true;
}

/** The net change of one model set over a chain of steps: prefix -> +1 (added) / -1 (removed). */
type Net = Map<string, 1 | -1>;

function compose(chain: readonly ModelDeltaLink[]): Map<string, { readonly delta: ModelSetDelta; readonly net: Net }> {
  const out = new Map<string, { delta: ModelSetDelta; net: Net }>();
  for (const link of chain) {
    for (const d of link.deltas) {
      const key = `${d.exclusion ? 'x' : 'i'}|${d.family}|${d.set}`;
      let entry = out.get(key);
      if (entry === undefined) {
        entry = { delta: d, net: new Map() };
        out.set(key, entry);
      }
      const net = entry.net;
      for (const e of d.remove) {
        if (net.get(e) === 1) net.delete(e);
        else net.set(e, -1);
      }
      for (const e of d.add) {
        if (net.get(e) === -1) net.delete(e);
        else net.set(e, 1);
      }
    }
  }
  return out;
}

/** A set of the new model whose kernel elements are written out on first read. */
function lazySet(name: string, family: Family, kind: SetKind, comment: string, list: readonly string[]): SetSpec {
  let elements: readonly string[] | undefined;
  return {
    name,
    family,
    kind,
    comment,
    get elements(): readonly string[] {
      elements ??= kernelElements(list, family, kind, name);
      return elements;
    },
  };
}

export interface ElementDelta {
  /** The new model's ruleset: the previous one's structure, the new model's elements. */
  readonly rendered: RenderedRuleset;
  /** Kernel element changes, by set name. */
  readonly deltas: readonly SetDelta[];
  readonly elements: number;
}

/**
 * The element delta from `previous` to `model`, when provably equal to render + diff (see the top of this
 * file); undefined otherwise (the caller renders and diffs).
 */
export function elementDelta(model: HostModel, opts: DeltaRenderOptions, previous: PreviousState, lookup: ModelDeltaLookup): ElementDelta | undefined {
  const applied = appliedStates.get(previous);
  if (applied === undefined || applied.key !== optionsKey(opts)) return undefined;
  const prev = previous as RenderedRuleset;
  const chain: ModelDeltaLink[] = [];
  for (let m = model; m !== applied.model;) {
    const link = chain.length < maxChain ? lookup(m) : undefined;
    if (link === undefined || !sameStructure(link.from, m)) return undefined;
    chain.push(link);
    m = link.from;
  }
  chain.reverse();
  const sets = new Map(prev.sets);
  const deltas: SetDelta[] = [];
  let elements = applied.elements;
  for (const { delta: d, net } of compose(chain).values()) {
    if (net.size === 0) continue;
    let name: string;
    let kind: SetKind;
    let comment: string;
    let list: readonly string[];
    if (d.exclusion) {
      if (d.set !== 'cluster' && d.set !== 'cluster_non_node') return undefined;
      const ex = model.exclusions[d.set as ExclusionName];
      name = exclusionSetName(d.set as ExclusionName, d.family);
      kind = 'interval';
      list = d.family === 'ipv4' ? ex.v4 : ex.v6;
    } else {
      const s: IdentitySet | undefined = Object.hasOwn(model.sets, d.set) ? model.sets[d.set] : undefined;
      if (s === undefined) return undefined;
      name = identitySetName(d.set, d.family);
      kind = identitySetKind(s);
      list = d.family === 'ipv4' ? s.v4 : s.v6;
    }
    const before = prev.sets.get(name);
    if (before === undefined || before.kind !== kind || before.family !== d.family) return undefined;
    comment = before.comment;
    const add: string[] = [];
    const remove: string[] = [];
    for (const [e, sign] of net) (sign === 1 ? add : remove).push(e);
    const k = kernelDelta({ add, remove }, d.family, kind, name);
    sets.set(name, lazySet(name, d.family, kind, comment, list));
    if (k.add.length === 0 && k.remove.length === 0) continue;
    deltas.push({ set: name, family: d.family, add: k.add, remove: k.remove });
    elements += k.add.length - k.remove.length;
  }
  deltas.sort((a, b) => (a.set < b.set ? -1 : a.set > b.set ? 1 : 0));
  let full: string | undefined;
  const rendered: RenderedRuleset = {
    table: prev.table,
    mode: prev.mode,
    get script(): string {
      full ??= renderPlan(model, opts).script;
      return full;
    },
    get structureScript(): string {
      return prev.structureScript;
    },
    structureHash: prev.structureHash,
    markerSet: prev.markerSet,
    sets,
    canonical: true,
    ruleCount: prev.ruleCount,
    rules: prev.rules,
    chains: prev.chains,
    skeletonLines: prev.skeletonLines,
    header: prev.header,
    skeletonHash: prev.skeletonHash,
  };
  return { rendered, deltas, elements };
}
