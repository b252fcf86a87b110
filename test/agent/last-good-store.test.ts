// The persisted last good store: round trip, and every corrupt form is moved
// aside (last-good.json.corrupt) instead of crashing the start path.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { policyKey, type GoodEntry } from '../../src/agent/last-good.js';
import { lastGoodFileName, loadLastGood, saveLastGood } from '../../src/agent/last-good-store.js';
import { sha256 } from '../../src/inventory/read-manifest-files.js';
import { policyYaml } from '../e2e/agent-harness.js';

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-lg-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const text = policyYaml('ssh', [22]);
const hash = sha256(text);

function entries(): Map<string, GoodEntry> {
  const doc = loadManifestText(text, '/p/ssh.yaml').policies[0]!;
  return new Map([[policyKey(doc), { key: policyKey(doc), file: '/p/ssh.yaml', textHash: hash, doc }]]);
}

test('round trip of policies and config', async (t) => {
  const dir = await tmp(t);
  await saveLastGood(dir, entries(), (h) => (h === hash ? text : undefined), { file: '/etc/nw.yaml', text: 'mode: enforce\n' });
  const back = await loadLastGood(dir);
  t.is(back.error, undefined);
  t.deepEqual([...back.policies.keys()], ['ssh']);
  t.is(back.policies.get('ssh')?.doc.name, 'ssh');
  t.deepEqual(back.config, { file: '/etc/nw.yaml', text: 'mode: enforce\n' });
});

const corrupt: [string, string, RegExp][] = [
  ['null', 'null', /expected an object, got null/],
  ['an array', '[]', /expected an object, got an array/],
  ['no version', '{"policies":{},"texts":{}}', /version: expected a value/],
  ['policies null', '{"version":1,"policies":null,"texts":{}}', /policies: expected an object, got null/],
  ['entry of the wrong shape', '{"version":1,"policies":{"ssh":5},"texts":{}}', /policies\["ssh"\]: expected an object, got number 5/],
  ['textHash not a string', '{"version":1,"policies":{"ssh":{"file":"a","textHash":1}},"texts":{}}', /textHash: expected a string/],
  ['dangling textHash', '{"version":1,"policies":{"ssh":{"file":"a","textHash":"h"}},"texts":{}}', /textHash: expected the key of an entry in texts/],
  ['a prototype name as textHash', '{"version":1,"policies":{"ssh":{"file":"a","textHash":"constructor"}},"texts":{}}', /the key of an entry in texts/],
  ['text not a string', '{"version":1,"policies":{},"texts":{"h":[]}}', /texts\["h"\]: expected a string/],
  ['config of the wrong shape', '{"version":1,"policies":{},"texts":{},"config":{"file":1}}', /config\.file: expected a string/],
  ['truncated', '{"version":1,"polic', /not valid JSON/],
];

for (const [what, content, reason] of corrupt) {
  test(`corrupt store (${what}): nothing restored, error named, file moved aside`, async (t) => {
    const dir = await tmp(t);
    const file = join(dir, lastGoodFileName);
    await writeFile(file, content);
    const r = await loadLastGood(dir);
    t.is(r.policies.size, 0);
    t.is(r.config, undefined);
    t.regex(r.error?.message ?? '', reason);
    t.is(r.error?.file, file);
    t.false(existsSync(file));
    t.is(await readFile(`${file}.corrupt`, 'utf8'), content);
    // The next save works and the next load is clean.
    await saveLastGood(dir, entries(), (h) => (h === hash ? text : undefined));
    t.is((await loadLastGood(dir)).policies.size, 1);
  });
}

test('a stored text whose policy no longer decodes is not restored as good; __proto__ keys are plain keys', async (t) => {
  const dir = await tmp(t);
  const bad = 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: ssh}\nspec: {nodeSelector: {}, bogus: 1}\n';
  const store = { version: 1, policies: { ssh: { file: '/p/a.yaml', textHash: 'h' }, ['__proto__']: { file: '/p/a.yaml', textHash: 'h' } }, texts: { h: bad } };
  await writeFile(join(dir, lastGoodFileName), JSON.stringify(store));
  const r = await loadLastGood(dir);
  t.is(r.error, undefined);
  t.is(r.policies.size, 0);
});
