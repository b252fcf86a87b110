// sameContent (kubernetes.ts) tells a status heartbeat (only the resourceVersion moved) from a real
// change; a CCNP spec too deep for JSON.stringify must count as changed, never throw from a watch event.
import test from 'ava';
import { sameContent } from '../../../src/inventory/sources/kubernetes.js';
import { stripObject } from '../../../src/inventory/sources/kube-kinds.js';

function ccnp(rv: string, spec: unknown) {
  return stripObject('ccnp', { metadata: { name: 'p', resourceVersion: rv }, spec });
}

test('equal apart from the resourceVersion is the same; a changed spec or no previous object is not', (t) => {
  t.true(sameContent(ccnp('1', { a: 1 }), ccnp('2', { a: 1 })));
  t.false(sameContent(ccnp('1', { a: 1 }), ccnp('2', { a: 2 })));
  t.false(sameContent(undefined, ccnp('2', { a: 1 })));
});

test('a spec nested too deeply for JSON.stringify counts as changed instead of throwing', (t) => {
  const depth = 200_000;
  const deep = JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown;
  t.throws(() => JSON.stringify(deep), { instanceOf: RangeError });
  t.false(sameContent(ccnp('1', deep), ccnp('2', deep)));
});
