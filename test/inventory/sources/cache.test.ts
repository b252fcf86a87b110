import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { KubeObject } from '../../../src/api/types.js';
import { CacheError, cachePath, readCache, writeCache } from '../../../src/inventory/sources/cache.js';

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-cache-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const state = {
  syncedAt: '2026-11-24T18:00:00.000Z',
  resourceVersions: { Node: '12' },
  objects: [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'a', labels: { x: 'y' } }, pos: { file: 'k8s:node/a', line: 1, col: 1 } }] as KubeObject[],
  policies: [{ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'p' }, spec: { nodeSelector: {} } }] as KubeObject[],
};

test('write then read gives the same state; no temp file is left behind; mode 0600', async (t) => {
  const dir = await tmp(t);
  t.is(await readCache(dir), undefined);
  await writeCache(dir, state);
  t.deepEqual(await readCache(dir), state);
  t.deepEqual(await readdir(dir), ['k8s-cache.json']);
  const { stat } = await import('node:fs/promises');
  t.is((await stat(cachePath(dir))).mode & 0o777, 0o600);
  await writeCache(dir, { ...state, objects: [] });
  t.deepEqual((await readCache(dir))?.objects, []);
});

test('a truncated, foreign or malformed file is a CacheError, never a partial state', async (t) => {
  const dir = await tmp(t);
  await writeCache(dir, state);
  const full = await readFile(cachePath(dir), 'utf8');
  await writeFile(cachePath(dir), full.slice(0, full.length / 2));
  await t.throwsAsync(readCache(dir), { instanceOf: CacheError, message: /not valid JSON/ });
  await writeFile(cachePath(dir), JSON.stringify({ objects: [], policies: [] }));
  await t.throwsAsync(readCache(dir), { instanceOf: CacheError, message: /format: expected a nodewall\/k8s-cache\/v1 file, got nothing/ });
  await writeFile(cachePath(dir), JSON.stringify({ format: 'nodewall/k8s-cache/v1', objects: [{ kind: 'Node' }], policies: [] }));
  await t.throwsAsync(readCache(dir), { instanceOf: CacheError, message: /objects\[0\]\.metadata: expected a value \(missing\)/ });
});

test('a write into a missing directory fails with CacheError and leaves nothing', async (t) => {
  const dir = await tmp(t);
  await t.throwsAsync(writeCache(join(dir, 'missing'), state), { instanceOf: CacheError });
  t.deepEqual(await readdir(dir), []);
});
