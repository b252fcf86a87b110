// The last cluster state fully read from the API, kept on disk so that a node
// rebooted while the API is unreachable enforces its policies from it. Written
// atomically (tmp file + fsync + rename) so a crash leaves the old or the new
// file, never half of one, and in bounded pieces (no 100 MB string + buffer).

import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeObject } from '../../api/types.js';
import { arrayOf, field, loadStateFile, obj, optional, readStateFile, recordOf, settleStateRead, ShapeError, str, type Check, type StateFileError, type StateRead } from '../state-files.js';
import { readStreamedStateFile } from './json-stream-read.js';

export const CACHE_FILE = 'k8s-cache.json';
const FORMAT = 'nodewall/k8s-cache/v1';

export interface CachedState {
  /** When the state was read from the API (ISO 8601). */
  readonly syncedAt: string;
  readonly resourceVersions: Readonly<Record<string, string>>;
  /** Slim cluster objects (Node, Namespace, EndpointSlice, CiliumNode, Pod/CiliumEndpoint). */
  readonly objects: readonly KubeObject[];
  /** Slim CCNP objects as read, decoded again when loaded. */
  readonly policies: readonly KubeObject[];
}

export class CacheError extends Error {
  override readonly name = 'CacheError';
}

export function cachePath(stateDir: string): string {
  return join(stateDir, CACHE_FILE);
}

/** What writeCache writes: a CachedState whose object list may be any iterable (read once, in order). */
export interface CachedStateToWrite extends Omit<CachedState, 'objects'> {
  readonly objects: Iterable<KubeObject>;
}

/**
 * Writes k8s-cache.json: the same bytes as `JSON.stringify({ format, ...state })` (with `objects` as an array),
 * made and written in pieces of about `chunkChars` characters, so that a 100k-pod cache never exists as one
 * string and one buffer (~100 MB at once). The objects must not change while it runs (the source's are never
 * changed once made). Atomic as before: a failing write leaves the old file, a partial one is never visible.
 */
export async function writeCache(stateDir: string, state: CachedStateToWrite, chunkChars = cacheChunkChars): Promise<void> {
  await writeAtomicPieces(cachePath(stateDir), jsonPieces({ format: FORMAT, ...state }, streamedKeys), chunkChars);
}

/** Characters per write of the big cache (bounds the transient string and buffer of a write). */
export const cacheChunkChars = 1 << 20;

/** Elements of a streamed array made into one piece (~75 KB of slim pods). */
const elementsPerPiece = 256;

/** Top-level keys whose arrays (or iterables) are written a group of elements at a time. */
const streamedKeys: ReadonlySet<string> = new Set(['objects', 'policies']);

/**
 * The JSON text of a plain object in pieces: each key in `streamed` whose value is iterable (not a string) as
 * an array, one piece per group of at most 256 elements; every other value as JSON.stringify gives it (undefined, functions and
 * symbols left out as JSON.stringify does; array elements JSON.stringify cannot give are `null`, as in an array).
 */
export function* jsonPieces(top: Readonly<Record<string, unknown>>, streamed: ReadonlySet<string>): Generator<string> {
  yield '{';
  let first = true;
  for (const key of Object.keys(top)) {
    const v = top[key];
    const sep = first ? '' : ',';
    if (streamed.has(key) && isIterable(v)) {
      yield `${sep}${JSON.stringify(key)}:[`;
      // Elements in groups: one JSON.stringify per group costs less than one per element, and an array's
      // JSON is its elements' joined by commas (undefined and functions as null) whatever the grouping.
      let group: unknown[] = [];
      let firstGroup = true;
      const flush = function* (): Generator<string> {
        const text = JSON.stringify(group);
        yield `${firstGroup ? '' : ','}${text.slice(1, -1)}`;
        firstGroup = false;
        group = [];
      };
      for (const el of v) {
        group.push(el);
        if (group.length === elementsPerPiece) yield* flush();
      }
      if (group.length > 0) yield* flush();
      yield ']';
    } else {
      const text = JSON.stringify(v) as string | undefined;
      if (text === undefined) continue;
      yield `${sep}${JSON.stringify(key)}:${text}`;
    }
    first = false;
  }
  yield '}';
}

function isIterable(v: unknown): v is Iterable<unknown> {
  // An own toJSON would change what JSON.stringify writes: such a value is written whole.
  return typeof v === 'object' && v !== null && typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function'
    && typeof (v as { toJSON?: unknown }).toJSON !== 'function' && (Array.isArray(v) || !(v instanceof Map || v instanceof Set));
}

/**
 * The selection file (issue 9): what decides this node's policies, the CCNPs and this node's Node
 * object, small enough to write before every snapshot that changes them is enforced. The big cache
 * (every pod) is then only written on its rate limit: a CCNP change no longer serialises the cluster.
 * readCache/loadCache lay it over the big cache, so a crash right after an apply can never bring back
 * an older policy set from a big cache written before the change.
 */
export const SELECTION_FILE = 'k8s-cache-selection.json';
const SELECTION_FORMAT = 'nodewall/k8s-cache-selection/v1';

export interface CachedSelection {
  readonly syncedAt: string;
  /** Slim CCNP objects as read. */
  readonly policies: readonly KubeObject[];
  /** This node's name and slim Node object (null: the API has no Node of that name). */
  readonly nodeName: string | null;
  readonly node: KubeObject | null;
}

/** Upper bound for the selection file: CCNPs and one Node. */
export const selectionMaxBytes = 64 * 1024 * 1024;

export function selectionPath(stateDir: string): string {
  return join(stateDir, SELECTION_FILE);
}

export async function writeSelection(stateDir: string, sel: CachedSelection): Promise<void> {
  await writeAtomic(selectionPath(stateDir), JSON.stringify({ format: SELECTION_FORMAT, ...sel }));
}

/**
 * Removes the selection file (after a failed write): left in place it would lay an older policy set over
 * every later, newer big cache. Never throws.
 */
export async function removeSelection(stateDir: string): Promise<void> {
  await rm(selectionPath(stateDir), { force: true }).catch(() => undefined);
}

/** Shape check of a parsed selection file (throws ShapeError naming the field). */
export function checkSelection(v: unknown): CachedSelection {
  const o = obj(v, '');
  if (o['format'] !== SELECTION_FORMAT) throw new ShapeError('format', `a ${SELECTION_FORMAT} file`, o['format']);
  const nodeName = o['nodeName'] === null ? null : field(o, 'nodeName', str, '');
  const node = o['node'] === null ? null : field(o, 'node', kubeObject, '');
  if (node !== null && (node.kind !== 'Node' || node.metadata.name !== nodeName)) throw new ShapeError('node', `the Node named by nodeName (${String(nodeName)})`, node.metadata.name);
  return { syncedAt: optional(o, 'syncedAt', str, '') ?? '', policies: field(o, 'policies', arrayOf(kubeObject), ''), nodeName, node };
}

/** The big cache with the selection laid over it: the selection's CCNPs, and its Node in place of the cached one. */
export function overlaySelection(cached: CachedState, sel: CachedSelection | undefined): CachedState {
  if (sel === undefined) return cached;
  const isNode = (o: KubeObject): boolean => o.kind === 'Node' && o.metadata.name === sel.nodeName;
  let objects = cached.objects;
  if (sel.nodeName !== null) {
    const replaced = cached.objects.filter((o) => !isNode(o));
    if (sel.node !== null) replaced.push(sel.node);
    objects = replaced;
  }
  return { ...cached, objects, policies: sel.policies };
}

async function writeAtomic(file: string, body: string): Promise<void> {
  await writeAtomicPieces(file, [body], Infinity);
}

/**
 * tmp file + fsync + rename: the old file or the new one, never half of one. The pieces are joined and
 * written about `chunkChars` characters at a time; an error anywhere (a piece that cannot be made included)
 * removes the tmp file and throws CacheError.
 */
async function writeAtomicPieces(file: string, pieces: Iterable<string>, chunkChars: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      let batch: string[] = [];
      let chars = 0;
      for (const piece of pieces) {
        batch.push(piece);
        chars += piece.length;
        if (chars >= chunkChars) {
          await writeAll(fh, batch.join(''));
          batch = [];
          chars = 0;
        }
      }
      if (batch.length > 0) await writeAll(fh, batch.join(''));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CacheError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes all of `text` (UTF-8) at the file's position, however many write calls that takes. */
async function writeAll(fh: FileHandle, text: string): Promise<void> {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

/** Upper bound for k8s-cache.json (slim objects: a 100k-pod cluster is some 50 MB). */
export const cacheMaxBytes = 256 * 1024 * 1024;

const kubeObject: Check<KubeObject> = (v, path) => {
  const o = obj(v, path);
  field(o, 'kind', str, path);
  const m = field(o, 'metadata', obj, path);
  field(m, 'name', str, `${path}.metadata`);
  optional(m, 'namespace', str, `${path}.metadata`);
  optional(m, 'labels', recordOf(str), `${path}.metadata`);
  return o as unknown as KubeObject;
};

/** Shape check of a parsed cache file (throws ShapeError naming the field). */
export function checkCache(v: unknown): CachedState {
  const o = obj(v, '');
  if (o['format'] !== FORMAT) throw new ShapeError('format', `a ${FORMAT} file`, o['format']);
  return {
    syncedAt: optional(o, 'syncedAt', str, '') ?? '',
    resourceVersions: optional(o, 'resourceVersions', recordOf(str), '') ?? {},
    objects: field(o, 'objects', arrayOf(kubeObject), ''),
    policies: field(o, 'policies', arrayOf(kubeObject), ''),
  };
}

/**
 * k8s-cache.json read in pieces, each object parsed alone (json-stream-read.ts): never its whole text and its
 * whole parse at once (some 175 MB of transient at 100k pods). Same value and same refusals as readStateFile.
 */
function readBigCache(file: string): Promise<StateRead<CachedState>> {
  return readStreamedStateFile(file, cacheMaxBytes, streamedKeys, checkCache);
}

/**
 * The cached state, or undefined when there is none. Throws CacheError for an
 * unusable file (non-regular, too big, truncated, foreign, malformed); the
 * file is left where it is (see loadCache).
 */
export async function readCache(stateDir: string): Promise<CachedState | undefined> {
  const file = cachePath(stateDir);
  const r = await readBigCache(file);
  if (r.kind === 'missing') return undefined;
  if (r.kind === 'corrupt') throw new CacheError(`${file}: ${r.reason}`);
  const selFile = selectionPath(stateDir);
  const sel = await readStateFile(selFile, selectionMaxBytes, checkSelection);
  if (sel.kind === 'corrupt') throw new CacheError(`${selFile}: ${sel.reason}`);
  return overlaySelection(r.value, sel.kind === 'ok' ? sel.value : undefined);
}

/**
 * readCache for the source: a corrupt file is moved aside (.corrupt) and reported as `error`. A corrupt
 * selection file makes the whole cache unusable: the big cache's policies may be older than the last
 * ones enforced.
 */
export async function loadCache(stateDir: string): Promise<{ value?: CachedState; error?: StateFileError }> {
  const big = await settleStateRead(cachePath(stateDir), await readBigCache(cachePath(stateDir)));
  const sel = await loadStateFile(selectionPath(stateDir), selectionMaxBytes, checkSelection);
  if (big.error !== undefined) return { error: big.error };
  if (sel.error !== undefined) return { error: sel.error };
  if (big.value === undefined) return {};
  return { value: overlaySelection(big.value, sel.value) };
}
