// The real agent with corrupt state files and an invalid config at first start:
// it never lingers as a zombie, never adopts what it was not told, reports the
// problem in the log and in `nodewall status`, and enforces as soon as it can.

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/run-cli.js';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml, writeConfig } from './agent-harness.js';
import { Lab } from './lab.js';

const peer = '203.0.113.5';
const tcp = (port: number) => ({ direction: 'ingress', peer, proto: 'tcp', port }) as const;

test('corrupt last-good.json (null) and a status.json that is a directory: moved aside with a warning, the agent enforces the current input', async (t) => {
  const lab = await Lab.create(t, 'agt-st3');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  await mkdir(join(dirs.state, 'status.json'), { recursive: true });
  await writeFile(join(dirs.state, 'last-good.json'), 'null');

  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  const storeWarn = await agent.waitFor((l) => l.level === 40 && /last good store unusable/.test(l.msg), 30_000, 0, 'warning for the store');
  t.is(storeWarn['file'], join(dirs.state, 'last-good.json'));
  t.is(storeWarn['movedTo'], join(dirs.state, 'last-good.json.corrupt'));
  await agent.waitFor((l) => l.level === 40 && /status file .* was corrupt/.test(l.msg), 30_000, 0, 'warning for the status file');
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  t.is(await lab.probeSure(tcp(22), 'allow'), 'allow');
  t.is(await lab.probeSure(tcp(8080), 'deny'), 'deny');
  t.is(await readFile(join(dirs.state, 'last-good.json.corrupt'), 'utf8'), 'null');
  t.true(existsSync(join(dirs.state, 'status.json.corrupt')));

  const st = await runCli(['status', '--state-dir', dirs.state]);
  t.is(st.code, 0, st.stdout + st.stderr);
  t.regex(st.stdout, /last error: \S+ (last good store unusable|status file)/);
  // The store is written again, in good shape.
  t.regex(await readFile(join(dirs.state, 'last-good.json'), 'utf8'), /"version": 1/);

  // A status file corrupted behind the agent's back: `status` names it (exit 4); the agent's next write heals it.
  agent.signal('SIGKILL');
  await writeFile(join(dirs.state, 'status.json'), '{"version":1,"pid":');
  const bad = await runCli(['status', '--state-dir', dirs.state]);
  t.is(bad.code, 4);
  t.true(bad.stderr.includes(`status file ${join(dirs.state, 'status.json')} is corrupt: not valid JSON`), bad.stderr);

  // Restarted on a truncated store: starts, enforces the same.
  await writeFile(join(dirs.state, 'last-good.json'), '{"version":1,"policies":{"ssh":{"file":"x","textHash":');
  const again = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await again.waitFor(isApplied, 30_000, 0, 'apply after restart');
  t.is(await lab.probeSure(tcp(22), 'allow'), 'allow');
  t.is((await runCli(['status', '--state-dir', dirs.state])).code, 0);
  t.is(await again.stop(), 0);
});

test('invalid config at first start: nothing applied, error with file:line:col in log and status, enforced once fixed', async (t) => {
  const lab = await Lab.create(t, 'agt-st13');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  // One bad key (the rest is what the fixed config will say).
  const bad = { sources: [dirs.policies], stateDir: dirs.state, nodeName: 'node-a', driftCheckSeconds: 1, debounceMs: 100, mode: 'enforce', bogusKey: true };
  await atomicWrite(dirs.config, `${JSON.stringify(bad, null, 2)}\n`);
  const badLine = JSON.stringify(bad, null, 2).split('\n').findIndex((l) => l.includes('bogusKey')) + 1;

  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config, '--state-dir', dirs.state]);
  const err = await agent.waitFor((l) => l.level === 50 && l['file'] === dirs.config, 30_000, 0, 'config error with its position');
  t.is(err['line'], badLine);
  t.is(typeof err['col'], 'number');
  t.true(String(err.msg).startsWith(`${dirs.config}:${badLine}:`), err.msg);
  await agent.waitFor((l) => /no usable config and no last good one: nothing applied/.test(l.msg), 30_000, 0, 'nothing-applied line');
  const st = await runCli(['status', '--state-dir', dirs.state]);
  t.is(st.code, 1, st.stdout + st.stderr);
  t.regex(st.stdout, /is unusable and there is no last good config: nothing applied/);
  t.true(st.stdout.includes(`${dirs.config}:${badLine}:`), st.stdout);
  t.deepEqual(agent.find(isApplied), []);
  await t.throwsAsync(lab.nft(['list', 'table', 'inet', 'nodewall']), undefined, 'no table in the kernel');
  t.is(await lab.probeSure(tcp(8080), 'allow'), 'allow', 'unfiltered: nodewall enforces nothing');

  // Fixed: the watched config is read again and enforced.
  const mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce' });
  await agent.waitFor(isApplied, 30_000, mark, 'apply after the fix');
  t.is(await lab.probeSure(tcp(22), 'allow'), 'allow');
  t.is(await lab.probeSure(tcp(8080), 'deny'), 'deny');
  const ok = await runCli(['status', '--state-dir', dirs.state]);
  t.is(ok.code, 0, ok.stdout + ok.stderr);
  t.regex(ok.stdout, /^mode: {5}enforce$/m);
  t.is(await agent.stop(), 0);
});
