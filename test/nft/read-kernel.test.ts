import test from 'ava';
import { loadScript } from '../../src/nft/nft-exec.js';
import { parseTableJson, readTable, splitComment, valueText } from '../../src/nft/read-kernel.js';
import { renderPlan } from '../../src/nft/render.js';
import * as b from '../helpers/model-builders.js';
import { throwawayNetns } from './netns.js';

const nft = '/usr/sbin/nft';

test('comments map back to policy and rule; nodewall\'s own comments to neither', (t) => {
  t.deepEqual(splitComment('demo-host-policy spec.ingress[1]'), { policy: 'demo-host-policy', rule: 'spec.ingress[1]' });
  t.deepEqual(splitComment('nodewall default-deny'), {});
  t.deepEqual(splitComment('nodewall audit ipv4'), {});
  t.deepEqual(splitComment(undefined), {});
});

test('nft JSON values become CIDRs, ranges and concatenations', (t) => {
  t.is(valueText('192.0.2.1', 'ipv4'), '192.0.2.1/32');
  t.is(valueText('2001:db8::1', 'ipv6'), '2001:db8::1/128');
  t.is(valueText({ prefix: { addr: '10.0.0.0', len: 8 } }, 'ipv4'), '10.0.0.0/8');
  t.is(valueText({ range: [8000, 8080] }), '8000-8080');
  t.is(valueText({ elem: { val: { concat: ['203.0.113.7', 6, 22] }, timeout: 600 } }), '203.0.113.7 . 6 . 22');
  t.is(valueText({ set: [22, { range: [8000, 8080] }] }), '22,8000-8080');
});

test('a missing table reads as null; a loaded one reads back rules, counters, sets and the structure hash', async (t) => {
  const ns = await throwawayNetns(t, 'read');
  t.is(await readTable(nft, 'nodewall', { netns: ns }), null);
  const m = b.model({
    sets: [
      b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' }),
      b.identity('pods', ['198.51.100.5/32', '198.51.100.6/32'], ['2001:db8:100::5/128'], { kind: 'endpoints' }),
    ],
    exclusions: { cluster: { v4: ['198.51.100.0/24'], v6: ['2001:db8:100::/64'] }, cluster_non_node: { v4: [], v6: [] } },
    ingress: b.enforced([b.deny('pods', [b.tcp(25)], 'spec.ingressDeny[0]'), b.allow('world', [b.tcp(22, [8000, 8080])], 'spec.ingress[0]')]),
  });
  const plan = renderPlan(m, { table: 'nodewall', mode: 'enforce' });
  await loadScript(nft, plan.script, { netns: ns });
  const k = await readTable(nft, 'nodewall', { netns: ns });
  if (k === null) return t.fail('table not read');
  t.is(k.structureHash, plan.structureHash);
  t.deepEqual(k.sets.get('pods_v4')?.elements, ['198.51.100.5/32', '198.51.100.6/32']);
  t.deepEqual(k.sets.get('pods_v6')?.elements, ['2001:db8:100::5/128']);
  t.deepEqual(k.sets.get('world_v4')?.flags, ['interval']);
  t.deepEqual(k.sets.get('nw_excl_cluster_v4')?.elements, ['198.51.100.0/24']);
  // Base chains hook input and output; every policy has a regular chain per direction and action.
  t.deepEqual(k.chains.filter((c) => c.hook !== undefined).map((c) => [c.name, c.hook, c.policy]), [['input', 'input', 'accept'], ['output', 'output', 'accept']]);
  t.deepEqual(k.chains.filter((c) => c.hook === undefined).map((c) => c.name), [...plan.chains.keys()].filter((n) => n !== 'input' && n !== 'output'));
  t.deepEqual(k.rules.filter((r) => r.verdict.startsWith('jump ')).map((r) => [r.chain, r.verdict]), [
    ['input', `jump ${[...plan.chains.keys()].find((n) => n.startsWith('nw_in_deny_p1_')) ?? '?'}`],
    ['input', `jump ${[...plan.chains.keys()].find((n) => n.startsWith('nw_in_allow_p1_')) ?? '?'}`],
  ]);
  const ssh = k.rules.filter((r) => r.policy === 'p1' && r.rule === 'spec.ingress[0]');
  t.deepEqual(ssh.map((r) => [r.family, r.sets, r.excludedSets, r.l4, r.verdict]), [
    // The single port and the range are two rules (render-rules.ts numberList: no anonymous interval sets).
    ['ipv4', ['world_v4'], ['nw_excl_cluster_v4'], 'tcp/22', 'accept'],
    ['ipv6', ['world_v6'], ['nw_excl_cluster_v6'], 'tcp/22', 'accept'],
    ['ipv4', ['world_v4'], ['nw_excl_cluster_v4'], 'tcp/8000-8080', 'accept'],
    ['ipv6', ['world_v6'], ['nw_excl_cluster_v6'], 'tcp/8000-8080', 'accept'],
  ]);
  t.deepEqual(k.rules.filter((r) => r.rule === 'spec.ingressDeny[0]').map((r) => r.verdict), ['drop', 'drop']);
  t.true(k.rules.every((r) => r.comment !== undefined && r.packets >= 0));
  t.is(k.rules.filter((r) => r.chain === 'input').length, plan.rules.filter((r) => r.chain === 'input').length);
});

test('parseTableJson tolerates a table without nodewall\'s marker', (t) => {
  const json = JSON.stringify({ nftables: [{ metainfo: { json_schema_version: 1 } }, { table: { family: 'inet', name: 'x', handle: 1 } }] });
  const k = parseTableJson(json, 'x');
  t.is(k.structureHash, null);
  t.is(k.rules.length, 0);
});
