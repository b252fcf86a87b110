// PodList against the plain sorted array it stands for: after any sequence of updates its pods equal
// the pods of a Map keyed by "namespace/name" sorted in UTF-16 code units (buildInventory's order),
// and every earlier list still gives the pods it had (updates share chunks, never change them).

import test from 'ava';
import fc from 'fast-check';
import { isPodListArray, PodList } from '../../src/inventory/pod-list.js';
import type { PodInfo } from '../../src/inventory/types.js';

const keyOf = (p: { namespace: string; name: string }): string => [p.namespace, '/', p.name].join('');

/** The reference: the pods of `byKey` sorted by key, as buildInventory sorts its pod keys. */
function reference(byKey: ReadonlyMap<string, PodInfo>): PodInfo[] {
  return [...byKey.keys()].sort().map((k) => byKey.get(k) as PodInfo);
}

// Few distinct characters, so keys collide often; '/' inside a namespace or name and non-ASCII
// (surrogate pairs sort by code unit, not by code point) included.
const part = fc.string({ unit: fc.constantFrom('a', 'b', 'z', '/', '-', 'é', '\u{1F600}', '\uFFFD'), minLength: 1, maxLength: 3 });
const pod = fc.record({ namespace: part, name: part, rev: fc.nat(9) }).map(
  (p): PodInfo => ({ namespace: p.namespace, name: p.name, labels: { rev: String(p.rev) }, addresses: [`192.0.2.${p.rev}`] }),
);
/** One update: pods set (inserted or replaced) and keys removed, the removals named by existing or new keys. */
const update = fc.array(fc.oneof(pod.map((p) => ({ set: p })), fc.record({ remove: fc.record({ namespace: part, name: part }) }), fc.record({ removeAt: fc.nat() })), { maxLength: 12 });

test('with() equals the sorted array of a Map updated the same way; earlier lists keep their pods', (t) => {
  fc.assert(
    fc.property(fc.array(pod, { maxLength: 40 }), fc.array(update, { maxLength: 25 }), fc.integer({ min: 1, max: 5 }), (initial, updates, chunkSize) => {
      const byKey = new Map<string, PodInfo>();
      for (const p of initial) byKey.set(keyOf(p), p);
      let list = PodList.of(reference(byKey), chunkSize);
      const history: { list: PodList; want: PodInfo[] }[] = [{ list, want: reference(byKey) }];
      for (const u of updates) {
        const changes = new Map<string, PodInfo | undefined>();
        for (const c of u) {
          if ('set' in c) changes.set(keyOf(c.set), c.set);
          else if ('remove' in c) changes.set(keyOf(c.remove), undefined);
          else {
            const keys = [...byKey.keys()];
            if (keys.length > 0) changes.set(keys[c.removeAt % keys.length] as string, undefined);
          }
        }
        for (const [k, p] of changes) {
          if (p === undefined) byKey.delete(k);
          else byKey.set(k, p);
        }
        list = list.with(changes);
        const want = reference(byKey);
        t.deepEqual([...list.toArray()], want);
        t.is(list.length, want.length);
        // Chunks stay small: split when grown, dropped when empty.
        t.true(list.chunkCount <= Math.max(1, want.length), `${list.chunkCount} chunks for ${want.length} pods`);
        history.push({ list, want });
      }
      for (const h of history) {
        t.deepEqual([...h.list.toArray()], h.want);
        t.is(h.list.length, h.want.length);
      }
    }),
    { numRuns: 300 },
  );
});

test('a chunk grown to twice the chunk size is split; emptied chunks are dropped; no change gives the same list', (t) => {
  const p = (name: string): PodInfo => ({ namespace: 'ns', name, labels: {}, addresses: ['192.0.2.1'] });
  let list = PodList.of([p('a'), p('b')], 2);
  t.is(list.chunkCount, 1);
  list = list.with(new Map([['ns/c', p('c')], ['ns/d', p('d')]]));
  t.is(list.chunkCount, 2, 'four pods in a chunk of size 2: split');
  t.deepEqual(list.toArray().map((x) => x.name), ['a', 'b', 'c', 'd']);
  list = list.with(new Map([['ns/a', undefined], ['ns/b', undefined]]));
  t.is(list.chunkCount, 1, 'the emptied chunk is gone');
  t.deepEqual(list.toArray().map((x) => x.name), ['c', 'd']);
  t.is(list.with(new Map()), list);
  const empty = list.with(new Map([['ns/c', undefined], ['ns/d', undefined], ['ns/zz', undefined]]));
  t.is(empty.length, 0);
  t.is(empty.chunkCount, 0);
  const again = empty.with(new Map([['ns/q', p('q')]]));
  t.deepEqual(again.toArray().map((x) => x.name), ['q']);
  t.throws(() => PodList.of([], 0), { instanceOf: RangeError });
});

test('toArray is made once per list and the array of PodList.of is the one given', (t) => {
  const pods: PodInfo[] = [{ namespace: 'a', name: 'x', labels: {}, addresses: ['192.0.2.1'] }];
  const list = PodList.of(pods);
  t.is(list.toArray(), pods);
  const next = list.with(new Map([['b/y', { namespace: 'b', name: 'y', labels: {}, addresses: ['192.0.2.2'] }]]));
  t.is(next.toArray(), next.toArray());
  t.is(list.toArray(), pods, 'the earlier list is untouched');
  t.is(pods.length, 1);
});

test('isPodListArray: true for the array a list was made of and for toArray(), false for any other array', (t) => {
  const pods: PodInfo[] = ['a', 'b', 'c'].map((name) => ({ namespace: 'ns', name, labels: {}, addresses: ['192.0.2.1'] }));
  const list = PodList.of(pods, 2);
  t.true(isPodListArray(pods));
  t.false(isPodListArray([...pods]));
  const next = list.with(new Map([['ns/b', undefined]]));
  const arr = next.toArray();
  t.true(isPodListArray(arr));
  t.deepEqual(arr.map((p) => p.name), ['a', 'c']);
  t.false(isPodListArray([...arr].reverse()));
});

test('a list made from its array holds only the array until its first update cuts the chunks; both lists then give their pods', (t) => {
  const p = (name: string): PodInfo => ({ namespace: 'ns', name, labels: {}, addresses: ['192.0.2.1'] });
  const sorted = ['a', 'b', 'c', 'd', 'e'].map(p);
  const list = PodList.of(sorted, 2);
  t.false(list.chunked, 'no chunks after PodList.of');
  t.is(list.toArray(), sorted, 'the array itself, not a copy');
  t.false(list.chunked, 'reading the array cuts no chunks');
  const next = list.with(new Map([['ns/c', undefined], ['ns/f', p('f')]]));
  t.true(list.chunked, 'the first update cuts the chunks');
  t.deepEqual(next.toArray().map((x) => x.name), ['a', 'b', 'd', 'e', 'f']);
  t.deepEqual(list.toArray().map((x) => x.name), ['a', 'b', 'c', 'd', 'e']);
  t.is(list.chunkCount, 3);
});
