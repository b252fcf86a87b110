// ManifestFileCache (the agent's per-file load memo): equal to loading the
// file afresh for any sequence of edits, reused only while the text is the
// same, forgotten when the file is gone.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { isDeepStrictEqual } from 'node:util';
import { loaderCounts } from '../../src/api/load-manifests.js';
import { loadManifestFile, ManifestFileCache } from '../../src/inventory/load-manifest-files.js';
import { sha256 } from '../../src/inventory/read-manifest-files.js';

const file = (name: string, text: string): { file: string; text: string; hash: string } => ({ file: name, text, hash: sha256(text) });
const pod = (n: number, app: string): string => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p${n}\n  labels:\n    app: ${app}\n`;
const policy = (port: number): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: host\nspec:\n  nodeSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: "${port}"\n`;

function plain(l: Awaited<ReturnType<typeof loadManifestFile>>): unknown {
  return { ...l, load: { ...l.load, policies: l.load.policies.map(({ locate, ...p }) => ({ ...p, at: locate('spec.ingress[0].toPorts[0].ports[0].port') })) } };
}

test.serial('an unchanged file is not parsed again: the same load comes back', async (t) => {
  const cache = new ManifestFileCache();
  // An anchor: this document goes through the full parser, whose runs are counted.
  const f = file('/m/a.yaml', `${pod(1, 'web')}  annotations: &a {x: y}\n---\n${policy(80)}`);
  const first = await cache.load(f);
  t.is(first.load.objects.length, 1);
  const runs = loaderCounts.fullParserRuns;
  const again = await cache.load({ ...f });
  t.is(again, first);
  t.is(loaderCounts.fullParserRuns, runs);
  await loadManifestFile(f);
  t.is(loaderCounts.fullParserRuns, runs + 1, 'a fresh load of this text does run the full parser');
  const changed = await cache.load(file('/m/a.yaml', pod(1, 'db') + '---\n' + policy(80)));
  t.not(changed, first);
  t.is(changed.load.objects[0]?.metadata.labels?.['app'], 'db');
});

test('retainOnly forgets files that are gone: loading one again parses it again', async (t) => {
  const cache = new ManifestFileCache();
  const a = file('/m/a.yaml', pod(1, 'web'));
  const b = file('/m/b.yaml', pod(2, 'web'));
  const la = await cache.load(a);
  const lb = await cache.load(b);
  cache.retainOnly(['/m/b.yaml']);
  t.is(cache.size, 1);
  t.is(await cache.load(b), lb);
  const la2 = await cache.load(a);
  t.not(la2, la);
  t.deepEqual(plain(la2), plain(la));
});

const edit = fc.record({
  name: fc.constantFrom('/m/a.yaml', '/m/b.yaml', '/m/c.json'),
  body: fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom('web', 'db', '-bad-')).map(([n, app]) => pod(n, app)),
    fc.integer({ min: 79, max: 81 }).map(policy),
    fc.constantFrom('', '# nothing\n', 'kind: [unclosed\n', '{"kind": "Pod", "metadata": {"name": "j"}}'),
  ),
});

testProp('for any sequence of file edits the cache gives what loading the file afresh gives', [fc.array(edit, { minLength: 1, maxLength: 12 })], async (t, edits) => {
  const cache = new ManifestFileCache();
  for (const e of edits) {
    const f = file(e.name, e.body);
    const cached = await cache.load(f);
    const fresh = await loadManifestFile(f);
    t.true(isDeepStrictEqual(plain(cached), plain(fresh)), `${e.name}: ${JSON.stringify(e.body)}`);
  }
}, { numRuns: 100, seed: 0x9f31 });
