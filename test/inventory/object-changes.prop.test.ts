import test from 'ava';
import fc from 'fast-check';
import { objectChanges } from '../../src/inventory/build-inventory.js';
import type { KubeObject } from '../../src/api/types.js';

const obj = (n: number): KubeObject => ({ kind: 'Pod', metadata: { name: `p${n}`, namespace: 'ns' } }) as unknown as KubeObject;

/** The definition: in prev and not in next, in next and not in prev, each in its list's order. */
function reference(prev: readonly KubeObject[], next: readonly KubeObject[]): { gone: KubeObject[]; come: KubeObject[] } {
  const a = new Set(prev);
  const b = new Set(next);
  return { gone: prev.filter((o) => !b.has(o)), come: next.filter((o) => !a.has(o)) };
}

// Edits as a watch cache makes them (replace in place, append, splice out, move to the end), and random shuffles.
const edit = fc.oneof(
  fc.record({ op: fc.constant('replace' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('move' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
);

test('objectChanges equals the set difference for lists edited in place, inserted into, spliced and shuffled', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 60 }), fc.array(edit, { maxLength: 30 }), fc.integer({ min: 0, max: 40 }), (n, edits, limit) => {
      let made = 0;
      const prev = Array.from({ length: n }, () => obj(made++));
      const next = [...prev];
      for (const e of edits) {
        const at = next.length === 0 ? 0 : e.at % next.length;
        if (e.op === 'replace' && next.length > 0) next[at] = obj(made++);
        else if (e.op === 'insert') next.splice(at, 0, obj(made++));
        else if (e.op === 'remove') next.splice(at, 1);
        else if (e.op === 'move' && next.length > 0) next.push(...next.splice(at, 1));
        else if (e.op === 'swap' && next.length > 0) {
          const to = e.to % next.length;
          [next[at], next[to]] = [next[to]!, next[at]!];
        }
      }
      const want = reference(prev, next);
      const got = objectChanges(prev, next, limit);
      if (want.gone.length > limit || want.come.length > limit) {
        t.is(got, undefined);
        return;
      }
      t.deepEqual(got, want);
    }),
    { numRuns: 2000 },
  );
});
