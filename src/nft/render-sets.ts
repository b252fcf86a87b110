// Named nft sets for the identity sets of a HostModel: one set per identity
// per address family, plus the shared exclusion sets. Exact-address sets are
// hash sets, anything with a shorter prefix is an interval set (peers.md §2.3:
// single adds into interval sets are far more expensive).

import type { ExclusionName, Family, HostModel, IdentitySet } from '../policy/model.js';
import { replaceUnprintable } from '../api/printable.js';

export type SetKind = 'hash' | 'interval';

export interface SetSpec {
  /** nft set name, e.g. "world_v4". */
  readonly name: string;
  readonly family: Family;
  readonly kind: SetKind;
  /** Canonical CIDR strings ("192.0.2.1/32"), in model order. */
  readonly elements: readonly string[];
  /** Shown by `nft list` and `nodewall list`. */
  readonly comment: string;
}

/** Names starting with this prefix belong to nodewall's own objects (exclusions, audit, structure marker). */
export const reservedPrefix = 'nw_';

export class RenderError extends Error {
  override readonly name = 'RenderError';
}

export function familySuffix(family: Family): string {
  return family === 'ipv4' ? 'v4' : 'v6';
}

export function identitySetName(identity: string, family: Family): string {
  return `${identity}_${familySuffix(family)}`;
}

export function exclusionSetName(exclusion: ExclusionName, family: Family): string {
  return `${reservedPrefix}excl_${exclusion}_${familySuffix(family)}`;
}

const fullLength: Record<Family, number> = { ipv4: 32, ipv6: 128 };

// Model element lists are immutable: the answer for one list object is computed once (a render of an
// unchanged 100k-address set then costs nothing).
const exactCache: Record<Family, WeakMap<readonly string[], boolean>> = { ipv4: new WeakMap(), ipv6: new WeakMap() };

/** Hash when every element is a single address; an empty set follows what its identity usually holds. */
export function setKindFor(elements: readonly string[], family: Family, emptyKind: SetKind): SetKind {
  if (elements.length === 0) return emptyKind;
  let exact = exactCache[family].get(elements);
  if (exact === undefined) {
    const full = `/${fullLength[family]}`;
    exact = elements.every((e) => e.endsWith(full) || !e.includes('/'));
    exactCache[family].set(elements, exact);
  }
  return exact ? 'hash' : 'interval';
}

function emptyKindOf(identity: IdentitySet): SetKind {
  return identity.kind === 'endpoints' || identity.kind === 'nodes' ? 'hash' : 'interval';
}

/** "192.0.2.1/32" -> "192.0.2.1"; prefixes stay as written. */
export function elementText(cidr: string, family: Family): string {
  const full = `/${fullLength[family]}`;
  return cidr.endsWith(full) ? cidr.slice(0, -full.length) : cidr;
}

/**
 * An nft double-quoted string cannot hold a double quote or a backslash, nft stops reading at a NUL and a
 * line ends at a newline: all become `'` or `?`, whatever reached the renderer (defence in depth: names and
 * labels are validated long before). Comments are capped at 128 bytes by nft.
 */
export function commentText(text: string): string {
  const clean = replaceUnprintable(text.replace(/["\\]/g, "'"), '?');
  if (Buffer.byteLength(clean) <= 128) return clean;
  let cut = clean.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  return `${cut}~${shortHash(clean)}`;
}

function shortHash(text: string): string {
  // FNV-1a, enough to keep truncated comments apart.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0').slice(0, 7);
}

const identityName = /^[a-z0-9_]{1,40}$/;

/** Every set the ruleset declares, sorted by name: identities (both families, even when empty) and exclusions. */
export function collectSets(model: HostModel): SetSpec[] {
  const out: SetSpec[] = [];
  for (const key of Object.keys(model.sets).sort()) {
    const identity = model.sets[key];
    if (identity === undefined) continue;
    if (identity.name !== key) throw new RenderError(`identity set key "${key}" holds a set named "${identity.name}"`);
    if (!identityName.test(key)) throw new RenderError(`identity set name "${key}" is not [a-z0-9_]{1,40}`);
    if (key.startsWith(reservedPrefix)) throw new RenderError(`identity set name "${key}" uses the reserved prefix ${reservedPrefix}`);
    for (const family of ['ipv4', 'ipv6'] as const) {
      const elements = family === 'ipv4' ? identity.v4 : identity.v6;
      out.push({
        name: identitySetName(key, family),
        family,
        kind: setKindFor(elements, family, emptyKindOf(identity)),
        elements,
        comment: commentText(identity.label),
      });
    }
  }
  for (const exclusion of ['cluster', 'cluster_non_node'] as const) {
    const ex = model.exclusions[exclusion];
    for (const family of ['ipv4', 'ipv6'] as const) {
      const elements = family === 'ipv4' ? ex.v4 : ex.v6;
      out.push({
        name: exclusionSetName(exclusion, family),
        family,
        kind: setKindFor(elements, family, 'interval'),
        elements,
        comment: `nodewall exclusion ${exclusion}`,
      });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const elementsPerLine = 8;

/** The set declaration; with `withElements: false` only its structure (used for the structure hash and cheap checks). */
export function renderSet(spec: SetSpec, withElements: boolean): string[] {
  const lines = [`\tset ${spec.name} {`, `\t\ttype ${spec.family === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr'}`];
  if (spec.kind === 'interval') lines.push('\t\tflags interval');
  lines.push(`\t\tcomment "${spec.comment}"`);
  if (withElements && spec.elements.length > 0) {
    const texts = spec.elements.map((e) => elementText(e, spec.family));
    const chunks: string[] = [];
    for (let i = 0; i < texts.length; i += elementsPerLine) chunks.push(texts.slice(i, i + elementsPerLine).join(', '));
    lines.push(`\t\telements = { ${chunks.join(',\n\t\t\t')} }`);
  }
  lines.push('\t}');
  return lines;
}
