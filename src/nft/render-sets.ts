// Named nft sets for the identity sets of a HostModel: one set per identity
// per address family, plus the shared exclusion sets.
//
// A set's declaration (hash or `flags interval`) depends only on what its identity CAN hold, never on the
// elements it holds now: a declaration change changes the structure hash and forces a full table replace,
// so a pod or API-server event must never flip it (issue 9). Identities fed only by single addresses (pod,
// node, host, health, ingress and API-server addresses) are hash sets; the model merges neighbouring
// addresses into prefixes ("198.51.100.4/31"), which are written out as their addresses again. Everything
// that can hold a real prefix (CIDR peers, world, cluster, exclusions) is an interval set.
// Why not interval for all: nft 1.0.6 reads the elements of every interval set of the ruleset before any
// `add element` / `delete element` (overlap checks), so one pod event into 100k addresses held in interval
// sets costs seconds, into hash sets milliseconds (peers.md §2.3).

import type { ExclusionName, Family, HostModel, IdentitySet } from '../policy/model.js';
import { replaceUnprintable } from '../api/printable.js';
import { formatAddress, parsePrefix } from '../policy/cidr.js';

export type SetKind = 'hash' | 'interval';

export interface SetSpec {
  /** nft set name, e.g. "world_v4". */
  readonly name: string;
  readonly family: Family;
  readonly kind: SetKind;
  /** Canonical CIDR strings ("192.0.2.1/32") as the kernel holds them, in model order (hash sets: single addresses only). */
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

/** Entities whose addresses are single node/host/API-server addresses, never a configured prefix. */
const singleAddressEntities: ReadonlySet<string> = new Set([
  'entity:host', 'entity:remote-node', 'entity:health', 'entity:ingress', 'entity:kube-apiserver',
]);

/** The declaration of an identity's sets, from what it selects alone (its kind and, for entities, which). */
export function identitySetKind(identity: Pick<IdentitySet, 'kind' | 'label'>): SetKind {
  if (identity.kind === 'endpoints' || identity.kind === 'nodes') return 'hash';
  if (identity.kind === 'entity' && singleAddressEntities.has(identity.label)) return 'hash';
  return 'interval';
}

/** Addresses one hash set may be written out as; a model that needs more is refused, never half-rendered. */
export const maxHashSetAddresses = 1 << 21;

// Model element lists are immutable: the expansion of one list object is computed once (a render of an
// unchanged 100k-address set then costs nothing).
const expandCache: Record<Family, WeakMap<readonly string[], readonly string[]>> = { ipv4: new WeakMap(), ipv6: new WeakMap() };

// The written-out addresses of each prefix of a set's last expansion, by set name and family: when one pod
// changed a 100k-address set, its new list is assembled from these pieces instead of formatting every
// address again (~1 ms instead of ~90 ms). A piece depends on the prefix text alone, so a stale entry is
// never wrong; collectSets drops the entries of sets no longer rendered.
const pieceCache = new Map<string, Map<string, readonly string[]>>();

function writtenOut(prefix: string, family: Family): string[] {
  const p = parsePrefix(prefix);
  const out: string[] = [];
  if (family === 'ipv4') {
    const base = Number(p.bits);
    const count = 2 ** (32 - p.len);
    for (let i = 0; i < count; i++) {
      const n = base + i;
      out.push(`${Math.floor(n / 16777216)}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/32`);
    }
    return out;
  }
  const count = 1n << BigInt(128 - p.len);
  for (let i = 0n; i < count; i++) out.push(`${formatAddress(family, p.bits + i)}/128`);
  return out;
}

/**
 * The elements of a hash set: `elements` with every prefix written out as its single addresses
 * ("198.51.100.4/31" -> "198.51.100.4/32", "198.51.100.5/32"), in order. The list itself when it holds no
 * prefix (the usual case). Throws RenderError past maxHashSetAddresses.
 */
export function hashSetElements(elements: readonly string[], family: Family, setName = 'set', keepPieces = true): readonly string[] {
  const cached = expandCache[family].get(elements);
  if (cached !== undefined) return cached;
  const full = `/${fullLength[family]}`;
  let out: readonly string[] = elements;
  if (!elements.every((e) => e.endsWith(full) || !e.includes('/'))) {
    const key = `${setName}/${family}`;
    const previous = keepPieces ? pieceCache.get(key) : undefined;
    const pieces = new Map<string, readonly string[]>();
    const expanded: string[] = [];
    for (const e of elements) {
      if (e.endsWith(full) || !e.includes('/')) {
        expanded.push(e);
        continue;
      }
      const len = Number(e.slice(e.lastIndexOf('/') + 1));
      if (!Number.isInteger(len) || expanded.length + 2 ** (fullLength[family] - len) > maxHashSetAddresses) {
        throw new RenderError(`${setName}: more than ${maxHashSetAddresses} addresses (${e}) for a set of single addresses`);
      }
      const piece = previous?.get(e) ?? pieces.get(e) ?? writtenOut(e, family);
      pieces.set(e, piece);
      for (const a of piece) expanded.push(a);
    }
    if (keepPieces) pieceCache.set(key, pieces);
    out = expanded;
  }
  expandCache[family].set(elements, out);
  return out;
}

/** Forgets the written-out pieces of every set not in `rendered` (names as passed to hashSetElements). */
function prunePieces(rendered: ReadonlySet<string>): void {
  for (const key of pieceCache.keys()) if (!rendered.has(key)) pieceCache.delete(key);
}

/**
 * A model delta (merged prefixes, e.g. remove 198.51.100.4/32, add 198.51.100.4/31) as the element delta of
 * a set of this kind: for a hash set both sides written out as addresses and what is on both sides dropped
 * (add 198.51.100.5). For whoever turns the incremental model's set deltas straight into `add element` /
 * `delete element` without diffing whole lists.
 */
export function kernelDelta(
  delta: { readonly add: readonly string[]; readonly remove: readonly string[] },
  family: Family,
  kind: SetKind,
  setName?: string,
): { add: readonly string[]; remove: readonly string[] } {
  if (kind === 'interval') return delta;
  const add = hashSetElements(delta.add, family, setName, false);
  const removed = new Set(hashSetElements(delta.remove, family, setName, false));
  const kept: string[] = [];
  for (const e of add) if (!removed.delete(e)) kept.push(e);
  return { add: kept, remove: [...removed] };
}

/** The elements a set of this kind holds in the kernel. */
export function kernelElements(elements: readonly string[], family: Family, kind: SetKind, setName?: string): readonly string[] {
  return kind === 'hash' ? hashSetElements(elements, family, setName) : elements;
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
/**
 * Declaration lines of a dynamic record set (audit and staged records: address . protocol . port, entries
 * expire); `comment` is already escaped (commentText).
 */
export function recordSetLines(name: string, family: Family, size: number, timeout: string, comment: string): string[] {
  return [
    `\tset ${name} {`,
    `\t\ttype ${family === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr'} . inet_proto . inet_service`,
    `\t\tsize ${size}`,
    '\t\tflags dynamic,timeout',
    `\t\ttimeout ${timeout}`,
    `\t\tcomment "${comment}"`,
    '\t}',
  ];
}

export function commentText(text: string): string {
  const clean = replaceUnprintable(text.replace(/["\\]/g, "'"), '?');
  if (Buffer.byteLength(clean) <= 128) return clean;
  return `${utf8Prefix(clean, 120)}~${shortHash(clean)}`;
}

/** The longest prefix of `text` within `maxBytes` of UTF-8, never splitting a character (a surrogate pair). */
export function utf8Prefix(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    bytes += Buffer.byteLength(ch);
    if (bytes > maxBytes) break;
    end += ch.length;
  }
  return text.slice(0, end);
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
      const name = identitySetName(key, family);
      const kind = identitySetKind(identity);
      out.push({
        name,
        family,
        kind,
        elements: kernelElements(family === 'ipv4' ? identity.v4 : identity.v6, family, kind, name),
        comment: commentText(identity.label),
      });
    }
  }
  prunePieces(new Set(out.filter((s) => s.kind === 'hash').map((s) => `${s.name}/${s.family}`)));
  for (const exclusion of ['cluster', 'cluster_non_node'] as const) {
    const ex = model.exclusions[exclusion];
    for (const family of ['ipv4', 'ipv6'] as const) {
      const elements = family === 'ipv4' ? ex.v4 : ex.v6;
      out.push({
        name: exclusionSetName(exclusion, family),
        family,
        // Pod CIDRs can be in them at any time.
        kind: 'interval',
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
