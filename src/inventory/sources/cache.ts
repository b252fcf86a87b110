// The last cluster state fully read from the API, kept on disk so that a node
// rebooted while the API is unreachable enforces its policies from it. Written
// atomically (tmp file + fsync + rename) so a crash leaves the old or the new
// file, never half of one.

import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeObject } from '../../api/types.js';

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

/** The cached state, or undefined when there is none. Throws CacheError for an unreadable or foreign file. */
export async function readCache(stateDir: string): Promise<CachedState | undefined> {
  const file = cachePath(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CacheError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CacheError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const d = data as Partial<CachedState> & { format?: unknown };
  if (d === null || typeof d !== 'object' || d.format !== FORMAT || !Array.isArray(d.objects) || !Array.isArray(d.policies)) {
    throw new CacheError(`${file} is not a ${FORMAT} file`);
  }
  const valid = (o: unknown): o is KubeObject =>
    o !== null && typeof o === 'object' && typeof (o as KubeObject).kind === 'string' && typeof (o as KubeObject).metadata?.name === 'string';
  if (!d.objects.every(valid) || !d.policies.every(valid)) throw new CacheError(`${file} holds malformed objects`);
  return {
    syncedAt: typeof d.syncedAt === 'string' ? d.syncedAt : '',
    resourceVersions: d.resourceVersions !== null && typeof d.resourceVersions === 'object' ? d.resourceVersions : {},
    objects: d.objects,
    policies: d.policies,
  };
}
