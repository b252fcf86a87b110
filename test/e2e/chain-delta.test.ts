// Chain deltas against a real kernel: one policy's chain replaced in one
// transaction while the other policies' rules (handles, counters) and live
// flows are untouched; the conformance suite applied case after case by deltas
// decides like `trace` and leaves the same table a full load would; a script
// failing inside the kernel changes nothing.

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { directionStatus, listRows, tableMode } from '../../src/cli/commands/list.js';
import { applyModel, type ApplyResult } from '../../src/nft/apply.js';
import { NftError } from '../../src/nft/nft-exec.js';
import { type KernelTable, readTable } from '../../src/nft/read-kernel.js';
import { renderPlan } from '../../src/nft/render.js';
import type { HostModel } from '../../src/policy/model.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { buildCaseState, flowLabel, loadConformanceCases, runCaseOn, type ConformanceCase } from '../helpers/conformance.js';
import * as b from '../helpers/model-builders.js';
import { Lab, mapLimit, nftPath, unsendableReason, type Probe } from './lab.js';
import { canonReference, canonTable } from './table-canon.js';

const table = 'nodewall';

/** pa allows 198.51.100.20 to tcp/7001, pb allows 198.51.100.21 to tcp/`pbPort`, pc denies 198.51.100.22. */
function threePolicies(pbPort: number): HostModel {
  return b.model({
    sets: [
      b.identity('a', ['198.51.100.20/32'], [], { kind: 'endpoints' }),
      b.identity('bb', ['198.51.100.21/32'], [], { kind: 'endpoints' }),
      b.identity('c', ['198.51.100.22/32'], [], { kind: 'endpoints' }),
    ],
    ingress: b.enforced([
      b.deny('c', [b.anyL4], 'spec.ingressDeny[0]', 'pc'),
      b.allow('a', [b.tcp(7001)], 'spec.ingress[0]', 'pa'),
      b.allow('bb', [b.tcp(pbPort)], 'spec.ingress[0]', 'pb'),
      b.allow('c', [b.tcp(7003)], 'spec.ingress[0]', 'pc'),
    ]),
  });
}

function rulesOf(k: KernelTable | null, chainPrefix: string): { handle: number; packets: number; comment?: string }[] {
  return (k?.rules ?? []).filter((r) => r.chain.startsWith(chainPrefix)).map((r) => ({ handle: r.handle, packets: r.packets, ...(r.comment === undefined ? {} : { comment: r.comment }) }));
}

test('changing one policy replaces only its chain: other handles and counters stay, a live flow of another policy never meets the default deny', async (t) => {
  const lab = await Lab.create(t, 'chd');
  lab.timeoutMs = 2000;
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  let model = threePolicies(7002);
  let last: ApplyResult = await applyModel(model, opts);
  t.is(last.kind, 'full');
  // Counts every packet of pa's flow that reaches the input hook, before nodewall's chain (priority filter = 0).
  await lab.load('table inet nwpre {\n\tchain c {\n\t\ttype filter hook input priority -10; policy accept;\n\t\tip saddr 198.51.100.20 tcp dport 7001 counter\n\t}\n}\n');
  const conn = await lab.openIngress('198.51.100.20', 7001);
  t.true(await lab.echo(conn, 10_000));

  const before = await readTable(nftPath, table, { netns: lab.nodeNs });
  const untouched = (k: KernelTable | null) => ({ input: rulesOf(k, 'input').map((r) => r.handle), pa: rulesOf(k, 'nw_in_allow_pa_').map((r) => r.handle), pc: rulesOf(k, 'nw_in_deny_pc_').map((r) => r.handle), pcAllow: rulesOf(k, 'nw_in_allow_pc_').map((r) => r.handle) });
  const pbBefore = rulesOf(before, 'nw_in_allow_pb_').map((r) => r.handle);
  t.true(untouched(before).pa.length > 0 && untouched(before).input.length > 5);

  // pb's port changes five times while pa's connection keeps echoing.
  const pbChain = [...renderPlan(model, { table, mode: 'enforce' }).chains.keys()].find((n) => n.startsWith('nw_in_allow_pb_'));
  let echoes = 0;
  let applying = true;
  const echoLoop = (async () => {
    while (applying || echoes < 5) {
      t.true(await lab.echo(conn, 10_000), `echo ${echoes} over pa's live connection`);
      echoes++;
    }
  })();
  try {
    for (let i = 1; i <= 5; i++) {
      model = threePolicies(7002 + i);
      last = await applyModel(model, { ...opts, previous: last.state });
      t.is(last.kind, 'delta', last.reason);
      t.deepEqual(last.chains, [pbChain], 'only pb\'s chain is replaced');
      t.false(last.script.includes('delete table'));
    }
  } finally {
    applying = false;
    await echoLoop;
  }

  const after = await readTable(nftPath, table, { netns: lab.nodeNs });
  t.deepEqual(untouched(after), untouched(before), 'base chain, pa and pc keep their rule handles');
  t.notDeepEqual(rulesOf(after, 'nw_in_allow_pb_').map((r) => r.handle), pbBefore, 'pb\'s rules were replaced');
  // Every packet of pa's flow that reached the hook went through pa's accept rule (its counter survived the
  // deltas), none fell through to the default deny. Both counters come from one listing; a delayed ACK still
  // in flight is waited for (a dropped packet would keep them apart for good).
  const counts = async () => {
    const k = (await lab.nft(['-j', 'list', 'ruleset'])).stdout;
    const doc = JSON.parse(k) as { nftables: { rule?: { table: string; comment?: string; expr: { counter?: { packets: number } }[] } }[] };
    const packets = (pred: (r: { table: string; comment?: string }) => boolean) =>
      doc.nftables.map((i) => i.rule).filter((r) => r !== undefined && pred(r)).map((r) => r?.expr.find((e) => e.counter !== undefined)?.counter?.packets ?? -1);
    return { pre: packets((r) => r.table === 'nwpre')[0] ?? -1, pa: packets((r) => r.table === table && r.comment === 'pa spec.ingress[0]')[0] ?? -2, dd: packets((r) => r.table === table && r.comment === 'nodewall default-deny')[0] ?? -3 };
  };
  let c = await counts();
  for (let i = 0; i < 100 && c.pre !== c.pa; i++) {
    await new Promise((r) => setTimeout(r, 200));
    c = await counts();
  }
  t.true(c.pre > 10, `${c.pre} packets of pa's flow seen`);
  t.is(c.pa, c.pre, 'pa\'s rule counted every packet of its flow');
  t.is(c.dd, 0, 'nothing reached the default deny');
  await lab.closeConn(conn);

  // Verdicts after the deltas are trace's.
  const flows: Probe[] = [
    { direction: 'ingress', peer: '198.51.100.20', proto: 'tcp', port: 7001 },
    { direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7002 },
    { direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7007 },
    { direction: 'ingress', peer: '198.51.100.22', proto: 'tcp', port: 7003 },
  ];
  for (const f of flows) {
    const trace = evaluate(model, f).verdict;
    t.is(await lab.probeSure(f, trace), trace, `${f.peer} tcp/${f.port}`);
  }
  t.is(evaluate(model, flows[2] as Probe).verdict, 'allow', 'the last port is really allowed');
});

const cases = loadConformanceCases();
const byFile = new Map<string, ConformanceCase[]>();
for (const c of cases) byFile.set(c.file, [...(byFile.get(c.file) ?? []), c]);

for (const [file, fileCases] of byFile) {
  test(`conformance cases of ${file} applied one after another by deltas: kernel == trace, table == a full load`, async (t) => {
    const lab = await Lab.create(t, 'chc');
    const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
    let previous: ApplyResult | undefined;
    const kinds = new Map<string, number>();
    for (const c of fileCases) {
      const state = buildCaseState(c);
      const r = await applyModel(state.model, { ...opts, ...(previous === undefined ? {} : { previous: previous.state }) });
      previous = r;
      kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
      t.notRegex(r.reason, /delta failed/, `${c.file}:${c.line} ${c.name}`);
      const sendable = runCaseOn(state, c).filter((x) => unsendableReason(x.flow as Probe) === undefined);
      await lab.addPeerAddresses(sendable.map((x) => x.flow.peer));
      const kernel = await mapLimit(sendable, 8, (x) => lab.probeSure(x.flow as Probe, x.actual.verdict));
      sendable.forEach((x, i) => t.is(kernel[i], x.actual.verdict, `${c.file}:${x.line} case "${c.name}" (${r.kind}): ${flowLabel(x.flow)}: kernel ${kernel[i]}, trace ${x.actual.verdict}`));
      // The table the deltas built is the one a full load of this model builds.
      const built = await canonTable(lab.nodeNs, table);
      const ref = `${table}_ref`;
      const fresh = await canonReference(lab, renderPlan(state.model, { table: ref, mode: 'enforce' }).script, ref);
      t.is(built.marker, r.structureHash);
      t.deepEqual({ ...built, marker: null }, { ...fresh, marker: null }, `${c.file}:${c.line} case "${c.name}" after a ${r.kind}`);
    }
    t.log(`applies: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`);
    if (fileCases.length > 2) t.true((kinds.get('delta') ?? 0) > 0, 'some cases were applied by deltas');
  });
}

/** An nft that appends `extra` to every script it loads: the batch fails inside the kernel after everything else. */
async function failingNft(t: { teardown: (fn: () => Promise<void>) => void }, extra: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-failing-nft-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'nft');
  await writeFile(join(dir, 'extra.nft'), extra);
  await writeFile(path, `#!/bin/sh\nif [ "$1" = "-f" ] && [ "$2" = "-" ]; then\n  { cat; cat '${join(dir, 'extra.nft')}'; } | ${nftPath} -f -\n  exit $?\nfi\nexec ${nftPath} "$@"\n`);
  await chmod(path, 0o755);
  return path;
}

// A set of size 2 given 3 elements: nft accepts the script, the kernel refuses the last element (ENFILE)
// after it has processed every other command of the batch, including `delete table`.
const kernelFailure = 'add table inet nwfail\nadd set inet nwfail tiny { type ipv4_addr; size 2; }\nadd element inet nwfail tiny { 192.0.2.1, 192.0.2.2, 192.0.2.3 }\n';

test('without an nft -c step, a script the kernel refuses half-way changes nothing: full replace and chain delta alike', async (t) => {
  const lab = await Lab.create(t, 'chf');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const first = await applyModel(threePolicies(7002), opts);
  const listing = async () => (await lab.nft(['-a', 'list', 'table', 'inet', table])).stdout.replace(/packets \d+ bytes \d+/g, '');
  const before = await listing();
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7002 }, 'allow'), 'allow');
  const failing = await failingNft(t, kernelFailure);

  // Full replace (no previous state: the kernel is read, the structure differs).
  const full = await t.throwsAsync(applyModel(threePolicies(7009), { ...opts, nftPath: failing }), { instanceOf: NftError });
  t.regex(full?.message ?? '', /Too many open files|No space|Error/);
  // Chain delta (from the remembered state), and its fallback to a full replace: both refused.
  await t.throwsAsync(applyModel(threePolicies(7009), { ...opts, nftPath: failing, previous: first.state }), { instanceOf: NftError });

  t.is(await listing(), before, 'same rules, same handles, same sets');
  t.deepEqual((await lab.nft(['list', 'tables'])).stdout.trim().split('\n'), [`table inet ${table}`], 'the failing batch left nothing');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7002 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7009 }), 'deny');
  // The same change through the real nft lands.
  const ok = await applyModel(threePolicies(7009), { ...opts, previous: first.state });
  t.is(ok.kind, 'delta');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7009 }, 'allow'), 'allow');
});

test('a chain delta against a kernel that is not what we believe falls back to a full replace', async (t) => {
  const lab = await Lab.create(t, 'chs');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const a = await applyModel(threePolicies(7002), opts);
  // Someone else loads a different nodewall structure behind our back (another model, full load).
  await applyModel(threePolicies(7100), opts);
  const r = await applyModel(threePolicies(7005), { ...opts, previous: a.state });
  t.is(r.kind, 'full');
  t.regex(r.reason, /chain delta failed/);
  const built = await canonTable(lab.nodeNs, table);
  await lab.load(renderPlan(threePolicies(7005), { table: 'nwref', mode: 'enforce' }).script);
  t.is(built.marker, r.structureHash);
  t.deepEqual({ ...built, marker: null }, { ...(await canonTable(lab.nodeNs, 'nwref')), marker: null });
  await lab.nft(['delete', 'table', 'inet', 'nwref']);
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7100 }), 'deny');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.21', proto: 'tcp', port: 7005 }, 'allow'), 'allow');
});

test('nodewall list shows one row per policy rule with its policy, in the order packets walk them, jumps left out', async (t) => {
  const lab = await Lab.create(t, 'chl');
  for (const mode of ['enforce', 'audit'] as const) {
    const model = threePolicies(7002);
    const plan = renderPlan(model, { table, mode });
    await applyModel(model, { nftPath, table, mode, netns: lab.nodeNs });
    const k = await readTable(nftPath, table, { netns: lab.nodeNs });
    if (k === null) return t.fail('no table');
    const rows = listRows(k);
    const expected = plan.rules.filter((r) => r.comment !== 'nodewall jump');
    t.deepEqual(rows.map((r) => [r.direction, r.policy === null ? r.rule : `${r.policy} ${r.rule}`]), expected.map((r) => [r.chain === 'output' ? 'egress' : 'ingress', r.comment]));
    t.deepEqual(rows.filter((r) => r.policy === 'pc').map((r) => r.action), mode === 'audit' ? ['audit', 'audit', 'accept', 'accept'] : ['drop', 'drop', 'accept', 'accept']);
    t.false(rows.some((r) => r.action.startsWith('jump')));
    t.deepEqual(directionStatus(k, 'ingress'), { enforced: true, defaultDeny: true });
    t.is(tableMode(k), mode);
  }
});
