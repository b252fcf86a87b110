import test from 'ava';
import type { Problem } from '../../src/api/problem.js';
import type { PolicyDocument } from '../../src/api/types.js';
import { keptMessage, mergeWithLastGood, type GoodEntry, type Loaded, type LoadedFile } from '../../src/agent/last-good.js';

// A policy is "valid" for the fake builder unless its hash starts with "bad".
function doc(name: string, file: string, hash: string): PolicyDocument {
  const pos = { file, line: 1, col: 1 };
  return { kind: 'CiliumClusterwideNetworkPolicy', name, rules: [], pos, locate: () => pos, hash };
}

function build(load: Loaded) {
  return { policies: load.policies, valid: load.policies.filter((p) => !p.hash.startsWith('bad')), problems: load.problems };
}

function file(name: string, textHash: string, policies: PolicyDocument[], problems: Problem[] = []): LoadedFile {
  return { file: name, textHash, load: { policies, objects: [], problems } };
}

function good(d: PolicyDocument, textHash: string): GoodEntry {
  return { key: d.name, file: d.pos.file, textHash, doc: d };
}

const syntaxError = (f: string): Problem => ({ severity: 'error', pos: { file: f, line: 3, col: 1 }, field: '', message: 'bad YAML', code: 'yaml' });

test('all good: the current versions are used and become last good', (t) => {
  const a = doc('a', '/p/a.yaml', 'h1');
  const r = mergeWithLastGood([file('/p/a.yaml', 't1', [a])], [], new Map(), build);
  t.deepEqual(r.state.valid.map((p) => p.hash), ['h1']);
  t.deepEqual(r.kept, []);
  t.deepEqual([...r.lastGood.values()].map((g) => [g.key, g.textHash]), [['a', 't1']]);
});

test('an invalid new version keeps the last good version in force', (t) => {
  const old = doc('a', '/p/a.yaml', 'h1');
  const now = doc('a', '/p/a.yaml', 'bad2');
  const b = doc('b', '/p/b.yaml', 'h3');
  let calls = 0;
  const r = mergeWithLastGood([file('/p/a.yaml', 't2', [now]), file('/p/b.yaml', 't3', [b])], [], new Map([['a', good(old, 't1')]]), (l) => {
    calls++;
    return build(l);
  });
  t.is(calls, 2);
  t.deepEqual(r.state.valid.map((p) => p.hash).sort(), ['h1', 'h3']);
  t.deepEqual(r.kept, [{ policy: 'a', file: '/p/a.yaml', reason: 'invalid' }]);
  t.is(r.lastGood.get('a')?.textHash, 't1');
  t.is(r.lastGood.get('b')?.textHash, 't3');
});

test('a brand-new invalid policy is not applied', (t) => {
  const r = mergeWithLastGood([file('/p/n.yaml', 't', [doc('n', '/p/n.yaml', 'bad')])], [], new Map(), build);
  t.deepEqual(r.state.valid, []);
  t.deepEqual(r.rejected, [{ policy: 'n', file: '/p/n.yaml' }]);
  t.false(r.lastGood.has('n'));
});

test('a policy the loader could not decode (named by an error, absent) keeps its last good version', (t) => {
  const old = doc('a', '/p/a.yaml', 'h1');
  const decodeError: Problem = { severity: 'error', pos: { file: '/p/a.yaml', line: 7, col: 5 }, policy: 'a', field: 'spec', message: 'not a map', code: 'decode' };
  const r = mergeWithLastGood([file('/p/a.yaml', 't2', [], [decodeError])], [], new Map([['a', good(old, 't1')]]), build);
  t.deepEqual(r.state.valid.map((p) => p.hash), ['h1']);
  t.deepEqual(r.kept, [{ policy: 'a', file: '/p/a.yaml', reason: 'invalid' }]);
  // the error of the replaced version does not reach the builder
  t.deepEqual((r.state as ReturnType<typeof build>).problems, []);
});

test('a file that no longer parses keeps the last good versions of its policies', (t) => {
  const a = doc('a', '/p/two.yaml', 'h1');
  const b = doc('b', '/p/two.yaml', 'h2');
  const prev = new Map([['a', good(a, 't1')], ['b', good(b, 't1')]]);
  const r = mergeWithLastGood([file('/p/two.yaml', 't9', [], [syntaxError('/p/two.yaml')])], [], prev, build);
  t.deepEqual(r.state.valid.map((p) => p.name).sort(), ['a', 'b']);
  t.deepEqual(r.kept.map((k) => k.reason), ['unreadable', 'unreadable']);
});

test('an unreadable file keeps its policies; a deleted file drops them', (t) => {
  const a = doc('a', '/p/a.yaml', 'h1');
  const b = doc('b', '/p/b.yaml', 'h2');
  const prev = new Map([['a', good(a, 't1')], ['b', good(b, 't2')]]);
  const r = mergeWithLastGood([], ['/p/a.yaml'], prev, build);
  t.deepEqual(r.state.valid.map((p) => p.name), ['a']);
  t.deepEqual([...r.lastGood.keys()], ['a']);
});

test('a policy moved to another file is taken from its new file', (t) => {
  const old = doc('a', '/p/a.yaml', 'h1');
  const moved = doc('a', '/p/other.yaml', 'h5');
  const r = mergeWithLastGood(
    [file('/p/a.yaml', 't9', [], [syntaxError('/p/a.yaml')]), file('/p/other.yaml', 't5', [moved])],
    [], new Map([['a', good(old, 't1')]]), build,
  );
  t.deepEqual(r.state.valid.map((p) => p.hash), ['h5']);
  t.deepEqual(r.kept, []);
});

test('a missing source directory keeps the policies of the files under it', (t) => {
  const a = doc('a', '/etc/nodewall/policies/a.yaml', 'h1');
  const r = mergeWithLastGood([], ['/etc/nodewall/policies'], new Map([['a', good(a, 't1')]]), build);
  t.deepEqual(r.state.valid.map((p) => p.name), ['a']);
  t.deepEqual(r.kept, [{ policy: 'a', file: '/etc/nodewall/policies/a.yaml', reason: 'unreadable' }]);
});

test('the problems of a replaced version are handed back for logging', (t) => {
  const old = doc('a', '/p/a.yaml', 'h1');
  const err: Problem = { severity: 'error', pos: { file: '/p/a.yaml', line: 9, col: 15 }, policy: 'a', field: 'spec.ingress[0].toPorts[0].ports[0].port', message: 'port out of range', code: 'port' };
  const buildWithErr = (load: Loaded) => ({ ...build(load), problems: load.policies.some((p) => p.hash === 'bad2') ? [err] : [] });
  const r = mergeWithLastGood([file('/p/a.yaml', 't2', [doc('a', '/p/a.yaml', 'bad2')])], [], new Map([['a', good(old, 't1')]]), buildWithErr);
  t.deepEqual(r.replacedProblems, [err]);
  t.deepEqual(r.state.problems, []);
});

test('held files: an unsettled or empty file keeps its policies with that reason; a plain path is unreadable', (t) => {
  const a = doc('a', '/p/a.yaml', 'h1');
  const b = doc('b', '/p/b.yaml', 'h2');
  const c = doc('c', '/p/c.yaml', 'h3');
  const prev = new Map([['a', good(a, 't1')], ['b', good(b, 't2')], ['c', good(c, 't3')]]);
  const r = mergeWithLastGood([file('/p/b.yaml', 't0', [])], [{ file: '/p/a.yaml', reason: 'unsettled' }, { file: '/p/b.yaml', reason: 'empty' }, '/p/c.yaml'], prev, build);
  t.deepEqual(r.state.valid.map((p) => p.name).sort(), ['a', 'b', 'c']);
  t.deepEqual(r.kept.map((k) => [k.policy, k.reason]).sort(), [['a', 'unsettled'], ['b', 'empty'], ['c', 'unreadable']]);
  t.regex(keptMessage(r.kept.find((k) => k.reason === 'empty')!), /delete the file/);
  t.regex(keptMessage(r.kept.find((k) => k.reason === 'unsettled')!), /still changing/);
  // A new policy in an empty or unsettled file has no last good version: nothing to keep.
  t.deepEqual(mergeWithLastGood([], [{ file: '/p/n.yaml', reason: 'empty' }], new Map(), build).kept, []);
});

test('one objects file with a sized feed: its list is read by nobody but the builder, in the first build and in the merged one', async (t) => {
  const { ObjectChangeLog } = await import('../../src/inventory/object-feed.js');
  const list = [{ kind: 'Node', metadata: { name: 'n1' } }] as unknown as Loaded['objects'];
  let reads = 0;
  const feed = new ObjectChangeLog().commit(1, undefined, list.length);
  const objectsFile: LoadedFile = {
    file: 'k8s:cluster-objects',
    textHash: 'k8s-objects@api#1',
    load: {
      policies: [],
      get objects() {
        reads++;
        return list;
      },
      problems: [],
      objectFeed: feed,
    },
  };
  const old = doc('a', 'k8s:ccnp/a', 'h1');
  const now = doc('a', 'k8s:ccnp/a', 'bad2');
  const seen: { reads: number; objects: unknown; feed: unknown }[] = [];
  const r = mergeWithLastGood([file('k8s:ccnp/a', 't2', [now]), objectsFile], [], new Map([['a', good(old, 't1')]]), (l) => {
    const before = reads;
    seen.push({ reads: before, objects: l.objects, feed: l.objectFeed });
    return build(l);
  });
  t.is(seen.length, 2, 'first build, then the build with the last good version');
  for (const s of seen) {
    t.is(s.objects, list, 'the list itself, read through');
    t.is(s.feed, feed);
  }
  t.is(seen[0]!.reads, 0, 'not read before the first build read it');
  t.is(reads, 2, 'read only by the two builds');
  t.deepEqual(r.kept, [{ policy: 'a', file: 'k8s:ccnp/a', reason: 'invalid' }]);
  // An empty sized list counts as no objects file (as an empty list did): no feed handed on.
  const emptyFeed = new ObjectChangeLog().commit(1, undefined, 0);
  const r2 = mergeWithLastGood([{ ...objectsFile, load: { policies: [], objects: [], problems: [], objectFeed: emptyFeed } }], [], new Map(), (l) => {
    t.is(l.objectFeed, undefined);
    t.deepEqual(l.objects, []);
    return build(l);
  });
  t.deepEqual(r2.kept, []);
});
