import test from 'ava';
import fc from 'fast-check';
import { renderPlan } from '../../src/nft/render.js';
import { computeDeltas, describeChanges, diffLists, normalizeElement, planApply, renderDelta } from '../../src/nft/set-delta.js';
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

test('structure changed: full replace unless a chain delta can do it from a remembered layout', (t) => {
  const a = renderPlan(mk(['198.51.100.5/32']), opts);
  // A rule changed: with the previous rendering in memory only that policy's chain is replaced ...
  const ruleChanged = planApply(a, renderPlan(mk(['198.51.100.5/32'], 23), opts));
  t.is(ruleChanged.kind, 'delta');
  // ... from a kernel read-back (no chain texts) it is a full replace.
  t.is(planApply({ structureHash: a.structureHash, sets: a.sets }, renderPlan(mk(['198.51.100.5/32'], 23), opts)).kind, 'full');
  // Merged neighbours no longer change the declaration (issue 9): an element delta of the written-out addresses.
  const merged = planApply(a, renderPlan(mk(['198.51.100.0/28']), opts));
  t.is(merged.kind, 'delta', 'pods merged into a /28 stay in the hash set');
  t.is(renderPlan(mk(['198.51.100.0/28']), opts).structureHash, a.structureHash);
  if (merged.kind === 'delta') t.deepEqual([merged.added, merged.removed, merged.chains.length], [15, 0, 0]);
  // A declaration change (here the same set name for a CIDR identity) is still a full replace.
  const asCidr = b.model({ sets: [b.identity('pods', ['198.51.100.5/32'], ['2001:db8:100::5/128'])], ingress: b.enforced([b.allow('pods', [b.tcp(22)])]) });
  const declared = planApply(a, renderPlan(asCidr, opts));
  t.is(declared.kind, 'full', 'hash set became an interval set');
  t.regex(declared.reason, /set pods_v4 changed its declaration \(hash -> interval\)/);
  t.is(planApply(a, renderPlan(mk(['198.51.100.5/32']), { ...opts, mode: 'audit' })).kind, 'full', 'mode switch');
  t.is(planApply(a, renderPlan({ ...mk(['198.51.100.5/32']), node: 'other' }, opts)).kind, 'full', 'node renamed');
  t.is(planApply({ structureHash: null, sets: a.sets }, a).kind, 'full');
});

const policies = (p2Port: number, extra = false) =>
  b.model({
    sets: [
      b.identity('pods', ['198.51.100.5/32'], [], { kind: 'endpoints' }),
      b.identity('web', ['198.51.100.9/32'], [], { kind: 'endpoints' }),
      ...(extra ? [b.identity('cidr_x', ['203.0.113.0/24'], [], { kind: 'cidr' })] : []),
    ],
    ingress: b.enforced([
      b.deny('web', [b.tcp(25)], 'spec.ingressDeny[0]', 'p1'),
      ...(extra ? [b.deny('cidr_x', [b.anyL4], 'spec.ingressDeny[0]', 'p3')] : []),
      b.allow('pods', [b.tcp(22)], 'spec.ingress[0]', 'p1'),
      b.allow('web', [b.tcp(p2Port)], 'spec.ingress[0]', 'p2'),
    ]),
  });

test('a chain delta flushes and refills only the changed policy chain, guarded by the old marker', (t) => {
  const a = renderPlan(policies(80), opts);
  const next = renderPlan(policies(8080), opts);
  const p = planApply(a, next);
  if (p.kind !== 'delta') return t.fail(p.kind);
  const lines = p.script.trim().split('\n');
  t.is(lines[0], `delete set inet nodewall ${a.markerSet}`, 'the old marker goes first: a different kernel structure fails the whole delta');
  t.regex(lines[1] ?? '', new RegExp(`^add set inet nodewall ${next.markerSet} \\{ type inet_proto;`));
  const p2 = [...next.chains.keys()].find((n) => n.startsWith('nw_in_allow_p2_')) ?? '';
  t.deepEqual(p.chains, [p2]);
  t.deepEqual(lines.slice(2), [
    `flush chain inet nodewall ${p2}`,
    `add rule inet nodewall ${p2} ip saddr @web_v4 tcp dport 8080 counter accept comment "p2 spec.ingress[0]"`,
    `add rule inet nodewall ${p2} ip6 saddr @web_v6 tcp dport 8080 counter accept comment "p2 spec.ingress[0]"`,
  ]);
  t.false(p.script.includes('delete table'));
});

test('a new policy with a new set: set declared and filled, chain created, base chain rewritten; and back', (t) => {
  const a = renderPlan(policies(80), opts);
  const next = renderPlan(policies(80, true), opts);
  const p = planApply(a, next);
  if (p.kind !== 'delta') return t.fail(p.kind);
  const lines = p.script.trim().split('\n');
  const p3 = [...next.chains.keys()].find((n) => n.startsWith('nw_in_deny_p3_')) ?? '';
  const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
  // The new set is declared and filled by an earlier transaction (prefillScripts), never with the rules using it.
  t.is(p.prefill.length, 1);
  const pre = (p.prefill[0] ?? '').trim().split('\n');
  t.is(pre[0], `flush set inet nodewall ${a.markerSet}`);
  t.true(pre.findIndex((l) => l.startsWith('add element inet nodewall cidr_x_v4 { 203.0.113.0/24 }')) > pre.findIndex((l) => l.startsWith('add set inet nodewall cidr_x_v4 { type ipv4_addr; flags interval;')));
  t.is(at('add set inet nodewall cidr_x_v4'), -1);
  t.is(at('add element inet nodewall cidr_x_v4'), -1);
  t.true(at(`add chain inet nodewall ${p3}`) > 0);
  t.true(at(`add rule inet nodewall ${p3} ip saddr @cidr_x_v4`) > at(`add chain inet nodewall ${p3}`));
  t.true(at('flush chain inet nodewall input') > at(`add rule inet nodewall ${p3}`), 'the jump comes after the chain exists');
  t.deepEqual(p.chains, [p3, 'input']);
  // Removing it again: the chain and the sets go after the base chain no longer jumps to them.
  const back = planApply(next, renderPlan(policies(80), opts));
  if (back.kind !== 'delta') return t.fail(back.kind);
  const l2 = back.script.trim().split('\n');
  const at2 = (prefix: string) => l2.findIndex((l) => l.startsWith(prefix));
  t.true(at2(`delete chain inet nodewall ${p3}`) > at2('flush chain inet nodewall input'));
  t.true(at2('delete set inet nodewall cidr_x_v4') > at2(`delete chain inet nodewall ${p3}`));
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

test('diffLists equals a set difference for any two duplicate-free lists (head and tail skipping included)', (t) => {
  const list = fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 30 }).map((xs) => xs.map((x) => `198.51.100.${x}/32`));
  fc.assert(
    fc.property(list, list, fc.boolean(), (a, bRaw, share) => {
      // Often share a head and a tail, the case the skipping is for.
      const bList = share ? [...new Set([...a.slice(0, 5), ...bRaw, ...a.slice(-5)])] : bRaw;
      const { add, remove } = diffLists(a, bList);
      const sa = new Set(a);
      const sb = new Set(bList);
      t.deepEqual(new Set(add), new Set(bList.filter((e) => !sa.has(e))));
      t.deepEqual(new Set(remove), new Set(a.filter((e) => !sb.has(e))));
      t.is(add.length, new Set(add).size);
      t.is(remove.length, new Set(remove).size);
    }),
  );
});

test('a chain delta with large new sets fills them first, guarded by the old marker; the delta itself then only refers to them', (t) => {
  const a = renderPlan(policies(80), opts);
  const next = renderPlan(policies(80, true), opts);
  const small = planApply(a, next);
  const staged = planApply(a, next, { maxElementsPerTransaction: 0.5 });
  if (small.kind !== 'delta' || staged.kind !== 'delta') return t.fail();
  // Within the limit: one transaction declares and fills them; beyond it, the elements are spread over several.
  t.is(small.prefill.length, 1);
  // At most one element per transaction (the limit rounds up to 1).
  for (const s of staged.prefill) t.true((s.match(/add element [^{]*\{ ([^}]*) \}/g) ?? []).every((l) => !l.includes(',')));
  for (const s of [...small.prefill, ...staged.prefill]) t.is(s.split('\n')[0], `flush set inet nodewall ${a.markerSet}`);
  t.true(staged.prefill[0]?.includes('add set inet nodewall cidr_x_v4 {'));
  t.true(staged.prefill.join('').includes('add element inet nodewall cidr_x_v4 { 203.0.113.0/24 }'));
  t.is(staged.prefill.join('').split('add set inet nodewall cidr_x_v4 {').length, 2, 'declared once');
  t.false(staged.script.includes('add set inet nodewall cidr_x_v4'));
  t.false(staged.script.includes('add element inet nodewall cidr_x_v4'));
  t.true(staged.script.includes('ip saddr @cidr_x_v4'));
  t.regex(staged.reason, /filled first/);
});
