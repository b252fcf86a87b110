import test from 'ava';
import { renderPlan } from '../../src/nft/render.js';
import { dropRecordChainRules, dropRecordLines, dropRecordSetNames, recordsDrops } from '../../src/nft/render-drop-records.js';
import { directionRules } from '../../src/nft/render-rules.js';
import { planApply } from '../../src/nft/set-delta.js';
import * as b from '../helpers/model-builders.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' });
const pods = b.identity('pods', ['198.51.100.5/32'], ['2001:db8:100::5/128'], { kind: 'endpoints' });

function demo() {
  return b.model({
    sets: [world, pods],
    exclusions: { cluster: { v4: ['198.51.100.0/24'], v6: ['2001:db8:100::/64'] }, cluster_non_node: { v4: [], v6: [] } },
    ingress: b.enforced([b.allow('world', [b.tcp(22)], 'spec.ingress[0]'), b.deny('pods', [b.anyL4], 'spec.ingressDeny[0]')]),
    egress: b.enforced([b.allow('pods', [b.udp(53)], 'spec.egress[0]')], true),
  });
}

const settings = { size: 1000, timeoutSeconds: 120 };

test('with drop records every drop of both directions goes to the recording chain, never to a plain drop', (t) => {
  for (const direction of ['ingress', 'egress'] as const) {
    const rules = directionRules(demo(), direction, 'enforce', true);
    const chain = direction === 'ingress' ? 'nw_drop_in' : 'nw_drop_out';
    t.false(rules.some((r) => / drop( |$)/.test(r)), `${direction}: no plain drop`);
    t.true(rules.some((r) => r.includes(`goto ${chain}`) && r.includes('default-deny')));
    if (direction === 'ingress') {
      t.true(rules.some((r) => r.includes(`goto ${chain}`) && r.includes('spec.ingressDeny[0]')));
      t.true(rules.some((r) => r.includes(`goto ${chain}`) && r.includes('datapath icmpv6 drop')));
    }
  }
  // Without it, the rules are the plain drops they always were.
  t.true(directionRules(demo(), 'ingress', 'enforce').some((r) => /counter drop comment "nodewall default-deny"/.test(r)));
});

test('the recording chain records, then drops unconditionally, so a full set can never let a packet through', (t) => {
  const rules = dropRecordChainRules('ingress');
  t.is(rules.at(-1), 'counter drop comment "nodewall drop unrecorded"');
  for (const r of rules.slice(0, -1)) {
    t.regex(r, /update @nw_drop_in_v[46] \{ meta l4proto \. th [sd]port \. ip6? saddr counter \} add @nw_drop_in_v[46]_first \{ .* \} counter drop comment "nodewall drop /);
  }
  t.false(rules.some((r) => r.includes('accept')));
  t.true(dropRecordChainRules('egress').every((r) => !r.includes('saddr')));
});

test('the sets are bounded and timed as configured; drop records exist in enforce mode only', (t) => {
  const lines = dropRecordLines(settings).join('\n');
  t.is(lines.match(/size 1000\n/g)?.length, 8);
  t.is(lines.match(/timeout 120s\n/g)?.length, 8);
  t.is(lines.match(/flags dynamic,timeout/g)?.length, 8);
  t.true(recordsDrops('enforce', settings));
  t.false(recordsDrops('audit', settings));
  t.false(recordsDrops('dry-run', settings));
  t.false(recordsDrops('enforce', undefined));
  const audit = renderPlan(demo(), { table: 'nodewall', mode: 'audit', dropRecords: settings });
  t.false(audit.script.includes('nw_drop_'));
});

test('turning drop records on, or changing their size, is a full replace (skeleton change), not a chain delta', (t) => {
  const off = renderPlan(demo(), { table: 'nodewall', mode: 'enforce' });
  const on = renderPlan(demo(), { table: 'nodewall', mode: 'enforce', dropRecords: settings });
  const bigger = renderPlan(demo(), { table: 'nodewall', mode: 'enforce', dropRecords: { ...settings, size: 2000 } });
  t.not(off.structureHash, on.structureHash);
  t.not(on.structureHash, bigger.structureHash);
  t.is(planApply(off, on).kind, 'full');
  t.is(planApply(on, bigger).kind, 'full');
  t.is(planApply(on, renderPlan(demo(), { table: 'nodewall', mode: 'enforce', dropRecords: { ...settings } })).kind, 'noop');
  t.true(on.script.includes('chain nw_drop_in {'));
  // The chain cache keys on drop records too: rendering without them again gives plain drops.
  t.false(renderPlan(demo(), { table: 'nodewall', mode: 'enforce' }).script.includes('goto nw_drop_in'));
});

test('dropRecordSetNames: the four record sets the table declares, without the first-drop sets', (t) => {
  const names = dropRecordSetNames();
  t.deepEqual(names, ['nw_drop_in_v4', 'nw_drop_in_v6', 'nw_drop_out_v4', 'nw_drop_out_v6']);
  const declared = dropRecordLines({ size: 16, timeoutSeconds: 60 } as Parameters<typeof dropRecordLines>[0])
    .map((l) => /^\tset (\S+) \{$/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  for (const n of names) t.true(declared.includes(n), n);
  t.is(declared.filter((n) => !names.includes(n)).every((n) => n.endsWith('_first')), true);
});
