// The agent runs nft through its launcher (src/nft/nft-launcher.ts, config nft.launcher, default on):
// two real agents, one with the launcher and one with `nft.launcher: false`, each in its own network
// namespace with the same policies, must leave the same table in the kernel after every change; a load that
// nft rejects changes nothing and is reported as failed; and a SIGKILLed agent leaves no launcher behind.
// nft.path is a wrapper that logs its parent pid (the launcher shell, or the agent for a direct spawn) and,
// while a `fail` file exists, appends a line nft rejects to every script it loads.

import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml, type LogLine } from './agent-harness.js';
import { canonTable } from './table-canon.js';
import { throwawayNetns } from '../nft/netns.js';
import { nftPath } from './lab.js';
import { runningPid as alive } from '../helpers/proc.js';

interface Wrapper {
  readonly path: string;
  readonly log: string;
  readonly fail: string;
}

async function wrapper(t: ExecutionContext): Promise<Wrapper> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-launcher-wrap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const w = { path: join(dir, 'nft'), log: join(dir, 'log'), fail: join(dir, 'fail') };
  writeFileSync(w.path, [
    '#!/bin/sh',
    `echo "$PPID $*" >> '${w.log}'`,
    'load=',
    'for a in "$@"; do [ "$a" = -f ] && load=1; done',
    `if [ -n "$load" ] && [ -e '${w.fail}' ]; then`,
    `  { cat; printf 'add rule inet nodewall no_such_chain accept\\n'; } | ${nftPath} "$@"`,
    '  exit $?',
    'fi',
    `exec ${nftPath} "$@"`,
    '',
  ].join('\n'));
  chmodSync(w.path, 0o755);
  return w;
}

/** The agent's children whose command line is the launcher's (`/bin/sh -s`). */
function launcherChildren(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    for (const k of kids === '' ? [] : kids.split(' ').map(Number)) {
      try {
        if (readFileSync(`/proc/${k}/cmdline`, 'utf8') === '/bin/sh\0-s\0') out.push(k);
      } catch {
        /* gone meanwhile */
      }
    }
  }
  return out;
}

/** [parent pid, args] of every nft run the wrapper saw. */
function runs(w: Wrapper): [number, string][] {
  if (!existsSync(w.log)) return [];
  return readFileSync(w.log, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => {
    const sp = l.indexOf(' ');
    return [Number(l.slice(0, sp)), l.slice(sp + 1)];
  });
}


const cidrRule = (cidrs: readonly string[]) => `    - fromCIDR: [${cidrs.join(', ')}]\n      toPorts:\n        - ports:\n            - { port: "443", protocol: TCP }`;

const applied = (l: LogLine) => l.msg === 'ruleset applied';
const failed = (l: LogLine) => /^apply failed/.test(l.msg);

test('through the launcher the agent leaves the same kernel state as with direct spawns; a load nft rejects changes nothing and is reported; SIGKILL leaves no launcher', async (t) => {
  const [nsA, nsB] = [await throwawayNetns(t, 'lnA'), await throwawayNetns(t, 'lnB')];
  const [wA, wB] = [await wrapper(t), await wrapper(t)];
  const dirsA = await agentDirs(t, { mode: 'enforce', nft: { path: wA.path } });
  const dirsB = await agentDirs(t, { mode: 'enforce', nft: { path: wB.path, launcher: false } });
  const write = async (name: string, text: string) => {
    for (const d of [dirsA, dirsB]) await atomicWrite(join(d.policies, `${name}.yaml`), text);
  };
  for (const d of [dirsA, dirsB]) await writeFile(join(d.policies, 'ssh.yaml'), policyYaml('ssh', [22], cidrRule(['198.51.100.0/28', '203.0.113.7/32'])));
  const a = AgentProcess.start(t, nsA, ['--config', dirsA.config]);
  const b = AgentProcess.start(t, nsB, ['--config', dirsB.config]);
  await a.waitFor(isApplied, 30_000, 0, 'first apply (launcher)');
  await b.waitFor(isApplied, 30_000, 0, 'first apply (direct)');
  t.deepEqual(await canonTable(nsA, 'nodewall'), await canonTable(nsB, 'nodewall'));

  const launchers = launcherChildren(a.pid);
  t.is(launchers.length, 2, 'the agent runs two launcher shells');
  t.deepEqual(launcherChildren(b.pid), [], 'nft.launcher: false: no launcher');
  const viaLauncher = ([ppid]: [number, string]) => launchers.includes(ppid);

  // Changes: an element delta (a CIDR added and one removed), a new port (rules), a new policy.
  const steps = [
    () => write('ssh', policyYaml('ssh', [22], cidrRule(['198.51.100.0/28', '203.0.113.9/32']))),
    () => write('ssh', policyYaml('ssh', [22, 8080], cidrRule(['198.51.100.0/28', '203.0.113.9/32']))),
    () => write('web', policyYaml('web', [80, 443])),
  ];
  for (const [i, step] of steps.entries()) {
    const [ma, mb] = [a.lines.length, b.lines.length];
    await step();
    await a.waitFor(applied, 30_000, ma, `step ${i} applied (launcher)`);
    await b.waitFor(applied, 30_000, mb, `step ${i} applied (direct)`);
    t.deepEqual(await canonTable(nsA, 'nodewall'), await canonTable(nsB, 'nodewall'), `step ${i}`);
  }

  // Every load of agent A came from the launcher or (launcher busy) the agent; most from the launcher.
  const loadsA = runs(wA).filter(([, args]) => / -f /.test(` ${args} `));
  t.true(loadsA.length >= 4);
  t.true(loadsA.every((r) => viaLauncher(r) || r[0] === a.pid));
  t.true(loadsA.filter(viaLauncher).length >= loadsA.length / 2, JSON.stringify(loadsA));
  t.true(runs(wB).every(([ppid]) => ppid === b.pid), 'B spawned every nft itself');

  // A load nft rejects: nothing changes, the failure is reported, through the launcher too.
  const before = await canonTable(nsA, 'nodewall');
  const loadsBefore = runs(wA).length;
  for (const w of [wA, wB]) writeFileSync(w.fail, '');
  const [ma, mb] = [a.lines.length, b.lines.length];
  await write('ssh', policyYaml('ssh', [22, 9090], cidrRule(['198.51.100.0/28', '203.0.113.10/32'])));
  const errA = await a.waitFor(failed, 30_000, ma, 'apply failed (launcher)');
  await b.waitFor(failed, 30_000, mb, 'apply failed (direct)');
  t.regex(JSON.stringify(errA), /No such file or directory|no_such_chain|Error/);
  t.deepEqual(await canonTable(nsA, 'nodewall'), before, 'the rejected load changed nothing');
  t.deepEqual(await canonTable(nsB, 'nodewall'), before);
  // (Directly only if both launcher shells were busy, e.g. with drift checks.)
  const rejected = runs(wA).slice(loadsBefore).filter(([, args]) => / -f /.test(` ${args} `));
  t.true(rejected.length >= 1 && rejected.every((r) => viaLauncher(r) || r[0] === a.pid), JSON.stringify(rejected));
  t.is(a.find(applied, ma).length, 0, 'never reported as applied');
  for (const w of [wA, wB]) unlinkSync(w.fail);

  // SIGKILL: the launcher (and anything it runs) goes with the agent.
  a.signal('SIGKILL');
  let gone = false;
  for (let i = 0; i < 400 && !gone; i++) {
    gone = !launchers.some(alive);
    if (!gone) await new Promise((r) => setTimeout(r, 50));
  }
  t.true(gone, 'no launcher left behind');
  await b.stop();
});
