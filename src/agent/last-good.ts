// "Bad input never weakens the firewall", per policy name:
// - a policy that is now invalid stays in force in its last good version;
// - a file that cannot be read or parsed keeps the last good versions of the
//   policies it held, and so does a file that is still changing (unsettled) or
//   that is empty now (suspect: a truncated file looks exactly like that; to
//   remove its policies, delete the file);
// - a brand-new invalid policy is simply not applied;
// - a policy whose file was deleted (no error) is gone, as intended;
// - a refused version (refused-changes.ts: a rollout probe broke, ...) is handled like an invalid one:
//   its last good version stays, a refused new policy is withheld.
// Pure: the state builder is passed in, so tests use a fake.

import type { PolicyDocument, KubeObject } from '../api/types.js';
import type { Problem } from '../api/problem.js';
import type { ObjectFeed } from '../inventory/object-feed.js';
import type { MergeMemo } from './merge-memo.js';

/** Same shape as the api helper's LoadResult. */
export interface Loaded {
  readonly policies: PolicyDocument[];
  readonly objects: KubeObject[];
  readonly problems: Problem[];
  /** Where `objects` stands in its source's history (the Kubernetes source), when one file holds them all. */
  readonly objectFeed?: ObjectFeed;
}

/** One source file as read now. */
export interface LoadedFile {
  readonly file: string;
  /** sha256 of the text, the key into the persisted text store. */
  readonly textHash: string;
  readonly load: Loaded;
}

export interface GoodEntry {
  readonly key: string;
  readonly file: string;
  readonly textHash: string;
  readonly doc: PolicyDocument;
}

export type LastGood = ReadonlyMap<string, GoodEntry>;

/** Why a file's policies keep their last good versions. */
export type HeldReason = 'unreadable' | 'unsettled' | 'empty';

export interface HeldFile {
  readonly file: string;
  readonly reason: HeldReason;
}

export interface Kept {
  readonly policy: string;
  readonly file: string;
  /**
   * "invalid": the current version has errors; "unreadable": its file could not be read or parsed;
   * "unsettled": its file is still changing; "empty": its file is empty now (suspect).
   */
  readonly reason: 'invalid' | 'refused' | HeldReason;
}

export interface MergeResult<S> {
  readonly state: S;
  /** Policies whose last good version is in force instead of the current input. */
  readonly kept: readonly Kept[];
  /** Invalid policies with no last good version: not applied. */
  readonly rejected: readonly { policy: string; file: string }[];
  /** Never changed once handed out (the merge memo shares it between passes): copy it to change it. */
  readonly lastGood: LastGood;
  /** Problems of the current (bad) versions that were replaced: the final state no longer contains them. */
  readonly replacedProblems: readonly Problem[];
  /**
   * Policies in force before and gone now: their file was deleted (`fileRead` false) or no longer holds
   * them (`fileRead` true; an edit, or a file cut short at a document boundary: worth a log line).
   */
  readonly removed: readonly { policy: string; file: string; fileRead: boolean }[];
  /** Refused versions of policies with no other last good version: left out (refused-changes.ts). */
  readonly withheld?: readonly { policy: string; file: string }[];
}

export interface BuiltState {
  readonly policies: readonly PolicyDocument[];
  readonly valid: readonly PolicyDocument[];
  readonly problems: readonly Problem[];
}

export function policyKey(doc: Pick<PolicyDocument, 'name' | 'namespace'>): string {
  return doc.namespace === undefined ? doc.name : `${doc.namespace}/${doc.name}`;
}

/**
 * Build the state from the current files, falling back to last good
 * versions where the input is bad. `unreadable` lists files that exist in
 * the sources but could not be read (a plain path), or are held for another
 * reason (unsettled, empty). `build` is called once when all input
 * is good, twice otherwise (the first call finds the invalid policies).
 */
export function mergeWithLastGood<S extends BuiltState>(
  files: readonly LoadedFile[],
  unreadable: readonly (string | HeldFile)[],
  prev: LastGood,
  build: (load: Loaded) => S,
  /** Is this (valid) version refused (refused-changes.ts)? Then it is handled like an invalid one. */
  refused?: (key: string, doc: PolicyDocument) => boolean,
  /** Remembers the bookkeeping of the last call (merge-memo.ts); never used together with `refused`. */
  memo?: MergeMemo,
): MergeResult<S> {
  const fileOf = new Map<string, LoadedFile>();
  // One file holding every object (the Kubernetes source's objects entry): its list as it is, not a
  // copy of 100k+ objects per pass. Nobody writes to a load's lists.
  // Counted by the feed's size when it gives one: the Kubernetes source makes its list only when read.
  const withObjects = files.filter((f) => (f.load.objectFeed?.size ?? f.load.objects.length) > 0);
  const only = withObjects.length === 1 ? withObjects[0]! : undefined;
  const feed = only?.load.objectFeed;
  // A getter, not a spread (a spread would read the list at once).
  const current: Loaded =
    only === undefined
      ? { policies: [], objects: [], problems: [] }
      : {
          policies: [],
          get objects() {
            return only.load.objects;
          },
          problems: [],
          ...(feed === undefined ? {} : { objectFeed: feed }),
        };
  for (const f of files) {
    // Loops, not push(...spread): one file may hold 100k+ objects.
    for (const x of f.load.policies) current.policies.push(x);
    if (withObjects.length > 1) for (const x of f.load.objects) current.objects.push(x);
    for (const x of f.load.problems) current.problems.push(x);
  }
  // A file whose parse failed as a whole (an error not tied to a policy) counts as unreadable,
  // and so does every file under a source directory that is missing or unreadable.
  const brokenFiles = new Map<string, HeldReason>();
  for (const u of unreadable) {
    const h = typeof u === 'string' ? { file: u, reason: 'unreadable' as const } : u;
    if (!brokenFiles.has(h.file)) brokenFiles.set(h.file, h.reason);
  }
  for (const p of current.problems) {
    if (p.severity === 'error' && p.policy === undefined && !brokenFiles.has(p.pos.file)) brokenFiles.set(p.pos.file, 'unreadable');
  }

  const memoKey = memo !== undefined && refused === undefined ? memo.inputKey(files, unreadable, prev) : undefined;
  const first = build(current);
  if (memoKey !== undefined) {
    const hit = memo!.result(memoKey, first);
    if (hit !== undefined) return { ...hit, state: first };
  }
  for (const f of files) for (const p of f.load.policies) fileOf.set(policyKey(p), f);
  const validKeys = new Set(first.valid.map(policyKey));
  const present = new Map(first.policies.map((p) => [policyKey(p), p] as const));
  // Invalid: refused by the builder, or named by a load error (a policy the
  // loader could not decode may be missing from `policies` altogether).
  const invalid = new Map<string, string>();
  for (const [key, doc] of present) if (!validKeys.has(key)) invalid.set(key, doc.pos.file);
  for (const p of current.problems) {
    if (p.severity === 'error' && p.policy !== undefined && !invalid.has(p.policy)) invalid.set(p.policy, p.pos.file);
  }

  const kept: Kept[] = [];
  const rejected: { policy: string; file: string }[] = [];
  const substitute = new Map<string, GoodEntry>();
  for (const [key, file] of invalid) {
    const good = prev.get(key);
    if (good !== undefined) {
      substitute.set(key, good);
      kept.push({ policy: key, file, reason: 'invalid' });
    } else if (!validKeys.has(key)) {
      rejected.push({ policy: key, file });
    }
  }
  const withheld = new Map<string, string>();
  if (refused !== undefined) {
    for (const doc of first.valid) {
      const key = policyKey(doc);
      if (!refused(key, doc)) continue;
      const good = prev.get(key);
      const file = fileOf.get(key)?.file ?? doc.pos.file;
      // A last good version equal to the refused one cannot undo anything: the agent refuses the input instead.
      if (good !== undefined && good.doc.hash !== doc.hash) {
        substitute.set(key, good);
        kept.push({ policy: key, file, reason: 'refused' });
      } else if (good === undefined) {
        withheld.set(key, file);
      }
    }
  }
  for (const good of prev.values()) {
    if (present.has(good.key) || substitute.has(good.key)) continue;
    const reason = heldBy(good.file, brokenFiles);
    if (reason !== undefined) {
      substitute.set(good.key, good);
      kept.push({ policy: good.key, file: good.file, reason });
    }
  }

  let state = first;
  if (substitute.size > 0 || withheld.size > 0) {
    const merged: Loaded = {
      policies: [
        ...current.policies.filter((p) => !substitute.has(policyKey(p)) && !withheld.has(policyKey(p))),
        ...[...substitute.values()].map((g) => g.doc),
      ],
      get objects() {
        return current.objects;
      },
      ...(feed === undefined ? {} : { objectFeed: feed }),
      // Problems of a replaced version would mark its good version invalid too.
      problems: current.problems.filter((p) => p.policy === undefined || !substitute.has(p.policy)),
    };
    state = build(merged);
  }

  const lastGood = new Map<string, GoodEntry>();
  const finalValid = new Set(state.valid.map(policyKey));
  for (const doc of state.valid) {
    const key = policyKey(doc);
    const sub = substitute.get(key);
    if (sub !== undefined) {
      lastGood.set(key, sub);
      continue;
    }
    const f = fileOf.get(key);
    if (f !== undefined) lastGood.set(key, { key, file: f.file, textHash: f.textHash, doc });
  }
  // A substituted version the builder still refused (should not happen) is not kept as good.
  for (const k of kept) if (!finalValid.has(k.policy)) lastGood.delete(k.policy);
  const replacedProblems = substitute.size === 0
    ? []
    : [...current.problems, ...first.problems].filter((p, i, all) => p.policy !== undefined && substitute.has(p.policy) && all.indexOf(p) === i);
  const readFiles = new Set(files.map((f) => f.file));
  const removed = [...prev.values()]
    .filter((g) => !lastGood.has(g.key) && !present.has(g.key) && !invalid.has(g.key))
    .map((g) => ({ policy: g.key, file: g.file, fileRead: readFiles.has(g.file) }));
  const result = {
    state, kept, rejected, lastGood, replacedProblems, removed,
    ...(withheld.size === 0 ? {} : { withheld: [...withheld].map(([policy, file]) => ({ policy, file })) }),
  };
  // Only a state built once from the input as it is (no substitutes) is remembered.
  if (memoKey !== undefined && state === first) return memo!.remember(memoKey, first, result);
  return result;
}

/** The file itself, or a file inside an unreadable/missing source directory, is broken: why. */
function heldBy(file: string, broken: ReadonlyMap<string, HeldReason>): HeldReason | undefined {
  const own = broken.get(file);
  if (own !== undefined) return own;
  for (const [b, reason] of broken) if (file.startsWith(b.endsWith('/') ? b : `${b}/`)) return reason;
  return undefined;
}

/** The log line for a policy held at its last good version: what happened and what to do. */
export function keptMessage(k: Kept): string {
  switch (k.reason) {
    case 'invalid':
      return `policy ${k.policy}: new version is invalid; its last good version stays in force`;
    case 'refused':
      return `policy ${k.policy}: this version was rolled back and is refused (see nodewall status); its last good version stays in force until the policy changes again`;
    case 'unreadable':
      return `policy ${k.policy}: file cannot be read; its last good version stays in force`;
    case 'unsettled':
      return `policy ${k.policy}: file is still changing; its last good version stays in force until the file is quiet`;
    case 'empty':
      return `policy ${k.policy}: its file ${k.file} is empty now (truncated, or being rewritten?): suspect, its last good version ` +
        'stays in force; to remove the policy, delete the file (or remove the policy from a file that still holds others)';
  }
}

/** The log line for a policy that left the ruleset (a cut-short file shows here too). */
export function removedMessage(r: MergeResult<unknown>['removed'][number]): string {
  return r.fileRead
    ? `policy ${r.policy}: no longer in ${r.file} (the file is still there): removed from the ruleset; if the file was cut short, restore it`
    : `policy ${r.policy}: its file ${r.file} was deleted: removed from the ruleset`;
}
