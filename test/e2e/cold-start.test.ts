// Staged cold start against a real kernel: a table with more set elements than
// nft.maxElementsPerTransaction is loaded in several transactions, and between
// any two of them traffic never meets a partly filled set. An nft wrapper stops
// after every transaction until the test has looked at the kernel and sent a
// packet from an address that is in the last chunk of the big set.

import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { applyModel, type ApplyResult } from '../../src/nft/apply.js';
import { coldStartScripts } from '../../src/nft/cold-start.js';
import { NftError, setNftRunner, spawnNft } from '../../src/nft/nft-exec.js';
import { NftRerunError } from '../../src/nft/nft-launcher.js';
import { readTable } from '../../src/nft/read-kernel.js';
import { renderPlan } from '../../src/nft/render.js';
import type { HostModel } from '../../src/policy/model.js';
import * as b from '../helpers/model-builders.js';
import { Lab, nftPath, type Probe } from './lab.js';
import { type CanonTable, canonReference, canonTable } from './table-canon.js';

const table = 'nodewall';
const last = '203.0.113.77';
const total = 10_001;
const perTransaction = 2000;

/** 10,000 addresses nobody sends from, then the one the probe uses: it lands in the last fill transaction. */
function bigModel(): HostModel {
  const v4: string[] = [];
  for (let n = 0; n < total - 1; n++) v4.push(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32`);
  v4.push(`${last}/32`);
  return b.model({
    sets: [b.identity('big', v4, [], { kind: 'endpoints' }), b.identity('small', ['198.51.100.5/32'], [], { kind: 'endpoints' })],
    ingress: b.enforced([b.allow('big', [b.tcp(7001)], 'spec.ingress[0]', 'pbig'), b.allow('small', [b.tcp(7002)], 'spec.ingress[0]', 'psmall')]),
  });
}

/**
 * An nft wrapper: every `nft -f -` runs the real nft, then (handshake) writes done.N and waits for ack.N,
 * or (failAt) gets a command the kernel refuses appended on its failAt-th run.
 */
async function wrapper(t: ExecutionContext, opts: { handshake?: boolean; failAt?: number }): Promise<{ path: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-cold-nft-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const failure = 'add table inet nwfail\nadd set inet nwfail tiny { type ipv4_addr; size 2; }\nadd element inet nwfail tiny { 192.0.2.1, 192.0.2.2, 192.0.2.3 }\n';
  await writeFile(join(dir, 'failure.nft'), failure);
  const script = [
    '#!/bin/sh',
    `d='${dir}'`,
    'if [ "$1" != "-f" ] || [ "$2" != "-" ]; then exec ' + nftPath + ' "$@"; fi',
    'n=$(ls "$d" | grep -c "^run\\.")',
    'touch "$d/run.$n"',
    opts.failAt === undefined
      ? `${nftPath} -f -`
      : `if [ "$n" -eq ${opts.failAt} ]; then { cat; cat "$d/failure.nft"; } | ${nftPath} -f -; else ${nftPath} -f -; fi`,
    'rc=$?',
    ...(opts.handshake === true
      ? ['touch "$d/done.$n"', 'i=0', 'while [ ! -e "$d/ack.$n" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done']
      : []),
    'exit $rc',
    '',
  ].join('\n');
  const path = join(dir, 'nft');
  await writeFile(path, script);
  await chmod(path, 0o755);
  return { path, dir };
}

async function waitFor(cond: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test('cold start in bounded transactions: no hooked chain before every set is whole, traffic from the last chunk never denied', async (t) => {
  const lab = await Lab.create(t, 'cold');
  const model = bigModel();
  const plan = renderPlan(model, { table, mode: 'enforce' });
  const big = plan.sets.get('big_v4')?.elements ?? [];
  t.is(big.indexOf(`${last}/32`), total - 1, 'the probe address is the last element, so it is in the last fill');
  const w = await wrapper(t, { handshake: true });
  const probe: Probe = { direction: 'ingress', peer: last, proto: 'tcp', port: 7001 };
  await lab.addPeerAddress(last);

  let settled = false;
  const applying: Promise<ApplyResult> = applyModel(model, { nftPath: w.path, table, mode: 'enforce', netns: lab.nodeNs, maxElementsPerTransaction: perTransaction }).finally(() => {
    settled = true;
  });
  const steps: { hooked: boolean; elements: number; verdict: string }[] = [];
  for (let n = 0; n < 100; n++) {
    const done = `done.${n}`;
    const arrived = await waitFor(async () => settled || (await readdir(w.dir)).includes(done));
    t.true(arrived, `transaction ${n} or the end of the apply`);
    if (!(await readdir(w.dir)).includes(done)) break;
    const k = await readTable(nftPath, table, { netns: lab.nodeNs });
    const hooked = (k?.chains ?? []).some((c) => c.hook !== undefined);
    const elements = k?.sets.get('big_v4')?.elements.length ?? 0;
    // Before nodewall hooks anything the packet passes unfiltered; after, it must be allowed by the whole set.
    const verdict = await lab.probeSure(probe, 'allow');
    steps.push({ hooked, elements, verdict });
    await writeFile(join(w.dir, `ack.${n}`), '');
  }
  const r = await applying;
  t.log(steps.map((s) => `${s.hooked ? 'hooked' : 'unhooked'} ${s.elements}: ${s.verdict}`).join('; '));

  t.is(r.kind, 'full');
  t.is(r.transactions, steps.length);
  t.true(steps.length >= 2 + Math.ceil(total / perTransaction), `${steps.length} transactions`);
  for (const s of steps) {
    t.is(s.verdict, 'allow', `a packet from ${last} after a transaction that left ${s.elements} elements (${s.hooked ? 'hooked' : 'not hooked'})`);
    if (s.hooked) t.is(s.elements, total, 'a hooked chain only with the whole set');
  }
  t.true(steps.some((s) => !s.hooked && s.elements > 0 && s.elements < total), 'the test looked at the kernel while the set was partly filled');
  t.true(steps.at(-1)?.hooked === true);
  // The staged table is the one a single transaction would have built.
  const built = await canonTable(lab.nodeNs, table);
  t.is(built.marker, r.structureHash);
  const ref = await canonReference(lab, renderPlan(model, { table: 'nwref', mode: 'enforce' }).script, 'nwref');
  t.deepEqual({ ...built, marker: null }, { ...ref, marker: null });
  // Enforcing now: the small policy's peer on another port is denied.
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 7009 }), 'deny');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 7002 }, 'allow'), 'allow');
});

test('a cold start failing in a fill transaction leaves no table (nothing was hooked) and says why', async (t) => {
  const lab = await Lab.create(t, 'coldf');
  const w = await wrapper(t, { failAt: 2 });
  const err = await t.throwsAsync(applyModel(bigModel(), { nftPath: w.path, table, mode: 'enforce', netns: lab.nodeNs, maxElementsPerTransaction: perTransaction }), { instanceOf: NftError });
  t.regex(err?.message ?? '', /Too many open files|Error/);
  t.is((await readdir(w.dir)).filter((f) => f.startsWith('run.')).length, 3, 'create, one fill, the failing fill');
  t.is((await lab.nft(['list', 'tables'])).stdout.trim(), '', 'the half-built table was removed');
  // A second start without the fault stages the table from scratch.
  const r = await applyModel(bigModel(), { nftPath, table, mode: 'enforce', netns: lab.nodeNs, maxElementsPerTransaction: perTransaction });
  t.true(r.transactions > 2);
  t.is(await lab.probeSure({ direction: 'ingress', peer: last, proto: 'tcp', port: 7001 }, 'allow'), 'allow');
});

test('an existing table is replaced made before break whatever its size: temporary table built and hooked, then the table, in bounded transactions', async (t) => {
  const lab = await Lab.create(t, 'coldr');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs, maxElementsPerTransaction: perTransaction } as const;
  const first = await applyModel(bigModel(), opts);
  t.true(first.transactions > 2);
  const small = b.model({ sets: [b.identity('big', ['198.51.100.9/32'], [], { kind: 'endpoints' })], ingress: b.enforced([b.allow('big', [b.tcp(7001)])]) });
  const again = await applyModel(small, opts);
  t.is(again.kind, 'full');
  t.regex(again.reason, /made before break/);
  // Each table: create or replace (the one element goes with it), hook.
  t.is(again.transactions, 4);
  // Back to the big one: bounded transactions for both tables.
  const big = await applyModel(bigModel(), opts);
  t.is(big.kind, 'full');
  t.true(big.transactions >= 2 * (2 + Math.ceil(total / perTransaction)), `${big.transactions} transactions`);
});

/** ptcp allows 192.0.2.50 and 203.0.113.77 to tcp/7001; with `deny`, pdeny denies a big set holding both, first and last. */
function denyModel(deny: boolean): HostModel {
  const v4 = ['192.0.2.50/32'];
  // Benchmark addresses (198.18.0.0/15) nobody sends from, between the two in any order.
  for (let n = 0; n < total - 2; n++) v4.push(`198.${18 + ((n >> 16) & 1)}.${(n >> 8) & 255}.${n & 255}/32`);
  v4.push(`${last}/32`);
  return b.model({
    sets: [
      b.identity('peers', ['192.0.2.50/32', `${last}/32`], [], { kind: 'endpoints' }),
      ...(deny ? [b.identity('blocked', v4, [], { kind: 'cidr' })] : []),
    ],
    ingress: b.enforced([
      ...(deny ? [b.deny('blocked', [b.anyL4], 'spec.ingressDeny[0]', 'pdeny')] : []),
      b.allow('peers', [b.tcp(7001)], 'spec.ingress[0]', 'ptcp'),
    ]),
  });
}

test('a chain delta bringing a large new set fills it first, unreferenced: no state mixes the old and the new verdicts', async (t) => {
  const lab = await Lab.create(t, 'coldd');
  const opts = { table, mode: 'enforce', netns: lab.nodeNs, maxElementsPerTransaction: perTransaction } as const;
  const before = await applyModel(denyModel(false), { ...opts, nftPath });
  const first: Probe = { direction: 'ingress', peer: '192.0.2.50', proto: 'tcp', port: 7001 };
  const lastOne: Probe = { direction: 'ingress', peer: last, proto: 'tcp', port: 7001 };
  t.is(await lab.probeSure(first, 'allow'), 'allow');
  t.is(await lab.probeSure(lastOne, 'allow'), 'allow');
  const w = await wrapper(t, { handshake: true });
  let settled = false;
  const applying = applyModel(denyModel(true), { ...opts, nftPath: w.path, previous: before.state }).finally(() => {
    settled = true;
  });
  const steps: { referenced: boolean; elements: number; first: string; last: string }[] = [];
  for (let n = 0; n < 100; n++) {
    const arrived = await waitFor(async () => settled || (await readdir(w.dir)).includes(`done.${n}`));
    t.true(arrived);
    if (!(await readdir(w.dir)).includes(`done.${n}`)) break;
    const k = await readTable(nftPath, table, { netns: lab.nodeNs });
    const referenced = (k?.rules ?? []).some((r) => r.sets.includes('blocked_v4'));
    const elements = k?.sets.get('blocked_v4')?.elements.length ?? 0;
    // The old verdict is allow for both, the new one deny for both: a partly filled, referenced set would
    // deny the first address and still allow the last.
    const f = await lab.probeSure(first, 'allow');
    const l = await lab.probeSure(lastOne, 'allow');
    steps.push({ referenced, elements, first: f, last: l });
    await writeFile(join(w.dir, `ack.${n}`), '');
  }
  const r = await applying;
  t.log(steps.map((s) => `${s.referenced ? 'referenced' : 'unreferenced'} ${s.elements}: ${s.first}/${s.last}`).join('; '));
  t.is(r.kind, 'delta', r.reason);
  t.regex(r.reason, /new set\(s\) filled first/);
  t.is(r.transactions, steps.length);
  // The set is declared in the first fill transaction; the delta itself is the last one.
  t.true(steps.length >= 1 + Math.ceil(total / perTransaction));
  for (const s of steps.slice(0, -1)) {
    t.false(s.referenced, 'no rule refers to the set before the last transaction');
    t.deepEqual([s.first, s.last], ['allow', 'allow'], `old verdicts while ${s.elements} elements are in`);
  }
  t.true(steps.some((s) => s.elements > 0 && s.elements < total), 'the test looked while the set was partly filled');
  const end = steps.at(-1);
  t.true(end?.referenced === true && end.elements === total);
  t.deepEqual([end?.first, end?.last], ['deny', 'deny']);
  const built = await canonTable(lab.nodeNs, table);
  await lab.load(renderPlan(denyModel(true), { table: 'nwref', mode: 'enforce' }).script);
  t.deepEqual({ ...built, marker: null }, { ...(await canonTable(lab.nodeNs, 'nwref')), marker: null });
  t.is(built.marker, r.structureHash);
});

test('the cold start\'s transactions are idempotent: each one sent a second time (a launcher rerun after its first run committed) leaves exactly the table one run builds, one copy of every rule', async (t) => {
  const lab = await Lab.create(t, 'coldi');
  const model = bigModel();
  const rendered = renderPlan(model, { table, mode: 'enforce' });
  const scripts = coldStartScripts(rendered, perTransaction);
  t.true(scripts.length >= 3);
  const once = async (): Promise<CanonTable> => {
    for (const s of scripts) await lab.load(s);
    const c = await canonTable(lab.nodeNs, table);
    await lab.nft(['delete', 'table', 'inet', table]);
    return c;
  };
  const reference = await once();
  t.true(Object.values(reference.rules).some((r) => r.length > 0));
  // The first (`create table`) fails a second time by design (the table exists); every later one is sent
  // twice, each right after its first run, as the launcher's rerun would.
  for (const [i, s] of scripts.entries()) {
    await lab.load(s);
    if (i > 0) await lab.load(s);
  }
  const twice = await canonTable(lab.nodeNs, table);
  t.deepEqual(twice, reference);
  // The hook transaction once more, on the finished table: still one copy of every rule.
  await lab.load(scripts.at(-1) ?? '');
  t.deepEqual(await canonTable(lab.nodeNs, table), reference);
  await lab.addPeerAddress(last);
  t.is(await lab.probeSure({ direction: 'ingress', peer: last, proto: 'tcp', port: 7001 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: last, proto: 'tcp', port: 7009 }), 'deny');
});

test('a cold start whose first transaction failed as a launcher rerun (its first run committed it) removes the half-built table it left; a complete table is never removed so', async (t) => {
  const lab = await Lab.create(t, 'coldr');
  // The process's nft runner, for this test's namespace only: the `create table` transaction runs, and runs
  // again (as the launcher does after it failed with that nft in flight); the second run's error is the
  // launcher's NftRerunError. `appear`: a complete table appears right before it (another writer). Every other
  // call (and every other namespace) is a plain spawn.
  let reruns = 0;
  let appear: string | undefined;
  setNftRunner({
    async run(path, args, opts) {
      if (opts.netns !== lab.nodeNs || opts.stdin?.includes('create table') !== true) return spawnNft(path, args, opts);
      reruns++;
      if (appear !== undefined) await spawnNft(path, ['-f', '-'], { netns: lab.nodeNs, stdin: appear });
      await spawnNft(path, args, opts).catch(() => undefined);
      return spawnNft(path, args, opts).catch((err: unknown) => {
        throw err instanceof NftError ? new NftRerunError(err) : err;
      });
    },
  });
  t.teardown(() => setNftRunner(undefined));
  const opts = { nftPath, table, mode: 'enforce' as const, netns: lab.nodeNs, maxElementsPerTransaction: perTransaction };
  await t.throwsAsync(applyModel(bigModel(), opts), { instanceOf: NftRerunError });
  t.is(reruns, 1);
  t.is((await lab.nft(['list', 'tables'])).stdout.trim(), '', 'the half-built table its first run made was removed');
  // Control: a complete (hooked) table that appeared meanwhile is not taken for a half-built one: it stays.
  appear = renderPlan(bigModel(), { table, mode: 'enforce' }).script;
  await t.throwsAsync(applyModel(bigModel(), opts), { instanceOf: NftRerunError });
  t.is(reruns, 2);
  t.true((await lab.nft(['list', 'tables'])).stdout.includes(`inet ${table}`), 'the complete table stays');
  t.is(await lab.probeSure({ direction: 'ingress', peer: last, proto: 'tcp', port: 7001 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: last, proto: 'tcp', port: 7009 }), 'deny');
});
