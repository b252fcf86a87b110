import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { KubeObject } from '../../../src/api/types.js';
import { CacheError, cachePath, loadCache, readCache, selectionPath, writeCache, writeSelection } from '../../../src/inventory/sources/cache.js';

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

const selection = {
  syncedAt: '2026-11-24T18:05:00.000Z',
  policies: [{ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'q' }, spec: { nodeSelector: {} } }] as KubeObject[],
  nodeName: 'a',
  node: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'a', labels: { x: 'z' } } } as KubeObject,
};

test('the selection file is laid over the big cache: its CCNPs and its Node win; without the big cache there is no cache', async (t) => {
  const dir = await tmp(t);
  await writeSelection(dir, selection);
  t.is(await readCache(dir), undefined, 'a selection alone is no cluster state');
  await writeCache(dir, state);
  const got = await readCache(dir);
  t.deepEqual(got?.policies, selection.policies);
  t.deepEqual(got?.objects, [selection.node]);
  t.deepEqual((await loadCache(dir)).value, got);
  // This node gone from the API: the cached Node object goes too.
  await writeSelection(dir, { ...selection, node: null });
  t.deepEqual((await readCache(dir))?.objects, []);
  t.deepEqual((await readdir(dir)).sort(), ['k8s-cache-selection.json', 'k8s-cache.json']);
});

test('a corrupt, truncated or inconsistent selection file makes the whole cache unusable (quarantined), never an older policy set', async (t) => {
  const dir = await tmp(t);
  await writeCache(dir, state);
  await writeSelection(dir, selection);
  const full = await readFile(selectionPath(dir), 'utf8');
  await writeFile(selectionPath(dir), full.slice(0, full.length / 2));
  await t.throwsAsync(readCache(dir), { instanceOf: CacheError, message: /k8s-cache-selection\.json: .*not valid JSON/ });
  const loaded = await loadCache(dir);
  t.is(loaded.value, undefined);
  t.regex(loaded.error?.message ?? '', /k8s-cache-selection\.json/);
  t.true((await readdir(dir)).includes('k8s-cache-selection.json.corrupt'));
  // A Node that is not the one named.
  await writeFile(selectionPath(dir), JSON.stringify({ format: 'nodewall/k8s-cache-selection/v1', policies: [], nodeName: 'a', node: { kind: 'Node', metadata: { name: 'b' } } }));
  await t.throwsAsync(readCache(dir), { instanceOf: CacheError, message: /node: expected the Node named by nodeName/ });
  // A FIFO in its place is refused, not read.
  await rm(selectionPath(dir));
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [selectionPath(dir)]);
  await t.throwsAsync(readCache(dir), { instanceOf: CacheError });
});
