// ObjectChangeLog against its definition: for every pair of snapshots, `since` is the identity set
// difference of their lists (objectChanges' contract), or undefined when an unknown or forgotten step
// lies between them or the answer is over the limit.

import test from 'ava';
import fc from 'fast-check';
import type { KubeObject } from '../../src/api/types.js';
import { objectChanges } from '../../src/inventory/build-inventory.js';
import { ObjectChangeLog, type ObjectChanges, type ObjectFeed } from '../../src/inventory/object-feed.js';

let made = 0;
const obj = (): KubeObject => ({ kind: 'Pod', metadata: { name: `p${made++}`, namespace: 'ns' } }) as unknown as KubeObject;

const sorted = (c: ObjectChanges): { gone: string[]; come: string[] } => ({
  gone: c.gone.map((o) => o.metadata.name).sort(),
  come: c.come.map((o) => o.metadata.name).sort(),
});

const edit = fc.oneof(
  fc.record({ op: fc.constant('replace' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('remove' as const), at: fc.nat() }),
);

test('since(r) is the set difference between the lists of r and of the feed, or undefined across an unknown or forgotten step', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 20 }), fc.array(fc.record({ edits: fc.array(edit, { maxLength: 6 }), unknown: fc.integer({ min: 0, max: 9 }) }), { maxLength: 40 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 30 }), (n, steps, keep, limit) => {
      const log = new ObjectChangeLog({ steps: keep, objects: limit });
      let list = Array.from({ length: n }, obj);
      const lists: KubeObject[][] = [list];
      const feeds: ObjectFeed[] = [log.commit(0, undefined)];
      const unknownAt: number[] = [0];
      for (const [i, s] of steps.entries()) {
        const next = [...list];
        const gone: KubeObject[] = [];
        const come: KubeObject[] = [];
        // The changes as a source sees them, event by event (an object may come and go within one step).
        for (const e of s.edits) {
          const at = next.length === 0 ? 0 : e.at % next.length;
          if (e.op === 'replace' && next.length > 0) {
            const o = obj();
            gone.push(next[at]!);
            come.push(o);
            next[at] = o;
          } else if (e.op === 'insert') {
            const o = obj();
            come.push(o);
            next.splice(at, 0, o);
          } else if (e.op === 'remove' && next.length > 0) {
            gone.push(...next.splice(at, 1));
          }
        }
        // Within one step the source reports the net change (what it held at the last snapshot vs now).
        const net = objectChanges(list, next, Infinity)!;
        const revision = i + 1;
        const unknown = s.unknown === 0;
        feeds.push(log.commit(revision, unknown ? undefined : net));
        if (unknown) unknownAt.push(revision);
        lists.push(next);
        list = next;
        t.true(gone.length >= net.gone.length && come.length >= net.come.length);
      }
      const last = feeds.length - 1;
      for (let from = 0; from <= last; from++) {
        for (const to of [from, Math.min(last, from + 3), last]) {
          const got = feeds[to]!.since(from);
          const want = objectChanges(lists[from]!, lists[to]!, Infinity)!;
          const blocked = unknownAt.some((u) => u > from && u <= to);
          const forgotten = from !== to && from < last - keep + 1;
          if (got === undefined) {
            t.true(blocked || forgotten || want.gone.length > limit || want.come.length > limit || from > to, `since(${from}) at ${to} unknown without a reason`);
            continue;
          }
          t.false(blocked, `since(${from}) at ${to} answered across an unknown step`);
          t.deepEqual(sorted(got), sorted(want));
        }
      }
      t.is(feeds[0]!.since(1), undefined, 'a later revision is not a base');
    }),
    { numRuns: 500 },
  );
});

test('feeds of different logs have different lineages, and revisions must increase', (t) => {
  const a = new ObjectChangeLog();
  const b = new ObjectChangeLog();
  t.not(a.commit(1, { gone: [], come: [] }).lineage, b.commit(1, { gone: [], come: [] }).lineage);
  t.throws(() => a.commit(1, { gone: [], come: [] }), { instanceOf: RangeError });
});
