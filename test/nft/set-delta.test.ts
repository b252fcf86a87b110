import test from 'ava';
import { renderPlan } from '../../src/nft/render.js';
import { computeDeltas, describeChanges, normalizeElement, planApply, renderDelta } from '../../src/nft/set-delta.js';
import * as b from '../helpers/model-builders.js';

const mk = (v4: readonly string[], port = 22) =>
  b.model({
    sets: [b.identity('pods', v4, ['2001:db8:100::5/128'], { kind: 'endpoints' })],
    ingress: b.enforced([b.allow('pods', [b.tcp(port)])]),
  });
const opts = { table: 'nodewall', mode: 'enforce' } as const;

test('element normalisation matches what nft prints back', (t) => {
  t.is(normalizeElement('192.0.2.1'), '192.0.2.1/32');
  t.is(normalizeElement('10.0.0.0/8'), '10.0.0.0/8');
  t.is(normalizeElement('2001:DB8:0:0::1'), '2001:db8::1/128');
  t.is(normalizeElement('2001:db8:0:0:1:0:0:1/128'), '2001:db8::1:0:0:1/128');
  t.is(normalizeElement('::ffff:192.0.2.1'), '::ffff:c000:201/128');
  t.is(normalizeElement('10.0.0.1-10.0.0.9'), '10.0.0.1-10.0.0.9');
});

test('no previous table: full replace', (t) => {
  const p = planApply(null, renderPlan(mk(['198.51.100.5/32']), opts));
  t.is(p.kind, 'full');
});

test('same structure, same elements: noop', (t) => {
  const a = renderPlan(mk(['198.51.100.5/32']), opts);
  t.is(planApply(a, renderPlan(mk(['198.51.100.5/32']), opts)).kind, 'noop');
});

test('only addresses changed: a guarded element delta', (t) => {
  const a = renderPlan(mk(['198.51.100.5/32', '198.51.100.6/32']), opts);
  const next = renderPlan(mk(['198.51.100.6/32', '198.51.100.7/32']), opts);
  const p = planApply(a, next);
  if (p.kind !== 'delta') return t.fail(p.kind);
  t.is(p.added, 1);
  t.is(p.removed, 1);
  t.is(
    p.script,
    [
      `flush set inet nodewall nw_structure_${next.structureHash}`,
      'delete element inet nodewall pods_v4 { 198.51.100.5 }',
      'add element inet nodewall pods_v4 { 198.51.100.7 }',
      '',
    ].join('\n'),
  );
});

test('structure changed (rule, or set type): full replace', (t) => {
  const a = renderPlan(mk(['198.51.100.5/32']), opts);
  t.is(planApply(a, renderPlan(mk(['198.51.100.5/32'], 23), opts)).kind, 'full');
  t.is(planApply(a, renderPlan(mk(['198.51.100.0/28']), opts)).kind, 'full', 'hash set became an interval set');
  t.is(planApply({ structureHash: null, sets: a.sets }, a).kind, 'full');
});

test('deltas are chunked and compare canonical forms', (t) => {
  const before = renderPlan(mk(b.podAddresses(12000)), opts);
  const after = renderPlan(mk(b.podAddresses(12000, 6000)), opts);
  const d = computeDeltas(before, after);
  t.is(d.length, 1);
  t.is(d[0]?.add.length, 6000);
  t.is(d[0]?.remove.length, 6000);
  const script = renderDelta('nodewall', after.markerSet, d);
  t.is(script.split('\n').filter((l) => l.startsWith('add element')).length, 2);
  t.deepEqual(computeDeltas({ structureHash: null, sets: new Map([['pods_v6', { elements: ['2001:DB8:100:0::5'] }]]) }, renderPlan(mk([]), opts)).map((x) => x.set), []);
});

test('describeChanges names rules added and removed by comment', (t) => {
  const a = renderPlan(mk(['198.51.100.5/32']), opts);
  const other = b.model({
    sets: [b.identity('pods', ['198.51.100.5/32'], [], { kind: 'endpoints' })],
    ingress: b.enforced([b.allow('pods', [b.tcp(22)], 'spec.ingress[1]', 'p2')]),
  });
  const c = describeChanges(a, renderPlan(other, opts));
  t.deepEqual(
    c.rules.filter((r) => !r.comment.startsWith('nodewall')).map((r) => `${r.count} ${r.comment}`).sort(),
    ['-2 p1 spec.ingress[0]', '2 p2 spec.ingress[1]'],
  );
  t.deepEqual(c.sets.map((s) => [s.set, s.remove]), [['pods_v6', ['2001:db8:100::5/128']]]);
});
