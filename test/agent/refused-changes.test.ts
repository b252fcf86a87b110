// The refused-change record (refused-changes.ts), its store, and how the merge honours it (last-good.ts).

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyDocument } from '../../src/api/types.js';
import { mergeWithLastGood, keptMessage, type GoodEntry, type Loaded, type LoadedFile } from '../../src/agent/last-good.js';
import { RefusedChanges, maxRefusals, refusalLine, refusedFileName, refusedMaxBytes } from '../../src/agent/refused-changes.js';
import { restoreLastGood } from '../../src/agent/rollback.js';
import { policyDoc as doc } from './fixtures.js';

async function tmp(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-refused-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const by = 'probe 192.0.2.10:22';

test('refuse / isRefused / isInputRefused', (t) => {
  const r = new RefusedChanges();
  r.refuse({ policies: [{ policy: 'lock', version: 'v2' }], inputHash: 'in1', by, reason: 'broke' });
  t.true(r.isRefused('lock', 'v2'));
  t.false(r.isRefused('lock', 'v3'));
  t.false(r.isRefused('other', 'v2'));
  t.false(r.isInputRefused('in1'), 'a policy refusal does not refuse the input as a whole');
  r.refuse({ policies: [], inputHash: 'in2', by, reason: 'labels' });
  t.true(r.isInputRefused('in2'));
  // The same refusal again replaces the record instead of piling up.
  r.refuse({ policies: [{ policy: 'lock', version: 'v2' }], inputHash: 'in3', by, reason: 'broke again' });
  t.is(r.size, 2);
  t.deepEqual(r.list().map((x) => x.reason), ['labels', 'broke again']);
});

test('forgetChanged: a new version or removal of a refused policy, or another input, clears it', (t) => {
  const r = new RefusedChanges();
  r.refuse({ policies: [{ policy: 'a', version: 'a2' }, { policy: 'b', version: 'b2' }], inputHash: 'in1', by, reason: 'x' });
  r.refuse({ policies: [], inputHash: 'in1', by, reason: 'y' });
  t.deepEqual(r.forgetChanged(new Map([['a', 'a2'], ['b', 'b2']]), 'in1'), []);
  const gone = r.forgetChanged(new Map([['a', 'a3'], ['b', 'b2']]), 'in2');
  t.deepEqual(gone.map((g) => [g.reason, g.policies.map((p) => p.policy)]), [['x', ['a']], ['y', []]]);
  t.false(r.isRefused('a', 'a2'));
  t.true(r.isRefused('b', 'b2'), 'b did not change: still refused');
  t.deepEqual(r.forgetChanged(new Map(), 'in2').map((g) => g.policies.map((p) => p.policy)), [['b']], 'b left the input');
  t.is(r.size, 0);
});

test('bounded: the oldest refusals go first', (t) => {
  const r = new RefusedChanges();
  for (let i = 0; i < maxRefusals + 5; i++) r.refuse({ policies: [{ policy: `p${i}`, version: 'v' }], inputHash: 'i', by, reason: 'r' });
  t.is(r.size, maxRefusals);
  t.false(r.isRefused('p0', 'v'));
  t.true(r.isRefused(`p${maxRefusals + 4}`, 'v'));
});

test('status line names the policy, version, probe and reason', (t) => {
  const line = refusalLine({ policies: [{ policy: 'lock', version: '0123456789abcdef' }], by, reason: 'broke', at: '2026-01-01T00:00:00.000Z' });
  t.is(line, 'policy lock (version 01234567) refused at 2026-01-01T00:00:00.000Z by probe 192.0.2.10:22: broke');
  t.regex(refusalLine({ policies: [], by, reason: 'r', at: 'T' }), /^the current input \(no policy version explains the change/);
});

test('store: save and load round trip; no rewrite when unchanged', async (t) => {
  const dir = await tmp(t);
  const r = new RefusedChanges();
  r.refuse({ policies: [{ policy: 'lock', version: 'v2' }], inputHash: 'in', by, reason: 'broke', at: 'T' });
  await r.save(dir);
  const first = await readFile(join(dir, refusedFileName), 'utf8');
  const { refused, error } = await RefusedChanges.load(dir);
  t.is(error, undefined);
  t.true(refused.isRefused('lock', 'v2'));
  t.deepEqual(refused.list(), r.list());
  await writeFile(join(dir, refusedFileName), first.replace('"broke"', '"edited"'));
  await refused.save(dir); // unchanged since load: not rewritten
  t.regex(await readFile(join(dir, refusedFileName), 'utf8'), /"edited"/);
  t.deepEqual((await RefusedChanges.load(join(dir, 'missing'))).refused.list(), [], 'missing store = nothing refused');
});

for (const [what, content] of [
  ['null', 'null'],
  ['half a file', '{"version":1,"refusals":[{"policies":['],
  ['wrong shape', '{"version":1,"refusals":[{"policies":[{"policy":1}]}]}'],
  ['wrong version', '{"version":2,"refusals":[]}'],
] as const) {
  test(`store: ${what} is moved aside, nothing refused`, async (t) => {
    const dir = await tmp(t);
    await writeFile(join(dir, refusedFileName), content);
    const { refused, error } = await RefusedChanges.load(dir);
    t.is(refused.size, 0);
    t.truthy(error);
    t.true(existsSync(join(dir, `${refusedFileName}.corrupt`)));
  });
}

test('store: a huge file and a FIFO are refused without reading them whole or blocking', async (t) => {
  const dir = await tmp(t);
  await writeFile(join(dir, refusedFileName), `{"version":1,"refusals":[],"pad":"${'x'.repeat(refusedMaxBytes)}"}`);
  const big = await RefusedChanges.load(dir);
  t.is(big.refused.size, 0);
  t.regex(big.error?.message ?? '', /bytes|large|limit/i);
  const fifoDir = await tmp(t);
  execFileSync('mkfifo', [join(fifoDir, refusedFileName)]);
  const fifo = await RefusedChanges.load(fifoDir);
  t.is(fifo.refused.size, 0);
  t.truthy(fifo.error);
});

// --- the merge ---------------------------------------------------------------------------------------------

const build = (load: Loaded) => ({ policies: load.policies, valid: load.policies, problems: load.problems });
const file = (d: PolicyDocument): LoadedFile => ({ file: d.pos.file, textHash: `t-${d.hash}`, load: { policies: [d], objects: [], problems: [] } });
const good = (d: PolicyDocument): GoodEntry => ({ key: d.name, file: d.pos.file, textHash: `t-${d.hash}`, doc: d });

test('merge: a refused version is replaced by its last good version; others change normally', (t) => {
  const r = new RefusedChanges();
  r.refuse({ policies: [{ policy: 'lock', version: 'v2' }], inputHash: 'i', by, reason: 'broke' });
  const prev = new Map([['lock', good(doc('lock', 'v1'))], ['web', good(doc('web', 'w1'))]]);
  const m = mergeWithLastGood([file(doc('lock', 'v2')), file(doc('web', 'w2'))], [], prev, build, (k, d) => r.isRefused(k, d.hash));
  t.deepEqual(m.state.valid.map((d) => `${d.name}@${d.hash}`).sort(), ['lock@v1', 'web@w2']);
  t.deepEqual(m.kept, [{ policy: 'lock', file: '/p/lock.yaml', reason: 'refused' }]);
  t.is(m.lastGood.get('lock')?.doc.hash, 'v1', 'the refused version never becomes last good');
  t.regex(keptMessage(m.kept[0]!), /rolled back and is refused/);
});

test('merge: a refused new policy is withheld; a refused version equal to its last good one is left alone', (t) => {
  const r = new RefusedChanges();
  r.refuse({ policies: [{ policy: 'new', version: 'n1' }, { policy: 'same', version: 's1' }], inputHash: 'i', by, reason: 'broke' });
  const prev = new Map([['same', good(doc('same', 's1'))]]);
  const m = mergeWithLastGood([file(doc('new', 'n1')), file(doc('same', 's1'))], [], prev, build, (k, d) => r.isRefused(k, d.hash));
  t.deepEqual(m.state.valid.map((d) => d.name), ['same']);
  t.deepEqual(m.withheld, [{ policy: 'new', file: '/p/new.yaml' }]);
  t.false(m.lastGood.has('new'));
  t.deepEqual(m.removed, [], 'a withheld policy is not reported as removed');
});

test('restoreLastGood puts the versions in force back (or removes a new policy)', (t) => {
  const next = new Map([['lock', good(doc('lock', 'v2'))], ['new', good(doc('new', 'n1'))], ['web', good(doc('web', 'w2'))]]);
  restoreLastGood(next, new Map([['lock', good(doc('lock', 'v1'))]]), [{ policy: 'lock', version: 'v2' }, { policy: 'new', version: 'n1' }]);
  t.deepEqual([...next].map(([k, g]) => `${k}@${g.doc.hash}`), ['lock@v1', 'web@w2']);
});
