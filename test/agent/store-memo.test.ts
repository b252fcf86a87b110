import test from 'ava';
import type { PolicyDocument } from '../../src/api/types.js';
import type { GoodEntry } from '../../src/agent/last-good.js';
import { StoreMemo } from '../../src/agent/store-memo.js';

const doc = (name: string): PolicyDocument => {
  const pos = { file: `/p/${name}.yaml`, line: 1, col: 1 };
  return { kind: 'CiliumClusterwideNetworkPolicy', name, rules: [], pos, locate: () => pos, hash: name };
};
const entry = (name: string, textHash: string): [string, GoodEntry] => [name, { key: name, file: `/p/${name}.yaml`, textHash, doc: doc(name) }];

test('the store counts as changed until saved, and again when an entry, the order, the state dir or the config differ', (t) => {
  const memo = new StoreMemo();
  const lastGood = new Map([entry('a', 't1'), entry('b', 't2')]);
  t.true(memo.changed('/s', 'c1', lastGood));
  memo.saved('/s', 'c1', lastGood);
  // A new map with the same entries (each pass makes one): unchanged.
  t.false(memo.changed('/s', 'c1', new Map([entry('a', 't1'), entry('b', 't2')])));
  t.true(memo.changed('/s', 'c1', new Map([entry('a', 't1'), entry('b', 't3')])));
  t.true(memo.changed('/s', 'c1', new Map([entry('b', 't2'), entry('a', 't1')])));
  t.true(memo.changed('/s', 'c1', new Map([entry('a', 't1')])));
  t.true(memo.changed('/s', 'c1', new Map([entry('a', 't1'), entry('b', 't2'), entry('c', 't4')])));
  t.true(memo.changed('/other', 'c1', lastGood));
  t.true(memo.changed('/s', 'c2', lastGood));
  t.true(memo.changed('/s', null, lastGood));
});

test('texts no entry refers to are pruned; a text added later is pruned on the next pass too', (t) => {
  const memo = new StoreMemo();
  const lastGood = new Map([entry('a', 't1')]);
  const texts = new Map([['t1', 'A'], ['t0', 'old']]);
  memo.prune(texts, lastGood);
  t.deepEqual([...texts.keys()], ['t1']);
  // A pass read a new (invalid, so not last good) version: its text goes on the next prune.
  texts.set('t9', 'new');
  memo.prune(texts, lastGood);
  t.deepEqual([...texts.keys()], ['t1']);
  // After a save the prune runs whatever the size: the entries may refer to other texts now.
  const moved = new Map([entry('a', 't2')]);
  texts.set('t2', 'A2');
  memo.prune(texts, lastGood);
  memo.saved('/s', null, moved);
  texts.delete('t2');
  texts.set('t2', 'A2');
  memo.prune(texts, moved);
  t.deepEqual([...texts.keys()], ['t2']);
});
