// `nodewall apply --confirm-within` end to end, in the lab's namespaces with real packets and real processes:
// the detached watchdog rolls an unconfirmed apply back (also when `apply` is SIGKILLed at once), a confirmed
// apply stays, and a second unconfirmed apply keeps the first one's rollback target.

import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOutcomes, readPending, type ConfirmOutcome } from '../../src/agent/commit-confirm.js';
import { structureHash } from '../../src/agent/drift.js';
import { pidAlive } from '../../src/agent/status-file.js';
import { cliPath } from '../agent/paths.js';
import { runCli } from '../helpers/run-cli.js';
import { policyYaml, sshFromOperatorsYaml } from './agent-harness.js';
import { Lab, nftPath } from './lab.js';

interface Setup {
  readonly dir: string;
  readonly config: string;
  readonly state: string;
  readonly open: string;
  readonly closed: string;
}

async function setup(t: ExecutionContext): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-confirm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const state = join(dir, 'state');
  const config = join(dir, 'nodewall.yaml');
  await writeFile(config, ['nodeName: node-a', 'mode: enforce', `stateDir: ${state}`, `nft: { path: ${nftPath}, table: nodewall }`, ''].join('\n'));
  const open = join(dir, 'open.yaml');
  const closed = join(dir, 'closed.yaml');
  await writeFile(open, policyYaml('ssh', [22]));
  await writeFile(closed, sshFromOperatorsYaml);
  return { dir, config, state, open, closed };
}

function cli(lab: Lab, args: readonly string[]) {
  return runCli(args, { netns: lab.nodeNs, timeoutMs: 60_000 });
}

async function tableHash(lab: Lab): Promise<string | undefined> {
  try {
    return structureHash((await lab.nft(['-t', 'list', 'table', 'inet', 'nodewall'])).stdout);
  } catch {
    return undefined;
  }
}

/**
 * A FIFO opened read-write and filled to capacity: a process given it as stdout cannot finish its
 * first write (the write blocks, or, the open file being non-blocking, stays queued in Node, which does
 * not exit with a write pending), so it cannot end by itself before the test kills it.
 */
async function fullPipe(t: ExecutionContext): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-cc-pipe-'));
  const fifo = join(dir, 'out');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  t.teardown(async () => {
    closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  });
  const chunk = Buffer.alloc(65536, 0x2e);
  for (let i = 0; i < 1024; i++) {
    try {
      writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return fd;
      throw err;
    }
  }
  throw new Error('the FIFO never filled');
}

/** Wait (bounded, by polling the state dir) for an outcome of record `id`. */
async function outcome(state: string, id: string, timeoutMs = 60_000): Promise<ConfirmOutcome> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const o = (await readOutcomes(state)).find((x) => x.id === id);
    if (o !== undefined) return o;
    if (Date.now() > end) throw new Error(`no outcome for ${id} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function pendingId(state: string): Promise<{ id: string; watchdogPid: number | undefined }> {
  const r = await readPending(state);
  if (r.kind !== 'ok') throw new Error(`no pending record: ${r.kind}`);
  return { id: r.value.id, watchdogPid: r.value.watchdogPid };
}

async function until(what: string, pred: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('an unconfirmed apply that cuts the test\'s own session is rolled back and the session works again', async (t) => {
  const lab = await Lab.create(t, 'cc-cut');
  const s = await setup(t);
  const first = await cli(lab, ['apply', '--config', s.config, '--source', s.open]);
  t.is(first.code, 0, first.stderr);
  const before = await tableHash(lab);

  const conn = await lab.openIngress('203.0.113.5', 22);
  t.true(await lab.echo(conn), 'session works before');

  // 30 s: long enough that the cut below is observed on probation even on a busy machine (asserted, not assumed).
  const r = await cli(lab, ['apply', '--config', s.config, '--source', s.closed, '--confirm-within', '30s']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /would be cut/);
  t.regex(r.stderr, /loaded on probation: run `nodewall confirm` before/);
  const { id, watchdogPid } = await pendingId(s.state);
  t.true(watchdogPid !== undefined && pidAlive(watchdogPid), 'watchdog running');

  t.regex(r.stderr, /established session 203\.0\.113\.5:\d+ -> local port 22 would be cut/);
  // While the new ruleset is in force the session is cut: the echo is tried, and only then is the change checked
  // to be still on probation (no outcome yet), so the echo happened under the new ruleset.
  const echoed = await lab.echo(conn, 500);
  t.true((await readOutcomes(s.state)).every((x) => x.id !== id), 'the change was still on probation when the session was tried');
  t.false(echoed, 'the session is cut while the new ruleset is in force');
  const o = await outcome(s.state, id);
  t.is(o.outcome, 'rolled-back');
  t.regex(o.by, /^watchdog pid \d+$/);
  t.is(await tableHash(lab), before, 'the previous table is back');
  // The held session carries data again (TCP retransmits), and a new connection to the port gets through.
  await until('the held session to echo again', () => lab.echo(conn, 2000));
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.6', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  await until('the watchdog to exit', async () => !pidAlive(watchdogPid ?? -1));
  t.is((await readPending(s.state)).kind, 'missing');

  const st = await cli(lab, ['status', '--config', s.config]);
  t.regex(st.stdout, new RegExp(`last confirmation: rolled-back ${id} \\(cli\\)`));
});

test('the rollback happens when apply is SIGKILLed right after loading (its whole process group)', async (t) => {
  const lab = await Lab.create(t, 'cc-kill');
  const s = await setup(t);
  const first = await cli(lab, ['apply', '--config', s.config, '--source', s.open]);
  t.is(first.code, 0, first.stderr);
  const before = await tableHash(lab);

  // Its stdout is a full pipe: after "loaded on probation" it cannot finish writing its summary, so the kill
  // below always lands while it is alive (it would otherwise often exit first on a loaded machine).
  const stdout = await fullPipe(t);
  const child = spawn('ip', ['netns', 'exec', lab.nodeNs, process.execPath, cliPath(), 'apply', '--config', s.config, '--source', s.closed,
    '--confirm-within', '3s', '--force'], { stdio: ['ignore', stdout, 'pipe'], detached: true });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const killed = await new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`apply did not load within 60 s: ${err}`)), 60_000);
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes('loaded on probation')) {
        clearTimeout(timer);
        process.kill(-(child.pid ?? 0), 'SIGKILL');
        resolve(err);
      }
    });
  });
  t.regex(killed, /loaded on probation/);
  await new Promise((r) => child.once('close', r));
  t.is(child.signalCode, 'SIGKILL');
  t.not(await tableHash(lab), before, 'the new ruleset was in force when apply died');

  const { id, watchdogPid } = await pendingId(s.state);
  t.not(watchdogPid, child.pid);
  const o = await outcome(s.state, id);
  t.is(o.outcome, 'rolled-back');
  t.is(await tableHash(lab), before);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.6', proto: 'tcp', port: 22 }, 'allow'), 'allow');
});

test('a confirmed apply stays well past its deadline; confirming twice says there is nothing left', async (t) => {
  const lab = await Lab.create(t, 'cc-ok');
  const s = await setup(t);
  t.is((await cli(lab, ['apply', '--config', s.config, '--source', s.open])).code, 0);
  // The confirmation must come in time, from a CLI started on a busy machine: a deadline of 30 s.
  const r = await cli(lab, ['apply', '--config', s.config, '--source', s.closed, '--confirm-within', '30s', '--force']);
  t.is(r.code, 0, r.stderr);
  const after = await tableHash(lab);
  const { id, watchdogPid } = await pendingId(s.state);

  const st = await cli(lab, ['status', '--config', s.config, '--output', 'json']);
  const pending = (JSON.parse(st.stdout) as { pendingConfirmation: { id: string; origin: string; deadline: string } }).pendingConfirmation;
  t.is(pending.id, id);
  t.is(pending.origin, 'cli');

  const c = await cli(lab, ['confirm', '--config', s.config]);
  t.is(c.code, 0, c.stderr);
  t.regex(c.stdout, new RegExp(`confirmed cli change ${id}`));
  t.is((await outcome(s.state, id)).outcome, 'confirmed');
  // The watchdog sees the confirmation and ends; then wait past the deadline and look again.
  await until('the watchdog to exit', async () => !pidAlive(watchdogPid ?? -1));
  const deadline = Date.parse(pending.deadline);
  await until('the deadline to pass by 3 s', async () => Date.now() > deadline + 3000);
  t.is(await tableHash(lab), after, 'the confirmed ruleset is still in force');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.6', proto: 'tcp', port: 22 }), 'deny');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.6', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  const again = await cli(lab, ['confirm', '--config', s.config]);
  t.is(again.code, 1);
  t.regex(again.stdout, new RegExp(`nothing to confirm; last: confirmed ${id}`));
});

test('a second unconfirmed apply keeps the first one\'s rollback target; the first watchdog stands down', async (t) => {
  const lab = await Lab.create(t, 'cc-two');
  const s = await setup(t);
  // Nothing in the kernel before: the rollback target is "no table".
  const a = await cli(lab, ['apply', '--config', s.config, '--source', s.open, '--confirm-within', '60s']);
  t.is(a.code, 0, a.stderr);
  const first = await pendingId(s.state);
  const b = await cli(lab, ['apply', '--config', s.config, '--source', s.closed, '--confirm-within', '3s', '--force']);
  t.is(b.code, 0, b.stderr);
  t.regex(b.stderr, new RegExp(`replaces the unconfirmed ${first.id}`));
  const second = await pendingId(s.state);
  t.not(second.id, first.id);
  await until('the first watchdog to stand down', async () => !pidAlive(first.watchdogPid ?? -1));
  const o = await outcome(s.state, second.id);
  t.is(o.outcome, 'rolled-back');
  t.is(await tableHash(lab), undefined, 'back to no table at all');
  t.regex(await readFile(join(s.state, 'confirm-watchdog.log'), 'utf8'), new RegExp(`"superseded","id":"${first.id}"`));
});

test('a table that is not nodewall\'s is never deleted by a rollback to "no table"', async (t) => {
  const lab = await Lab.create(t, 'cc-own');
  const s = await setup(t);
  await lab.load('table inet other {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n\t}\n}\n');
  // The replacement below must land before the deadline, from a busy machine: 15 s.
  const r = await cli(lab, ['apply', '--config', s.config, '--source', s.open, '--confirm-within', '15s']);
  t.is(r.code, 0, r.stderr);
  const { id } = await pendingId(s.state);
  // Someone replaces nodewall's table by one of their own under the same name before the deadline.
  await lab.load('table inet nodewall\ndelete table inet nodewall\ntable inet nodewall {\n\tchain x {\n\t}\n}\n');
  await until('the watchdog to give the rollback a try', async () => /rollback failed/.test(await readFile(join(s.state, 'confirm-watchdog.log'), 'utf8').catch(() => '')));
  t.regex((await lab.nft(['list', 'table', 'inet', 'nodewall'])).stdout, /chain x/, 'the foreign table is left alone');
  t.regex((await lab.nft(['list', 'tables'])).stdout, /table inet other/);
  t.is((await readPending(s.state)).kind, 'ok', `record ${id} stays pending for the agent or the operator`);
  // Once the foreign table is gone, the retried rollback completes ("no table" is what was there before).
  await lab.nft(['delete', 'table', 'inet', 'nodewall']);
  t.is((await outcome(s.state, id, 120_000)).outcome, 'rolled-back');
  t.regex((await lab.nft(['list', 'tables'])).stdout, /table inet other/);
});

test('the watchdog and the agent race at the deadline: one rolls back, the other sees it done', async (t) => {
  const lab = await Lab.create(t, 'cc-race');
  const s = await setup(t);
  t.is((await cli(lab, ['apply', '--config', s.config, '--source', s.open])).code, 0);
  const before = await tableHash(lab);
  // An agent in dry-run mode writes no ruleset of its own, but enforces pending confirmations like any agent.
  const { AgentProcess } = await import('./agent-harness.js');
  await writeFile(s.config, ['nodeName: node-a', 'mode: dry-run', `stateDir: ${s.state}`, `nft: { path: ${nftPath}, table: nodewall }`,
    `sources: [${s.open}]`, 'driftCheckSeconds: 1', ''].join('\n'));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', s.config]);
  await agent.waitFor((l) => /dry-run: ruleset that would be applied/.test(l.msg), 30_000, 0, 'agent running');
  const r = await cli(lab, ['apply', '--config', s.config, '--source', s.closed, '--mode', 'enforce', '--confirm-within', '3s', '--force']);
  t.is(r.code, 0, r.stderr);
  const { id, watchdogPid } = await pendingId(s.state);
  const o = await outcome(s.state, id);
  t.is(o.outcome, 'rolled-back');
  t.regex(o.by, /^(watchdog|agent) pid \d+$/);
  t.is(await tableHash(lab), before);
  await until('the watchdog to exit', async () => !pidAlive(watchdogPid ?? -1));
  const log = await readFile(join(s.state, 'confirm-watchdog.log'), 'utf8');
  // Exactly one actor restored the table; the watchdog either did it or read the agent's outcome.
  t.is((await readOutcomes(s.state)).filter((x) => x.id === id).length, 1);
  if (o.by.startsWith('watchdog')) t.regex(log, /rolled back: not confirmed by the deadline/);
  else t.regex(log, /ended: rolled-back/);
  t.deepEqual((await readdir(s.state)).filter((n) => n.startsWith('pending-confirm')), [], 'no record or claim left behind');
  t.is(await agent.stop(), 0);
});

test('an apply on probation that fails after changing the kernel (a full replace killed after its first commit) is rolled back at its deadline, not withdrawn', async (t) => {
  const lab = await Lab.create(t, 'cc-half');
  const s = await setup(t);
  const first = await cli(lab, ['apply', '--config', s.config, '--source', s.open]);
  t.is(first.code, 0, first.stderr);
  const before = await tableHash(lab);
  // From now on the table's own first transaction of a replace (`table inet nodewall {}` ...) commits, then its
  // nft dies before it reports: the table is the unhooked copy, the new ruleset filters from nodewall_next0.
  const fake = join(s.dir, 'nft');
  await writeFile(fake, [
    '#!/bin/sh',
    'if [ "$1" = "-f" ] && [ "$2" = "-" ]; then',
    `  s=$(cat); case "$s" in *'table inet nodewall {}'*) printf '%s\\n' "$s" | ${nftPath} -f - || exit 1; kill -KILL $$;; esac`,
    `  printf '%s\\n' "$s" | exec ${nftPath} -f -`,
    'fi',
    `exec ${nftPath} "$@"`,
    '',
  ].join('\n'));
  await chmod(fake, 0o755);
  await writeFile(s.config, (await readFile(s.config, 'utf8')).replace(`path: ${nftPath}`, `path: ${fake}`));
  const r = await cli(lab, ['apply', '--config', s.config, '--source', s.closed, '--confirm-within', '3s', '--force']);
  t.not(r.code, 0, 'the apply failed');
  t.regex(r.stderr, /stays on probation/);
  const { id } = await pendingId(s.state).catch(async () => ({ id: (await readOutcomes(s.state)).at(-1)?.id ?? '' }));
  const o = await outcome(s.state, id);
  t.is(o.outcome, 'rolled-back', 'not withdrawn: the failed apply had changed what filters');
  t.is(await tableHash(lab), before);
  t.notRegex((await lab.nft(['list', 'tables', 'inet'])).stdout, /nodewall_next/);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.6', proto: 'tcp', port: 22 }, 'allow'), 'allow');
});
