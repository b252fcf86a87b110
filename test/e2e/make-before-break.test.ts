// A full replace of an existing table, made before break (src/nft/make-before-break.ts), against the real
// kernel: the transactions' order, what is left after a failure at each stage, and the cleanup of leftovers.
// That no packet meets a set in its commit window is test/e2e/commit-window.test.ts.

import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { applyModel } from '../../src/nft/apply.js';
import { structureHash } from '../../src/agent/drift.js';
import { rearmKernel } from '../../src/agent/pause-watchdog.js';
import { coldStartScripts } from '../../src/nft/cold-start.js';
import { renderPlan } from '../../src/nft/render.js';
import { restoreTable, snapshotTable } from '../../src/nft/table-snapshot.js';
import { runNft } from '../../src/nft/nft-exec.js';
import { readTable } from '../../src/nft/read-kernel.js';
import * as b from '../helpers/model-builders.js';
import { Lab, nftPath } from './lab.js';
import { runCli } from '../helpers/run-cli.js';

const table = 'nodewall';

function podModel(port: number, pods: readonly string[] = ['198.51.100.5/32']) {
  return b.model({
    sets: [b.identity('pods', pods, ['2001:db8:100::5/128'], { kind: 'endpoints' })],
    ingress: b.enforced([b.allow('pods', [b.tcp(port)], 'spec.ingress[0]')]),
  });
}

async function inetTables(lab: Lab): Promise<string[]> {
  const { stdout } = await runNft(nftPath, ['list', 'tables', 'inet'], { netns: lab.nodeNs });
  return stdout.split('\n').map((l) => l.trim().replace(/^table inet /, '')).filter((l) => l !== '').sort();
}

async function hookedChains(lab: Lab, name: string): Promise<string[]> {
  const k = await readTable(nftPath, name, { netns: lab.nodeNs });
  return (k?.chains ?? []).filter((c) => c.hook !== undefined).map((c) => c.name);
}

/**
 * An nft that fails every script containing `needle` while `flag` exists; anything else goes to the real nft.
 * `after`: the script is loaded (committed) first, then the run fails as if nft had been killed before it
 * reported (a timeout after the commit): SIGKILL to itself.
 */
async function failingNft(dir: string, needle: string, flag: string, when: 'before' | 'after' = 'before'): Promise<string> {
  const path = join(dir, 'nft');
  const fail = when === 'before'
    ? 'echo "Error: injected failure" >&2; exit 1'
    : `printf '%s\\n' "$s" | ${nftPath} -f - || exit 1; echo "Error: injected failure after the commit" >&2; kill -KILL $$`;
  await writeFile(
    path,
    [
      '#!/bin/sh',
      'if [ "$1" = "-f" ] && [ "$2" = "-" ]; then',
      `  s=$(cat); case "$s" in *'${needle}'*) if [ -e '${flag}' ]; then ${fail}; fi;; esac`,
      `  printf '%s\\n' "$s" | exec ${nftPath} -f -`,
      'fi',
      `exec ${nftPath} "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return path;
}

/** A temporary directory (removed after the test) with a failingNft in it and its flag's path (not created). */
async function failingSetup(t: ExecutionContext, needle: string, when: 'before' | 'after' = 'before'): Promise<{ dir: string; flag: string; nft: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-mbb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const flag = join(dir, 'fail');
  return { dir, flag, nft: await failingNft(dir, needle, flag, when) };
}

const ssh = { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 22 } as const;
const web = { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 80 } as const;

test('a full replace of an existing table: temporary table first, hooks last, nothing left over', async (t) => {
  const lab = await Lab.create(t, 'mbb');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  t.is((await applyModel(podModel(22), opts)).kind, 'full');
  t.is(await lab.probeSure(ssh, 'allow'), 'allow');
  const r = await applyModel(podModel(80), { ...opts, replace: true });
  t.is(r.kind, 'full');
  t.regex(r.reason, /made before break/);
  // Temporary: create (elements within the limit go with it), hook; the table: replace, hook.
  t.is(r.transactions, 4);
  t.deepEqual(await inetTables(lab), [table]);
  t.deepEqual(await hookedChains(lab, table), ['input', 'output']);
  t.is(await lab.probeSure(web, 'allow'), 'allow');
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');
});

test('a failure before the table is touched: the temporary table goes, the old ruleset stays', async (t) => {
  const lab = await Lab.create(t, 'mbbfail1');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await applyModel(podModel(22), opts);
  const before = await readTable(nftPath, table, { netns: lab.nodeNs });
  // A bad element fails the temporary table's fill.
  await t.throwsAsync(applyModel(podModel(80, ['198.51.100.5/32', 'not-an-address/32']), { ...opts, replace: true }), { message: /not-an-address/ });
  t.deepEqual(await inetTables(lab), [table]);
  t.is((await readTable(nftPath, table, { netns: lab.nodeNs }))?.structureHash, before?.structureHash);
  t.is(await lab.probeSure(ssh, 'allow'), 'allow');
  t.is(await lab.probeSure(web, 'deny'), 'deny');
});

test('a failure after the table was touched: the temporary table filters with the new ruleset; the next full apply removes it', async (t) => {
  const lab = await Lab.create(t, 'mbbfail2');
  // The table's hook transaction is the one that deletes the temporary table.
  const { flag, nft } = await failingSetup(t, `delete table inet ${table}_next0`);
  const opts = { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await applyModel(podModel(22), opts);
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /injected failure/ });
  t.deepEqual(await inetTables(lab), [table, `${table}_next0`]);
  t.deepEqual(await hookedChains(lab, table), [], 'the table is the unhooked copy');
  t.deepEqual(await hookedChains(lab, `${table}_next0`), ['input', 'output']);
  // The temporary table alone filters, with the new ruleset.
  t.is(await lab.probeSure(web, 'allow'), 'allow');
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');

  await rm(flag);
  const r = await applyModel(podModel(80), { ...opts, replace: true });
  t.regex(r.reason, /made before break/);
  t.deepEqual(await inetTables(lab), [table]);
  t.deepEqual(await hookedChains(lab, table), ['input', 'output']);
  t.is(await lab.probeSure(web, 'allow'), 'allow');
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');
});

test('a table of a temporary name without nodewall\'s mark is never touched; the next name is used', async (t) => {
  const lab = await Lab.create(t, 'mbbforeign');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await applyModel(podModel(22), opts);
  await runNft(nftPath, ['-f', '-'], { netns: lab.nodeNs, stdin: `table inet ${table}_next0 {\n\tset keep { type inet_proto; }\n}\n` });
  await applyModel(podModel(80), { ...opts, replace: true });
  t.deepEqual(await inetTables(lab), [table, `${table}_next0`]);
  const foreign = await readTable(nftPath, `${table}_next0`, { netns: lab.nodeNs });
  t.deepEqual([...(foreign?.sets.keys() ?? [])], ['keep']);
  t.is(await lab.probeSure(web, 'allow'), 'allow');
});

test('the table\'s first transaction commits but its nft is killed before it reports: the temporary table is kept, the node stays filtered', async (t) => {
  const lab = await Lab.create(t, 'mbbkill');
  // Only the table's first transaction replaces it (`table inet T {}` then `delete table inet T`).
  const { flag, nft } = await failingSetup(t, `table inet ${table} {}`, 'after');
  const opts = { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await applyModel(podModel(22), opts);
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /SIGKILL/ });
  t.deepEqual(await hookedChains(lab, table), [], 'the first transaction committed: the table is the unhooked copy');
  // Deleting the temporary table now would leave nothing filtering (ssh would pass).
  t.deepEqual(await inetTables(lab), [table, `${table}_next0`]);
  t.deepEqual(await hookedChains(lab, `${table}_next0`), ['input', 'output']);
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');
  t.is(await lab.probeSure(web, 'allow'), 'allow');

  await rm(flag);
  await applyModel(podModel(80), { ...opts, replace: true });
  t.deepEqual(await inetTables(lab), [table]);
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');
});

test('the table\'s first transaction fails without committing: the table still holds the old ruleset, the temporary table goes', async (t) => {
  const lab = await Lab.create(t, 'mbbfail0');
  const { flag, nft } = await failingSetup(t, `table inet ${table} {}`);
  const opts = { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await applyModel(podModel(22), opts);
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /injected failure/ });
  t.deepEqual(await inetTables(lab), [table]);
  t.deepEqual(await hookedChains(lab, table), ['input', 'output']);
  t.is(await lab.probeSure(ssh, 'allow'), 'allow');
  t.is(await lab.probeSure(web, 'deny'), 'deny');
});

test('two replaces failing after the table was touched: the second temporary table deletes the first when hooked (no intersection of two rulesets)', async (t) => {
  const lab = await Lab.create(t, 'mbbtwice');
  // The table's own hook transaction (it deletes the temporary table) fails; a temporary table's does not.
  const { flag, nft } = await failingSetup(t, `add chain inet ${table} input {`);
  const opts = { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const https = { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 443 } as const;
  await applyModel(podModel(22), opts);
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /injected failure/ });
  t.deepEqual(await inetTables(lab), [table, `${table}_next0`]);
  await t.throwsAsync(applyModel(podModel(443), { ...opts, replace: true }), { message: /injected failure/ });
  // The port-80 ruleset no longer filters next to the port-443 one.
  t.deepEqual(await inetTables(lab), [table, `${table}_next1`]);
  t.is(await lab.probeSure(https, 'allow'), 'allow');
  t.is(await lab.probeSure(web, 'deny'), 'deny');
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');
});

test('a process whose first apply is a noop still removes a temporary table a crash left hooked next to the table', async (t) => {
  const lab = await Lab.create(t, 'mbbnoop');
  const exec = { netns: lab.nodeNs };
  // What an agent killed between the temporary table's hook and the table's rebuild leaves: the old ruleset
  // (ssh) in the table, the new one (web) hooked in nodewall_next0. Loaded by hand: no apply of this process
  // has seen this table yet, as after a restart.
  await runNft(nftPath, ['-f', '-'], { ...exec, stdin: renderPlan(podModel(22), { table, mode: 'enforce' }).script });
  for (const s of coldStartScripts(renderPlan(podModel(80), { table, mode: 'enforce' }), 100_000, { table: `${table}_next0` })) {
    await runNft(nftPath, ['-f', '-'], { ...exec, stdin: s });
  }
  t.is(await lab.probeSure(ssh, 'deny'), 'deny', 'the intersection: the left-over table denies ssh');
  // The restarted process's input is the ruleset in the table: a noop.
  const r = await applyModel(podModel(22), { nftPath, table, mode: 'enforce', netns: lab.nodeNs });
  t.is(r.kind, 'noop');
  t.deepEqual(await inetTables(lab), [table]);
  t.is(await lab.probeSure(ssh, 'allow'), 'allow');
});

test('a commit-confirm rollback also deletes the temporary table of a replace that did not finish (it held the change rolled back)', async (t) => {
  const lab = await Lab.create(t, 'mbbrestore');
  const { flag, nft } = await failingSetup(t, `add chain inet ${table} input {`);
  const opts = { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const exec = { netns: lab.nodeNs };
  await applyModel(podModel(22), opts);
  const before = await snapshotTable(nftPath, table, exec);
  // The change on probation (ssh closed) fails halfway: its temporary table filters with it.
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /injected failure/ });
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');
  t.is(await restoreTable(before, nftPath, table, exec), 'restored');
  t.deepEqual(await inetTables(lab), [table]);
  t.is(await lab.probeSure(ssh, 'allow'), 'allow', 'the rolled-back change no longer filters');
  t.is(await lab.probeSure(web, 'deny'), 'deny');

  // A rollback to "no table" deletes both as well.
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /injected failure/ });
  t.deepEqual(await inetTables(lab), [table, `${table}_next0`]);
  t.is(await restoreTable({ kind: 'absent' }, nftPath, table, exec), 'deleted');
  t.deepEqual(await inetTables(lab), []);
});

test('`nodewall list` names a left-over temporary table, and never says "not enforcing" while one filters', async (t) => {
  const lab = await Lab.create(t, 'mbblist');
  const { dir, flag, nft } = await failingSetup(t, `add chain inet ${table} input {`);
  const config = join(dir, 'nodewall.yaml');
  await writeFile(config, `nodeName: node-a\nmode: enforce\nstateDir: ${join(dir, 'state')}\nnft: { path: ${nftPath}, table: ${table} }\n`);
  const opts = { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs } as const;
  await applyModel(podModel(22), opts);
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /injected failure/ });
  const listed = await runCli(['list', '--config', config], { netns: lab.nodeNs });
  t.regex(listed.stdout, new RegExp(`WARNING: temporary table\\(s\\) inet ${table}_next0 `));
  const json = await runCli(['list', '--config', config, '--output', 'json'], { netns: lab.nodeNs });
  t.deepEqual((JSON.parse(json.stdout) as { temporaryTables?: string[] }).temporaryTables, [`${table}_next0`]);
  // The table deleted by hand: the temporary table still filters (web allowed, ssh denied).
  await lab.nft(['delete', 'table', 'inet', table]);
  t.is(await lab.probeSure(ssh, 'deny'), 'deny');
  const gone = await runCli(['list', '--config', config], { netns: lab.nodeNs });
  t.notRegex(gone.stdout, /not enforcing/);
  t.regex(gone.stdout, new RegExp(`no table inet ${table}, but temporary table\\(s\\) inet ${table}_next0 `));
  t.is(gone.code, 3, "exit code: failure");
});

test('a make-before-break replace lists the table as a staged cold start does (the drift repair compares the two builds)', async (t) => {
  const lab = await Lab.create(t, 'mbbhash');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const listing = async () => structureHash((await lab.nft(['-t', 'list', 'table', 'inet', table])).stdout);
  const cold = await applyModel(podModel(80), opts);
  t.like(cold, { kind: 'full', build: 'staged' });
  const coldHash = await listing();
  t.regex((await lab.nft(['list', 'table', 'inet', table])).stdout, /comment "nodewall node=/, 'a cold start keeps the table comment');
  await applyModel(podModel(22), { ...opts, replace: true });
  const replaced = await applyModel(podModel(80), { ...opts, replace: true });
  t.like(replaced, { kind: 'full', build: 'staged' });
  t.is(await listing(), coldHash);
  // Without set elements a cold start is one transaction: another build, listed in another order.
  await lab.nft(['delete', 'table', 'inet', table]);
  t.like(await applyModel(b.model({ ingress: b.enforced([]) }), opts), { kind: 'full', build: 'one-transaction' });
});

test('a temporary table whose hook (it deletes a stale one) commits but is reported failed is kept when the table is not whole: the node stays filtered', async (t) => {
  const lab = await Lab.create(t, 'mbbstale');
  const dir = await mkdtemp(join(tmpdir(), 'nw-mbb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'a'));
  await mkdir(join(dir, 'b'));
  const flag = join(dir, 'fail');
  const https = { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 443 } as const;
  // A replace failing at the table's hook: the table is the unhooked copy, nodewall_next0 (web) filters alone.
  const first = await failingNft(join(dir, 'a'), `add chain inet ${table} input {`, flag);
  await applyModel(podModel(22), { nftPath: first, table, mode: 'enforce', netns: lab.nodeNs });
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { nftPath: first, table, mode: 'enforce', netns: lab.nodeNs, replace: true }), { message: /injected failure/ });
  // The next replace: nodewall_next1's hook commits (deleting nodewall_next0), then its nft is killed.
  const second = await failingNft(join(dir, 'b'), `add chain inet ${table}_next1 input {`, flag, 'after');
  await t.throwsAsync(applyModel(podModel(443), { nftPath: second, table, mode: 'enforce', netns: lab.nodeNs, replace: true }), { message: /SIGKILL/ });
  t.deepEqual(await inetTables(lab), [table, `${table}_next1`]);
  t.deepEqual(await hookedChains(lab, `${table}_next1`), ['input', 'output']);
  t.is(await lab.probeSure(ssh, 'deny'), 'deny', 'never unfiltered');
  t.is(await lab.probeSure(https, 'allow'), 'allow');
});

test('a rollback target taken while a replace that did not finish filters from a temporary table restores that ruleset, not the unhooked copy', async (t) => {
  const lab = await Lab.create(t, 'mbbsnap');
  const { flag, nft } = await failingSetup(t, `add chain inet ${table} input {`);
  const opts = { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs } as const;
  const exec = { netns: lab.nodeNs };
  const https = { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 443 } as const;
  await applyModel(podModel(22), opts);
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { ...opts, replace: true }), { message: /injected failure/ });
  await rm(flag);
  // What filters now: nodewall_next0 (web). A change goes on probation from here, and is rolled back.
  const before = await snapshotTable(nftPath, table, exec);
  await applyModel(podModel(443), { ...opts, replace: true });
  t.is(await lab.probeSure(https, 'allow'), 'allow');
  t.is(await restoreTable(before, nftPath, table, exec), 'restored');
  t.deepEqual(await inetTables(lab), [table]);
  t.deepEqual(await hookedChains(lab, table), ['input', 'output']);
  t.is(await lab.probeSure(ssh, 'deny'), 'deny', 'never unfiltered');
  t.is(await lab.probeSure(web, 'allow'), 'allow');
  t.is(await lab.probeSure(https, 'deny'), 'deny');
});

test('the pause watchdog re-arms the audit ruleset also where it filters from a temporary table (an agent died switching to audit)', async (t) => {
  const lab = await Lab.create(t, 'mbbrearm');
  const { dir, flag, nft } = await failingSetup(t, `add chain inet ${table} input {`);
  await applyModel(podModel(80), { nftPath: nft, table, mode: 'enforce', netns: lab.nodeNs });
  // The pause's switch to audit stops after the table's first transaction: audit filters from nodewall_next0.
  await writeFile(flag, '');
  await t.throwsAsync(applyModel(podModel(80), { nftPath: nft, table, mode: 'audit', netns: lab.nodeNs, replace: true }), { message: /injected failure/ });
  t.is(await lab.probeSure(ssh, 'allow'), 'allow', 'audit: the would-drop passes');
  // The watchdog's nft runs in the lab's namespace.
  const inLab = join(dir, 'nft-in-lab');
  await writeFile(inLab, `#!/bin/sh\nexec ip netns exec ${lab.nodeNs} ${nftPath} "$@"\n`);
  await chmod(inLab, 0o755);
  t.true(await rearmKernel(inLab, table));
  t.is(await lab.probeSure(ssh, 'deny'), 'deny', 're-armed where it filters');
  t.is(await lab.probeSure(web, 'allow'), 'allow');
});
