// The last cluster state fully read from the API, kept on disk so that a node
// rebooted while the API is unreachable enforces its policies from it. Written
// atomically (tmp file + fsync + rename) so a crash leaves the old or the new
// file, never half of one.

import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeObject } from '../../api/types.js';
import { arrayOf, field, loadStateFile, obj, optional, readStateFile, recordOf, ShapeError, str, type Check, type StateFileError } from '../state-files.js';

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

export async function writeCache(stateDir: string, state: CachedState): Promise<void> {
  const file = cachePath(stateDir);
  const tmp = `${file}.tmp-${process.pid}`;
  const body = JSON.stringify({ format: FORMAT, ...state });
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(body);
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
 * The cached state, or undefined when there is none. Throws CacheError for an
 * unusable file (non-regular, too big, truncated, foreign, malformed); the
 * file is left where it is (see loadCache).
 */
export async function readCache(stateDir: string): Promise<CachedState | undefined> {
  const file = cachePath(stateDir);
  const r = await readStateFile(file, cacheMaxBytes, checkCache);
  if (r.kind === 'missing') return undefined;
  if (r.kind === 'corrupt') throw new CacheError(`${file}: ${r.reason}`);
  return r.value;
}

/** readCache for the source: a corrupt cache is moved aside (k8s-cache.json.corrupt) and reported as `error`. */
export async function loadCache(stateDir: string): Promise<{ value?: CachedState; error?: StateFileError }> {
  return loadStateFile(cachePath(stateDir), cacheMaxBytes, checkCache);
}
