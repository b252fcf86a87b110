// applyModel against a real kernel (inside the lab's node namespace): atomic
// replace, element-only updates, other tables untouched.

import test from 'ava';
import { applyModel } from '../../src/nft/apply.js';
import { NftError } from '../../src/nft/nft-exec.js';
import { readTable, ruleHandles } from '../../src/nft/read-kernel.js';
import { renderRuleset } from '../../src/nft/render.js';
import * as b from '../helpers/model-builders.js';
import { Lab, nftPath } from './lab.js';

const table = 'nodewall';

function podModel(podV4: readonly string[], port = 22) {
  return b.model({
    sets: [b.identity('pods', podV4, ['2001:db8:100::5/128'], { kind: 'endpoints' })],
    ingress: b.enforced([b.allow('pods', [b.tcp(port)], 'spec.ingress[0]')]),
  });
}

async function handles(lab: Lab): Promise<string[]> {
  const t = await readTable(nftPath, table, { netns: lab.nodeNs });
  return t === null ? [] : ruleHandles(t);
}

test('a failing script leaves the previous ruleset in place (same handles, same packets)', async (t) => {
  const lab = await Lab.create(t, 'atomic');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const first = await applyModel(podModel(['198.51.100.5/32']), opts);
  t.is(first.kind, 'full');
  const before = await handles(lab);
  t.true(before.length > 5);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 22 }, 'allow'), 'allow');

  // A script that breaks late (after `delete table`): nothing of it may land.
  const good = renderRuleset(podModel(['198.51.100.9/32'], 80), { table, mode: 'enforce' });
  const broken = good.replace('counter drop comment "nodewall default-deny"', 'counter bogus-verdict comment "x"');
  const err = await t.throwsAsync(lab.load(broken), { instanceOf: NftError });
  t.truthy(err?.line);
  // A semantically invalid element, found only by the kernel.
  const badElement = good.replace('elements = { 198.51.100.9 }', 'elements = { 198.51.100.9, 198.51.100.300 }');
  await t.throwsAsync(lab.load(badElement), { instanceOf: NftError });
  // And through applyModel: a model whose element is garbage fails, with the reason.
  const garbage = podModel(['198.51.100.9/32', 'not-an-address/32'], 80);
  const e2 = await t.throwsAsync(applyModel(garbage, opts), { instanceOf: NftError });
  t.regex(e2?.message ?? '', /not-an-address/);

  t.deepEqual(await handles(lab), before);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.9', proto: 'tcp', port: 80 }), 'deny');
});

test('only pod addresses changed: element delta, no rule handle changes, packets follow', async (t) => {
  const lab = await Lab.create(t, 'delta');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const a = await applyModel(podModel(['198.51.100.5/32', '198.51.100.6/32']), opts);
  const before = await handles(lab);
  const kernelBefore = await readTable(nftPath, table, { netns: lab.nodeNs });
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.7', proto: 'tcp', port: 22 }), 'deny');

  // From the kernel's state (what the CLI does)...
  const b1 = await applyModel(podModel(['198.51.100.6/32', '198.51.100.7/32']), opts);
  t.is(b1.kind, 'delta');
  t.is(b1.added, 1);
  t.is(b1.removed, 1);
  // ...and from the previous apply's state (what the agent does).
  const b2 = await applyModel(podModel(['198.51.100.7/32', '198.51.100.8/32']), { ...opts, previous: b1.state });
  t.is(b2.kind, 'delta');
  const noop = await applyModel(podModel(['198.51.100.7/32', '198.51.100.8/32']), { ...opts, previous: b2.state });
  t.is(noop.kind, 'noop');

  t.deepEqual(await handles(lab), before);
  const kernelAfter = await readTable(nftPath, table, { netns: lab.nodeNs });
  t.is(kernelAfter?.structureHash, kernelBefore?.structureHash);
  t.deepEqual(kernelAfter?.sets.get('pods_v4')?.elements, ['198.51.100.7/32', '198.51.100.8/32']);
  t.is(a.structureHash, b2.structureHash);
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 22 }), 'deny');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.8', proto: 'tcp', port: 22 }, 'allow'), 'allow');
});

test('a stale previous state falls back to a full replace instead of corrupting the table', async (t) => {
  const lab = await Lab.create(t, 'stale');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const a = await applyModel(podModel(['198.51.100.5/32']), opts);
  // Someone else removes an element behind nodewall's back.
  await lab.nft(['delete', 'element', 'inet', table, 'pods_v4', '{ 198.51.100.5 }']);
  const r = await applyModel(podModel(['198.51.100.6/32']), { ...opts, previous: a.state });
  t.is(r.kind, 'full');
  t.regex(r.reason, /element delta failed/);
  const k = await readTable(nftPath, table, { netns: lab.nodeNs });
  t.deepEqual(k?.sets.get('pods_v4')?.elements, ['198.51.100.6/32']);
  // A table replaced by a different structure: the marker guard refuses the delta.
  await applyModel(podModel(['198.51.100.6/32'], 80), opts);
  const r2 = await applyModel(podModel(['198.51.100.7/32']), { ...opts, previous: r.state });
  t.is(r2.kind, 'full');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.7', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.6', proto: 'tcp', port: 80 }), 'deny');
});

test('dry run plans and checks but changes nothing', async (t) => {
  const lab = await Lab.create(t, 'dry');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const none = await applyModel(podModel(['198.51.100.5/32']), { ...opts, dryRun: true });
  t.is(none.kind, 'full');
  t.is(await readTable(nftPath, table, { netns: lab.nodeNs }), null);
  await applyModel(podModel(['198.51.100.5/32']), opts);
  const before = await handles(lab);
  const d = await applyModel(podModel(['198.51.100.6/32']), { ...opts, dryRun: true });
  t.is(d.kind, 'delta');
  t.deepEqual(d.changes?.sets.map((s) => [s.set, s.remove, s.add]), [['pods_v4', ['198.51.100.5/32'], ['198.51.100.6/32']]]);
  const f = await applyModel(podModel(['198.51.100.5/32'], 443), { ...opts, dryRun: true });
  t.is(f.kind, 'full');
  t.true(f.changes?.rules.some((r) => r.chain === 'input' && r.comment === 'p1 spec.ingress[0]') === false, 'same comment, same count');
  t.deepEqual(await handles(lab), before);
  const k = await readTable(nftPath, table, { netns: lab.nodeNs });
  t.deepEqual(k?.sets.get('pods_v4')?.elements, ['198.51.100.5/32']);
});

test('other tables are left untouched by full replace, delta and failure', async (t) => {
  const lab = await Lab.create(t, 'others');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await lab.load(
    [
      'table inet other {',
      '  set s { type ipv4_addr; elements = { 192.0.2.77 }; }',
      '  chain c {',
      '    type filter hook input priority 10; policy accept;',
      '    ip saddr @s counter accept comment "theirs"',
      '  }',
      '}',
      'table ip legacy {',
      '  chain c {',
      '    type filter hook output priority -10; policy accept;',
      '    counter',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const listOthers = async () => (await lab.nft(['-a', 'list', 'table', 'inet', 'other'])).stdout + (await lab.nft(['-a', 'list', 'table', 'ip', 'legacy'])).stdout;
  const before = (await listOthers()).replace(/packets \d+ bytes \d+/g, '');
  await applyModel(podModel(['198.51.100.5/32']), opts);
  await applyModel(podModel(['198.51.100.6/32']), opts);
  await applyModel(podModel(['198.51.100.6/32'], 80), opts);
  await t.throwsAsync(applyModel(podModel(['bad/32']), opts));
  t.is((await listOthers()).replace(/packets \d+ bytes \d+/g, ''), before);
  const tables = (await lab.nft(['list', 'tables'])).stdout.trim().split('\n').sort();
  t.deepEqual(tables, ['table inet nodewall', 'table inet other', 'table ip legacy']);
});

test('onFullLoad (the drift hash prediction) starts only for a full load that is the apply\'s one transaction (a cold start), not for a full replace of an existing table', async (t) => {
  const lab = await Lab.create(t, 'onfull');
  const calls: string[] = [];
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs, onFullLoad: (r: { structureHash: string }) => void calls.push(r.structureHash) } as const;
  const a = await applyModel(podModel(['198.51.100.5/32']), opts);
  // A cold start: create (with the elements, within the limit), hook (cold-start.ts), predicted from its structure.
  t.like(a, { kind: 'full', transactions: 2, predictable: true });
  t.deepEqual(calls, [a.structureHash], 'a first full load: predicted');
  // A stale previous state: the element delta fails, the full replace after it is made before break (4 more).
  await lab.nft(['delete', 'element', 'inet', table, 'pods_v4', '{ 198.51.100.5 }']);
  const r = await applyModel(podModel(['198.51.100.6/32']), { ...opts, previous: a.state });
  t.like(r, { kind: 'full', transactions: 5, predictable: false });
  t.regex(r.reason, /element delta failed/);
  t.deepEqual(calls, [a.structureHash], 'no prediction for the fallback (its result is of several transactions)');
  // A full replace on its own (drift repair) is made before break too: no prediction.
  const full = await applyModel(podModel(['198.51.100.6/32']), { ...opts, replace: true });
  t.like(full, { kind: 'full', transactions: 4, predictable: false });
  t.deepEqual(calls, [a.structureHash]);
  // A cold start again (staged: create, fill, hook) is predicted.
  await lab.nft(['delete', 'table', 'inet', table]);
  const cold = await applyModel(podModel(['198.51.100.6/32']), { ...opts, replace: true });
  t.like(cold, { kind: 'full', transactions: 2, predictable: true });
  t.deepEqual(calls, [a.structureHash, cold.structureHash]);
});
