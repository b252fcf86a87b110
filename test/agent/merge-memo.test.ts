// mergeWithLastGood with its memo (merge-memo.ts) must answer exactly as without it, pass after pass.

import test from 'ava';
import { fc } from '@fast-check/ava';
import type { Problem } from '../../src/api/problem.js';
import type { PolicyDocument } from '../../src/api/types.js';
import { mergeWithLastGood, type GoodEntry, type HeldFile, type Kept, type LastGood, type Loaded, type LoadedFile, type MergeResult } from '../../src/agent/last-good.js';
import { MergeMemo, SealedMap } from '../../src/agent/merge-memo.js';
import { restoreLastGood } from '../../src/agent/rollback.js';

// A policy is valid for the fake builder unless its hash starts with "bad".
function doc(name: string, file: string, hash: string): PolicyDocument {
  const pos = { file, line: 1, col: 1 };
  return { kind: 'CiliumClusterwideNetworkPolicy', name, rules: [], pos, locate: () => pos, hash };
}

function build(load: Loaded) {
  return { policies: load.policies, valid: load.policies.filter((p) => !p.hash.startsWith('bad')), problems: load.problems };
}

const files = ['/p/a.yaml', '/p/b.yaml', '/p/c.yaml'];
/** The decoded documents, the same objects from pass to pass (as the sources hand them out). */
const versions = files.map((f, i) => ['v1', 'v2', 'bad'].map((h) => doc(`pol-${i}`, f, `${h}-${i}`)));
const extra = files.map((f, i) => doc(`other-${i}`, f, `x-${i}`));
const syntax = files.map((f): Problem => ({ severity: 'error', pos: { file: f, line: 3, col: 1 }, field: '', message: 'bad YAML', code: 'yaml' }));

/** One file's state in a pass: absent, one of its versions (with or without a second policy), broken, or held. */
const fileState = fc.oneof(
  fc.constant({ kind: 'absent' as const }),
  // `edited`: another text (a comment changed) decoding to the very same documents.
  fc.record({ kind: fc.constant('doc' as const), version: fc.nat(2), withExtra: fc.boolean(), edited: fc.boolean() }),
  fc.constant({ kind: 'syntax' as const }),
  fc.record({ kind: fc.constant('held' as const), reason: fc.constantFrom('unsettled' as const, 'empty' as const, 'unreadable' as const) }),
);
type FileState = typeof fileState extends fc.Arbitrary<infer T> ? T : never;

function inputs(states: readonly FileState[]): { loaded: LoadedFile[]; held: HeldFile[] } {
  const loaded: LoadedFile[] = [];
  const held: HeldFile[] = [];
  states.forEach((s, i) => {
    const file = files[i]!;
    if (s.kind === 'doc') {
      const d = versions[i]![s.version]!;
      loaded.push({ file, textHash: `${file}#${d.hash}${s.withExtra ? '+x' : ''}${s.edited ? '+edit' : ''}`, load: { policies: s.withExtra ? [d, extra[i]!] : [d], objects: [], problems: [] } });
    } else if (s.kind === 'syntax') {
      loaded.push({ file, textHash: `${file}#syntax`, load: { policies: [], objects: [], problems: [syntax[i]!] } });
    } else if (s.kind === 'held') {
      held.push({ file, reason: s.reason });
    }
  });
  return { loaded, held };
}

/** Everything a merge answers, as plain data. */
function shape(r: MergeResult<ReturnType<typeof build>>): unknown {
  return {
    valid: r.state.valid.map((d) => d.hash),
    policies: r.state.policies.map((d) => d.hash),
    kept: r.kept,
    rejected: r.rejected,
    removed: r.removed,
    withheld: r.withheld ?? null,
    replaced: r.replacedProblems,
    lastGood: [...r.lastGood].map(([k, g]) => [k, g.key, g.file, g.textHash, g.doc.hash]),
  };
}

test('with the memo, every pass of a random sequence answers as without it', (t) => {
  let hits = 0;
  fc.assert(
    fc.property(fc.array(fc.tuple(fileState, fileState, fileState), { minLength: 1, maxLength: 15 }), fc.array(fc.nat(2), { maxLength: 15 }), (passes, repeats) => {
      const memo = new MergeMemo();
      let prevMemo: LastGood = new Map();
      let prevPlain: LastGood = new Map();
      for (const [i, states] of passes.entries()) {
        // Passes repeat (a pod event changes no file): that is when the memo answers.
        for (let r = 0; r <= (repeats[i] ?? 0); r++) {
          const { loaded, held } = inputs(states);
          const withMemo = mergeWithLastGood(loaded, held, prevMemo, build, undefined, memo);
          const plain = mergeWithLastGood(loaded, held, prevPlain, build);
          if (JSON.stringify(shape(withMemo)) !== JSON.stringify(shape(plain))) return false;
          prevMemo = withMemo.lastGood;
          prevPlain = plain.lastGood;
        }
      }
      hits += memo.hits;
      return true;
    }),
    { numRuns: 300 },
  );
  // The memo did answer (the property is not vacuous).
  t.true(hits > 0);
});

test('the memo notices a changed document, a changed last good map and a held file', (t) => {
  const memo = new MergeMemo();
  const a1 = versions[0]![0]!;
  const a2 = versions[0]![1]!;
  const f = (d: PolicyDocument): LoadedFile => ({ file: files[0]!, textHash: `h-${d.hash}`, load: { policies: [d], objects: [], problems: [] } });
  const first = mergeWithLastGood([f(a1)], [], new Map(), build, undefined, memo);
  const again = mergeWithLastGood([f(a1)], [], first.lastGood, build, undefined, memo);
  const third = mergeWithLastGood([f(a1)], [], again.lastGood, build, undefined, memo);
  t.is(memo.hits, 1);
  t.deepEqual(shape(third), shape(again));
  // The same documents from another text (a comment edited): the last good entry names the new text.
  const edited = mergeWithLastGood([{ ...f(a1), textHash: 'h-edited' }], [], third.lastGood, build, undefined, memo);
  t.is(edited.lastGood.get(a1.name)?.textHash, 'h-edited');
  // A new version of the policy: not the remembered answer.
  const changed = mergeWithLastGood([f(a2)], [], third.lastGood, build, undefined, memo);
  t.is(changed.lastGood.get(a2.name)?.doc, a2);
  // The same input, but the last good map holds another entry now (restored from disk): it is removed, not ignored.
  const other = doc('gone', '/p/gone.yaml', 'g');
  const prev = new Map(changed.lastGood);
  prev.set('gone', { key: 'gone', file: '/p/gone.yaml', textHash: 'g', doc: other });
  const withGone = mergeWithLastGood([f(a2)], [], prev, build, undefined, memo);
  t.deepEqual(withGone.removed.map((r) => r.policy), ['gone']);
  // The file is held now (and gone from the input): its policy stays at its last good version.
  const held = mergeWithLastGood([], [{ file: files[0]!, reason: 'unsettled' }], withGone.lastGood, build, undefined, memo);
  t.deepEqual(held.kept.map((k) => [k.policy, k.reason]), [[a2.name, 'unsettled']]);
  // The answer handed out is the memo's own and cannot be changed (changed deliberately: it was a fresh copy per
  // call, the memo's main cost); a copy changed by the agent (copy on write) never reaches a later answer.
  const x = mergeWithLastGood([f(a2)], [], changed.lastGood, build, undefined, memo);
  const y = mergeWithLastGood([f(a2)], [], x.lastGood, build, undefined, memo);
  t.is(y.lastGood, x.lastGood, 'a hit hands out the remembered map itself');
  const sealed = y.lastGood as Map<string, GoodEntry>;
  t.throws(() => sealed.clear(), { instanceOf: TypeError });
  t.throws(() => sealed.delete(a2.name), { instanceOf: TypeError });
  t.throws(() => sealed.set('x', sealed.get(a2.name)!), { instanceOf: TypeError });
  t.throws(() => Map.prototype.set.call(sealed, 'x', sealed.get(a2.name)!), { instanceOf: TypeError });
  t.throws(() => (y.kept as Kept[]).push({ policy: 'x', file: 'x', reason: 'invalid' }), { instanceOf: TypeError });
  const copy = new Map(y.lastGood);
  copy.clear();
  const z = mergeWithLastGood([f(a2)], [], x.lastGood, build, undefined, memo);
  t.is(z.lastGood.size, 1);
  t.is(z.lastGood.get(a2.name)?.doc, a2);
});

test('SealedMap: reads like a Map, has nothing that changes it, and is not changed by its source map', (t) => {
  const source = new Map<string, number>([['a', 1], ['b', 2]]);
  const m = SealedMap.of(source);
  source.set('c', 3);
  source.delete('a');
  t.deepEqual([...m], [['a', 1], ['b', 2]]);
  t.deepEqual([...m.entries()], [['a', 1], ['b', 2]]);
  t.deepEqual([...m.keys()], ['a', 'b']);
  t.deepEqual([...m.values()], [1, 2]);
  t.deepEqual([...new Map(m)], [['a', 1], ['b', 2]]);
  const seen: unknown[] = [];
  m.forEach((v, k, map) => seen.push([k, v, map === m]));
  t.deepEqual(seen, [['a', 1, true], ['b', 2, true]]);
  t.is(m.get('b'), 2);
  t.is(m.get('c'), undefined);
  t.true(m.has('a'));
  t.is(m.size, 2);
  const loose = m as unknown as Map<string, number>;
  t.throws(() => loose.set('c', 1), { instanceOf: TypeError });
  t.throws(() => Map.prototype.set.call(loose, 'c', 1), { instanceOf: TypeError });
  t.is(m.size, 2);
});

/** What the agent does to a last good map between passes, always on a copy (agent.ts: rollback, unconfirmed change, store). */
const agentChange = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  // A rollback or an unconfirmed change: named policies go back to an older map's versions (or away).
  fc.record({ kind: fc.constant('restore' as const), policies: fc.subarray(['pol-0', 'pol-1', 'pol-2', 'other-0', 'new'], { minLength: 1 }) }),
  // The persisted store read at start: an entry for a policy no file holds now.
  fc.constant({ kind: 'stored' as const }),
);

function changeCopy(prev: LastGood, older: LastGood, c: typeof agentChange extends fc.Arbitrary<infer T> ? T : never): LastGood {
  if (c.kind === 'none') return prev;
  const next = new Map(prev);
  if (c.kind === 'restore') restoreLastGood(next, older, c.policies.map((policy) => ({ policy, version: 'v' })));
  else next.set('stored', { key: 'stored', file: '/p/stored.yaml', textHash: 's', doc: doc('stored', '/p/stored.yaml', 's') });
  return next;
}

test('copy-on-write changes between passes never leak into a later memo answer, and the memo stays equal to the full bookkeeping', (t) => {
  let hits = 0;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.tuple(fileState, fileState, fileState), fc.nat(2), agentChange), { minLength: 1, maxLength: 12 }), (passes) => {
      const memo = new MergeMemo();
      let prevMemo: LastGood = new Map();
      let prevPlain: LastGood = new Map();
      let olderMemo: LastGood = new Map();
      let olderPlain: LastGood = new Map();
      for (const [states, repeats, change] of passes) {
        for (let r = 0; r <= repeats; r++) {
          const { loaded, held } = inputs(states);
          const withMemo = mergeWithLastGood(loaded, held, prevMemo, build, undefined, memo);
          const before = JSON.stringify(shape(withMemo));
          const plain = mergeWithLastGood(loaded, held, prevPlain, build);
          if (before !== JSON.stringify(shape(plain))) return false;
          // The agent's change after this pass, on a copy of the map it got (same change on both sides).
          const nextMemo = changeCopy(withMemo.lastGood, olderMemo, r === repeats ? change : { kind: 'none' });
          const nextPlain = changeCopy(plain.lastGood, olderPlain, r === repeats ? change : { kind: 'none' });
          // The answer handed out is unchanged by it.
          if (JSON.stringify(shape(withMemo)) !== before) return false;
          olderMemo = prevMemo;
          olderPlain = prevPlain;
          prevMemo = nextMemo;
          prevPlain = nextPlain;
        }
      }
      hits += memo.hits;
      return true;
    }),
    { numRuns: 300 },
  );
  t.true(hits > 0);
});
