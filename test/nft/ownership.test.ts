// Table ownership (src/nft/ownership.ts): nodewall replaces and deletes only tables it made.
// Kernel tests run in a throwaway namespace with a foreign `table inet filter`.

import test, { type ExecutionContext } from 'ava';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteTable } from '../../src/agent/drift.js';
import { applyModel } from '../../src/nft/apply.js';
import { runNft } from '../../src/nft/nft-exec.js';
import { ForeignTableError, ownerMarkComment, ownerMarkSet, ownershipOfJson, ownershipOfSets, readOwnership } from '../../src/nft/ownership.js';
import { readTable } from '../../src/nft/read-kernel.js';
import { renderPlan } from '../../src/nft/render.js';
import * as b from '../helpers/model-builders.js';
import { throwawayNetns } from './netns.js';

const nft = '/usr/sbin/nft';

const model = b.model({
  sets: [b.identity('pods', ['198.51.100.5/32'], ['2001:db8:100::5/128'], { kind: 'endpoints' })],
  ingress: b.enforced([b.allow('pods', [b.tcp(22)], 'spec.ingress[0]')]),
});

/** Someone else's firewall: a base chain with a rule and a set, in `table inet filter`. */
const foreignScript = [
  'table inet filter {',
  '\tset blocked { type ipv4_addr; elements = { 203.0.113.9 } }',
  '\tchain input {',
  '\t\ttype filter hook input priority filter; policy accept;',
  '\t\tip saddr @blocked counter drop comment "distro rule"',
  '\t\ttcp dport 9999 counter drop comment "distro rule 2"',
  '\t}',
  '}',
  '',
].join('\n');

/** An nft that runs inside `ns`: deleteTable takes a path, as the agent's config gives it. */
function nftIn(t: ExecutionContext, ns: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-own-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nft');
  writeFileSync(path, `#!/bin/sh\nexec nsenter --net=/run/netns/${ns} ${nft} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

async function listing(ns: string, table: string): Promise<string> {
  return (await runNft(nft, ['list', 'table', 'inet', table], { netns: ns })).stdout.replace(/packets \d+ bytes \d+/g, '');
}

test('ownership from sets: the mark, an older nodewall\'s structure marker, or foreign', (t) => {
  t.is(ownershipOfSets([{ name: ownerMarkSet, type: 'inet_proto', comment: ownerMarkComment }]), 'mark');
  t.is(ownershipOfSets([{ name: 'nw_structure_0123456789abcdef', type: 'inet_proto', comment: 'nodewall structure marker' }]), 'legacy');
  t.is(ownershipOfSets([]), 'foreign');
  // Look-alikes are not enough: the name and the comment must both be nodewall's.
  t.is(ownershipOfSets([{ name: ownerMarkSet, type: 'inet_proto', comment: 'mine' }]), 'foreign');
  t.is(ownershipOfSets([{ name: 'nw_structure_xyz', type: 'inet_proto', comment: 'nodewall structure marker' }]), 'foreign');
  t.is(ownershipOfSets([{ name: 'nw_structure_0123456789abcdef', type: 'ipv4_addr', comment: 'nodewall structure marker' }]), 'foreign');
  t.is(ownershipOfJson({ nftables: [{ table: { name: 'x' } }, { set: { name: ownerMarkSet, comment: ownerMarkComment } }, null, 'junk'] }), 'mark');
  t.is(ownershipOfJson({ nftables: 'not a list' }), 'foreign');
});

test('every rendered flavour carries the mark; the full and the structure-only script alike', (t) => {
  for (const mode of ['enforce', 'audit'] as const) {
    const plan = renderPlan(model, { table: 'nodewall', mode });
    for (const s of [plan.script, plan.structureScript]) t.true(s.includes(`\tset ${ownerMarkSet} {\n\t\ttype inet_proto\n\t\tcomment "${ownerMarkComment}"\n\t}`));
  }
});

test('a foreign table inet filter survives apply (full, dry-run, with a remembered state) and removeOnStop', async (t) => {
  const ns = await throwawayNetns(t, 'own');
  await runNft(nft, ['-f', '-'], { netns: ns, stdin: foreignScript });
  const before = await listing(ns, 'filter');
  t.is(await readOwnership(nft, 'filter', { netns: ns }), 'foreign');
  t.is((await readTable(nft, 'filter', { netns: ns }))?.ownership, 'foreign');

  const opts = { nftPath: nft, table: 'filter', mode: 'enforce', netns: ns } as const;
  const err = await t.throwsAsync(applyModel(model, opts), { instanceOf: ForeignTableError });
  t.regex(err?.message ?? '', /^refusing to replace table inet filter: it exists but was not created by nodewall \(no nw_owner ownership mark\)/);
  t.regex(err?.message ?? '', /Set nft\.table in the config to a name of nodewall's own \(default: nodewall\), or, .* `nodewall apply --adopt`/);
  await t.throwsAsync(applyModel(model, { ...opts, dryRun: true }), { instanceOf: ForeignTableError });
  // The agent passes what it applied last instead of reading the table: still checked before a full load.
  const remembered = renderPlan(b.model(), { table: 'filter', mode: 'enforce' });
  await t.throwsAsync(applyModel(model, { ...opts, previous: remembered }), { instanceOf: ForeignTableError });
  // Same structure remembered: the element delta fails on the foreign table, and its full fallback is refused.
  const sameStructure = renderPlan(b.model({ sets: [b.identity('pods', [], [], { kind: 'endpoints' })], ingress: model.ingress }), { table: 'filter', mode: 'enforce' });
  t.is(sameStructure.structureHash, renderPlan(model, { table: 'filter', mode: 'enforce' }).structureHash);
  await t.throwsAsync(applyModel(model, { ...opts, previous: sameStructure }), { instanceOf: ForeignTableError });

  const del = await deleteTable(nftIn(t, ns), 'filter');
  t.false(del.deleted);
  t.regex(del.error ?? '', /^refusing to delete table inet filter: .*nft delete table inet filter/);
  t.is(await listing(ns, 'filter'), before);
});

test('--adopt takes a foreign table over; afterwards it is nodewall\'s and needs no flag', async (t) => {
  const ns = await throwawayNetns(t, 'own');
  await runNft(nft, ['-f', '-'], { netns: ns, stdin: foreignScript });
  const opts = { nftPath: nft, table: 'filter', mode: 'enforce', netns: ns } as const;
  const r = await applyModel(model, { ...opts, adopt: true });
  t.true(r.adopted);
  t.is(r.kind, 'full');
  t.regex(r.reason, /^adopted table inet filter/);
  const after = await readTable(nft, 'filter', { netns: ns });
  t.is(after?.ownership, 'mark');
  t.false(after?.rules.some((x) => x.comment?.startsWith('distro rule')));
  t.true(after?.rules.some((x) => x.comment === 'p1 spec.ingress[0]'));
  t.false(after?.sets.has('blocked'));
  const again = await applyModel(model, opts);
  t.false(again.adopted);
  t.is(again.kind, 'noop');
  t.deepEqual(await deleteTable(nftIn(t, ns), 'filter'), { deleted: true });
  t.is(await readOwnership(nft, 'filter', { netns: ns }), 'absent');
});

test('a table written before the mark existed (structure marker only) is still nodewall\'s', async (t) => {
  const ns = await throwawayNetns(t, 'own');
  const markLines = new RegExp(`\\tset ${ownerMarkSet} \\{\\n[^}]*\\}\\n`);
  const legacy = renderPlan(model, { table: 'nodewall', mode: 'enforce' }).script.replace(markLines, '');
  t.false(legacy.includes(ownerMarkSet));
  await runNft(nft, ['-f', '-'], { netns: ns, stdin: legacy });
  t.is(await readOwnership(nft, 'nodewall', { netns: ns }), 'legacy');
  const r = await applyModel(model, { nftPath: nft, table: 'nodewall', mode: 'enforce', netns: ns });
  t.false(r.adopted);
  t.is(r.kind, 'full');
  t.is(await readOwnership(nft, 'nodewall', { netns: ns }), 'mark');
});
