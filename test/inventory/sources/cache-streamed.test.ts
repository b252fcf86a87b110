// The big cache written in pieces (cache.ts writeCache): byte for byte what one JSON.stringify of the same
// state gives, whatever the piece size; a failure half-way leaves the old file; a reader never sees half a file.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import type { KubeObject } from '../../../src/api/types.js';
import { CacheError, cachePath, jsonPieces, readCache, writeCache } from '../../../src/inventory/sources/cache.js';
import { eachOf } from '../../../src/inventory/sources/kubernetes.js';

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-cache-s-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const FORMAT = 'nodewall/k8s-cache/v1';

/** Slim-object-like values: any JSON, unicode (lone surrogates too), and what JSON.stringify drops or nulls. */
const value = fc.oneof(
  fc.jsonValue(),
  fc.string({ unit: 'binary' }),
  fc.constant(undefined),
  fc.constant(() => 1),
);
const kubeObject = fc.record({
  apiVersion: fc.constantFrom('v1', 'cilium.io/v2'),
  kind: fc.constantFrom('Pod', 'Node', 'Namespace', 'CiliumClusterwideNetworkPolicy'),
  metadata: fc.record({ name: fc.string({ unit: 'binary', minLength: 1 }), namespace: fc.option(fc.string(), { nil: undefined }), labels: fc.dictionary(fc.string(), fc.string({ unit: 'binary' })) }),
  spec: fc.dictionary(fc.string({ unit: 'binary' }), value),
}, { requiredKeys: ['apiVersion', 'kind', 'metadata'] }) as fc.Arbitrary<KubeObject>;
const cached = fc.record({
  syncedAt: fc.string(),
  resourceVersions: fc.dictionary(fc.string(), fc.string()),
  objects: fc.array(kubeObject, { maxLength: 40 }),
  policies: fc.array(kubeObject, { maxLength: 5 }),
});

testProp('jsonPieces joined = JSON.stringify, for any top-level object, streamed keys or not', [
  fc.dictionary(fc.string(), fc.oneof(value, fc.array(value), fc.array(fc.oneof(value, kubeObject)))),
  fc.array(fc.string(), { maxLength: 3 }),
], (t, top, extra) => {
  const streamed = new Set([...Object.keys(top).filter((_, i) => i % 2 === 0), ...extra]);
  t.is([...jsonPieces(top, streamed)].join(''), JSON.stringify(top));
});

testProp('writeCache writes the bytes of JSON.stringify({ format, ...state }), any piece size, array or iterable', [
  cached, fc.integer({ min: 1, max: 4096 }), fc.boolean(),
], async (t, state, chunk, iterable) => {
  const dir = await mkdtemp(join(tmpdir(), 'nw-k8s-cache-p-'));
  try {
    const objects = iterable ? eachOf([state.objects.slice(0, 3), [], state.objects.slice(3)]) : state.objects;
    await writeCache(dir, { ...state, objects }, chunk);
    const bytes = await readFile(cachePath(dir));
    t.true(bytes.equals(Buffer.from(JSON.stringify({ format: FORMAT, ...state }), 'utf8')));
    t.deepEqual(await readdir(dir), ['k8s-cache.json'], 'no temp file left');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, { numRuns: 60 });

test('pieces are bounded by a group of objects, not by the state; groups join to the same text', (t) => {
  const objects = Array.from({ length: 5000 }, (_, i) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, namespace: 'ns' }, ...(i % 7 === 0 ? { spec: undefined } : {}) }) as KubeObject);
  const top = { format: FORMAT, syncedAt: 'x', resourceVersions: {}, objects, policies: [] };
  const pieces = [...jsonPieces(top, new Set(['objects', 'policies']))];
  const longestObject = Math.max(...objects.map((o) => JSON.stringify(o).length));
  t.true(pieces.length > 5000 / 256);
  t.true(Math.max(...pieces.map((p) => p.length)) <= 256 * (longestObject + 1));
  t.is(pieces.join(''), JSON.stringify(top));
  const withHoles = [1, undefined, () => 2, ...Array.from({ length: 600 }, (_, i) => i)];
  t.is([...jsonPieces({ objects: withHoles }, new Set(['objects']))].join(''), JSON.stringify({ objects: withHoles }));
});

const node = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } }) as KubeObject;

test('an object list failing half-way (a piece that cannot be made) leaves the old file and no temp file', async (t) => {
  const dir = await tmp(t);
  const old = { syncedAt: 'old', resourceVersions: { Node: '1' }, objects: [node('a')], policies: [] };
  await writeCache(dir, old);
  const before = await readFile(cachePath(dir));
  function* failing(): Generator<KubeObject> {
    for (let i = 0; i < 5000; i++) yield node(`n-${i}`);
    throw new Error('store gone');
  }
  await t.throwsAsync(writeCache(dir, { ...old, syncedAt: 'new', objects: failing() }, 1024), { instanceOf: CacheError, message: /store gone/ });
  t.true((await readFile(cachePath(dir))).equals(before));
  t.deepEqual(await readdir(dir), ['k8s-cache.json']);
  // An object JSON.stringify refuses (a BigInt): the same.
  const bad = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'b' }, spec: { n: 1n } } as unknown as KubeObject;
  await t.throwsAsync(writeCache(dir, { ...old, objects: [node('a'), bad] }, 16), { instanceOf: CacheError });
  t.true((await readFile(cachePath(dir))).equals(before));
  t.deepEqual(await readdir(dir), ['k8s-cache.json']);
});

test('a reader during a write sees the old file or the new one, never a part', async (t) => {
  const dir = await tmp(t);
  const old = { syncedAt: 'old', resourceVersions: {}, objects: [node('a')], policies: [] };
  await writeCache(dir, old);
  const oldBytes = await readFile(cachePath(dir));
  const next = { syncedAt: 'new', resourceVersions: {}, objects: Array.from({ length: 20_000 }, (_, i) => node(`n-${i}`)), policies: [] };
  const newBytes = Buffer.from(JSON.stringify({ format: FORMAT, ...next }), 'utf8');
  let done = false;
  const writing = writeCache(dir, next, 4096).finally(() => {
    done = true;
  });
  let reads = 0;
  let sawOld = 0;
  while (!done && reads < 100_000) {
    const b = await readFile(cachePath(dir));
    reads++;
    if (b.equals(oldBytes)) sawOld++;
    else t.true(b.equals(newBytes), 'a complete new file');
  }
  await writing;
  t.true(sawOld > 0, 'the write took several turns of the event loop (it is written in pieces)');
  t.true((await readFile(cachePath(dir))).equals(newBytes));
  t.deepEqual((await readCache(dir))?.objects.length, 20_000);
});
