// Reading the agent's own state files (last good store, status file,
// Kubernetes cache) defensively. They live in a directory only nodewall writes,
// but a crash, a full disk, an operator's edit or a hostile local user can
// leave anything there: null, the wrong shape, half a file, a FIFO, a
// directory, gigabytes. Every read is bounded, only regular files are read,
// the JSON is shape-checked, and a bad file is moved aside to `<name>.corrupt`
// (only the newest is kept: bounded) so that the next write succeeds and the
// operator can still look at what was there.

import { rename, rm, stat } from 'node:fs/promises';
import { readBounded, type BoundedReadError } from './read-bounded.js';

/** Outcome of reading one state file. Never throws. */
export type StateRead<T> =
  | { readonly kind: 'missing' }
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'corrupt'; readonly reason: string };

/** A value that does not have the expected shape; `path` says where (e.g. `policies["a"].textHash`). */
export class ShapeError extends Error {
  override readonly name = 'ShapeError';
  readonly path: string;
  readonly expected: string;
  constructor(path: string, expected: string, got: unknown) {
    super(`${path === '' ? '(top level)' : path}: expected ${expected}, got ${describe(got)}`);
    this.path = path;
    this.expected = expected;
  }
}

/** A state file that is there but unusable (moved aside when possible). */
export class StateFileError extends Error {
  override readonly name = 'StateFileError';
  readonly file: string;
  readonly reason: string;
  readonly movedTo: string | undefined;
  constructor(file: string, reason: string, movedTo?: string, options?: ErrorOptions) {
    super(`${file}: ${reason}${movedTo === undefined ? '' : `; moved to ${movedTo}`}`, options);
    this.file = file;
    this.reason = reason;
    this.movedTo = movedTo;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? 'a string' : `"${v}"`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/**
 * Read `path` as JSON and check it with `check` (which throws ShapeError or
 * returns the typed value). Non-regular files (FIFO, device, directory,
 * symlink), files over `maxBytes`, unreadable files, bad JSON and bad shapes
 * are 'corrupt', with the reason.
 */
export async function readStateFile<T>(path: string, maxBytes: number, check: (v: unknown) => T): Promise<StateRead<T>> {
  let text: string;
  try {
    const r = await readText(path, maxBytes);
    if (r === undefined) return { kind: 'missing' };
    text = r;
  } catch (err) {
    return { kind: 'corrupt', reason: err instanceof Error ? err.message : String(err) };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { kind: 'corrupt', reason: `not valid JSON (${text.length === 0 ? 'empty file' : (err as Error).message})` };
  }
  try {
    return { kind: 'ok', value: check(data) };
  } catch (err) {
    if (err instanceof ShapeError) return { kind: 'corrupt', reason: `wrong shape: ${err.message}` };
    // A RangeError from a pathological structure (deep nesting) is a bad file too, never a crash.
    return { kind: 'corrupt', reason: `cannot check: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The text of a regular file of at most maxBytes; undefined when it does not exist. Throws Error naming the problem. */
async function readText(path: string, maxBytes: number): Promise<string | undefined> {
  let bytes: Buffer;
  try {
    // noFollow: nodewall never writes a symlink here.
    ({ bytes } = await readBounded(path, maxBytes, { noFollow: true }));
  } catch (err) {
    const e = err as BoundedReadError;
    if (e.kind === 'missing') return undefined;
    if (e.kind === 'not-regular') throw new Error(`is not a regular file (a ${e.fileType ?? 'special file'})`, { cause: e });
    if (e.kind === 'too-large') throw new Error(e.size === undefined ? e.message : `is ${e.size} bytes, over the limit of ${maxBytes}`, { cause: e });
    throw new Error(e.message, { cause: e });
  }
  const text = bytes.toString('utf8');
  if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(bytes)) throw new Error('is not valid UTF-8');
  return text;
}

/**
 * Move a bad state file aside to `<path>.corrupt`, replacing an older one, so
 * at most one is kept per file. Returns the new path. Throws when it cannot be
 * moved (then the caller carries on without it).
 */
export async function quarantine(path: string): Promise<string> {
  const target = `${path}.corrupt`;
  // rename() cannot replace a directory with a file (or the reverse): clear the old one first.
  const old = await stat(target).catch(() => undefined);
  if (old !== undefined) await rm(target, { recursive: true, force: true });
  await rename(path, target);
  return target;
}

/**
 * Read a state file; a corrupt one is moved aside. Returns the value, or
 * undefined when there is none; a corrupt file gives a StateFileError as
 * `error` (its message names the file, what is wrong and where it went).
 */
export async function loadStateFile<T>(path: string, maxBytes: number, check: (v: unknown) => T): Promise<{ value?: T; error?: StateFileError }> {
  return settleStateRead(path, await readStateFile(path, maxBytes, check));
}

/** loadStateFile's outcome for a read made otherwise (k8s-cache.json is read in pieces): a corrupt file is moved aside. */
export async function settleStateRead<T>(path: string, r: StateRead<T>): Promise<{ value?: T; error?: StateFileError }> {
  if (r.kind === 'missing') return {};
  if (r.kind === 'ok') return { value: r.value };
  try {
    return { error: new StateFileError(path, r.reason, await quarantine(path)) };
  } catch (err) {
    return { error: new StateFileError(path, `${r.reason} (could not move it aside: ${(err as Error).message})`, undefined, { cause: err }) };
  }
}

// --- shape checks -------------------------------------------------------------
// Small combinators: each returns the value typed, or throws ShapeError with the path.

export type Check<T> = (v: unknown, path: string) => T;

export const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export const str: Check<string> = (v, path) => {
  if (typeof v !== 'string') throw new ShapeError(path, 'a string', v);
  return v;
};

export const bool: Check<boolean> = (v, path) => {
  if (typeof v !== 'boolean') throw new ShapeError(path, 'true or false', v);
  return v;
};

export const nonNegInt: Check<number> = (v, path) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ShapeError(path, 'a non-negative integer', v);
  return v;
};

export function literal<T extends string | number>(...values: readonly T[]): Check<T> {
  return (v, path) => {
    if (!values.includes(v as T)) throw new ShapeError(path, values.map((x) => JSON.stringify(x)).join(' or '), v);
    return v as T;
  };
}

export function obj(v: unknown, path: string): Record<string, unknown> {
  if (!isRecord(v)) throw new ShapeError(path, 'an object', v);
  return v;
}

export function arrayOf<T>(item: Check<T>): Check<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) throw new ShapeError(path, 'an array', v);
    return v.map((x, i) => item(x, `${path}[${i}]`));
  };
}

/** A map from string keys (own properties only) to checked values. */
export function recordOf<T>(item: Check<T>): Check<Record<string, T>> {
  return (v, path) => {
    const o = obj(v, path);
    for (const k of Object.keys(o)) item(o[k], `${path}[${JSON.stringify(k)}]`);
    return o as Record<string, T>;
  };
}

/** An optional field: absent passes, present is checked. */
export function optional<T>(o: Record<string, unknown>, key: string, check: Check<T>, path: string): T | undefined {
  if (!Object.hasOwn(o, key) || o[key] === undefined) return undefined;
  return check(o[key], join(path, key));
}

export function field<T>(o: Record<string, unknown>, key: string, check: Check<T>, path: string): T {
  if (!Object.hasOwn(o, key)) throw new ShapeError(join(path, key), 'a value (missing)', undefined);
  return check(o[key], join(path, key));
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
