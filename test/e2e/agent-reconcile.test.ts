// The agent keeps the kernel equal to the policies: it re-applies on a policy
// change, restores a flushed table, keeps the last good version of a policy
// that becomes invalid, never applies a brand-new invalid one, and leaves the
// ruleset in force when stopped.

import test from 'ava';
import { mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab } from './lab.js';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml, writeConfig } from './agent-harness.js';

const peer = '203.0.113.5';

test('reapplies on change, restores a flushed table, keeps last good on invalid input', async (t) => {
  const lab = await Lab.create(t, 'agt-rec');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  const file = join(dirs.policies, 'ssh.yaml');
  await writeFile(file, policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);

  await agent.waitFor(isApplied, 20_000, 0, 'first apply');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 22 }), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');

  // 1. policy change (atomic save) -> re-applied by the watcher
  let mark = agent.lines.length;
  await atomicWrite(file, policyYaml('ssh', [22, 8080]));
  const applied = await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'watch', 10_000, mark, 'apply after change');
  t.true(typeof applied['durationMs'] === 'number');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');

  // 2. someone flushes the ruleset -> restored within a few seconds, and logged
  mark = agent.lines.length;
  await lab.nft(['flush', 'ruleset']);
  await agent.waitFor((l) => /table missing/.test(l.msg), 30_000, mark, 'drift detected');
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'drift', 30_000, mark, 'restore');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 9090 }), 'deny');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');

  // 3. the policy becomes invalid (port out of range) -> error with file, line, policy; last good stays
  mark = agent.lines.length;
  await atomicWrite(file, policyYaml('ssh', [22, 99999]));
  const err = await agent.waitFor((l) => l.level === 50 && l['policy'] === 'ssh' && l['file'] === file, 10_000, mark, 'error for the invalid policy');
  t.true(typeof err['line'] === 'number' && (err['line'] as number) > 1);
  await agent.waitFor((l) => l['policy'] === 'ssh' && /last good version stays in force/.test(l.msg), 30_000, mark, 'kept message');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow', 'last good version still in force');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 22 }), 'allow');

  // 4. a brand-new invalid policy is not applied; a YAML syntax error does not stop anything
  mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'web.yaml'), policyYaml('web', [9090, 70000]));
  await agent.waitFor((l) => l['policy'] === 'web' && /not applied/.test(l.msg), 10_000, mark, 'rejected new policy');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 9090 }), 'deny');
  mark = agent.lines.length;
  await atomicWrite(file, ': : not yaml [');
  await agent.waitFor((l) => l['policy'] === 'ssh' && /file cannot be read/.test(l.msg), 10_000, mark, 'kept on syntax error');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');

  // 5. fixed again -> applied; deleting the file removes the policy (no error: a delete is intended)
  mark = agent.lines.length;
  await atomicWrite(file, policyYaml('ssh', [22]));
  await agent.waitFor((l) => l.msg === 'ruleset applied', 10_000, mark, 'apply after fix');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
  await unlink(join(dirs.policies, 'web.yaml'));

  // 6. SIGTERM: clean exit, ruleset left in force
  const code = await agent.stop();
  t.is(code, 0);
  t.truthy(agent.find((l) => l.msg === 'ruleset left in force').length);
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 22 }), 'allow');
});

test('removeOnStop deletes the table; SIGHUP reloads', async (t) => {
  const lab = await Lab.create(t, 'agt-rm');
  const dirs = await agentDirs(t, { mode: 'enforce', removeOnStop: true });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 20_000, 0, 'first apply');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');

  let mark = agent.lines.length;
  agent.signal('SIGHUP');
  await agent.waitFor((l) => isApplied(l) && l['trigger'] === 'sighup', 10_000, mark, 'reload');

  // a broken config keeps the last good config (and its ruleset)
  mark = agent.lines.length;
  await atomicWrite(dirs.config, 'mode: bogus\n');
  await agent.waitFor((l) => /keeping the last good config/.test(l.msg), 10_000, mark, 'config kept');
  const problem = agent.find((l) => l.level === 50 && l['file'] === dirs.config && l['line'] === 1, mark);
  t.true(problem.length > 0, 'config problem logged with file and line');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');

  t.is(await agent.stop(), 0);
  const tables = (await lab.nft(['list', 'tables'])).stdout;
  t.notRegex(tables, /inet nodewall/);
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');
});

test('a restarted agent enforces the persisted last good version of a policy that is broken now', async (t) => {
  const lab = await Lab.create(t, 'agt-per');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  const file = join(dirs.policies, 'web.yaml');
  await writeFile(file, policyYaml('web', [22, 8080]));
  const first = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await first.waitFor(isApplied, 20_000, 0, 'first apply');
  t.is(await first.stop(), 0);

  // broken while the agent was down; the kernel is wiped too (a reboot)
  await writeFile(file, policyYaml('web', [22, 8080, 123456]));
  await lab.nft(['flush', 'ruleset']);
  const second = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await second.waitFor((l) => l.msg === 'restored last good policies', 20_000, 0, 'restored');
  await second.waitFor((l) => l['policy'] === 'web' && /last good version stays in force/.test(l.msg), 20_000, 0, 'kept');
  await second.waitFor(isApplied, 20_000, 0, 'apply');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 9090 }), 'deny');
  t.is(await second.stop(), 0);
});

test('an nft failure keeps the previous ruleset, is logged, and is retried without any input change', async (t) => {
  const lab = await Lab.create(t, 'agt-fail');
  const dirs = await agentDirs(t, {});
  // nft that fails while the flag file exists
  const flag = join(dirs.root, 'fail');
  const wrapper = join(dirs.root, 'nft-wrapper.sh');
  await writeFile(wrapper, `#!/bin/sh\nif [ -e ${flag} ]; then echo "simulated nft failure" >&2; exit 1; fi\nexec /usr/sbin/nft "$@"\n`, { mode: 0o755 });
  await writeConfig(dirs, { mode: 'enforce', nft: { path: wrapper, table: 'nodewall' } });
  const file = join(dirs.policies, 'ssh.yaml');
  await writeFile(file, policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 20_000, 0, 'first apply');

  await writeFile(flag, '');
  let mark = agent.lines.length;
  await atomicWrite(file, policyYaml('ssh', [22, 8080]));
  const failed = await agent.waitFor((l) => /apply failed/.test(l.msg), 10_000, mark, 'apply failure');
  t.is(failed.level, 50);
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny', 'previous ruleset in force');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 22 }), 'allow');

  mark = agent.lines.length;
  await unlink(flag);
  await agent.waitFor((l) => l.msg === 'ruleset applied', 10_000, mark, 'retry after the failure');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');
  t.is(await agent.stop(), 0);
});

test('a mounted ConfigMap directory: the ..data symlink swap is picked up', async (t) => {
  const lab = await Lab.create(t, 'agt-cm');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  // kubelet's layout: ..<timestamp>/ssh.yaml, ..data -> ..<timestamp>, ssh.yaml -> ..data/ssh.yaml
  await mkdir(join(dirs.policies, '..2026_01_01_00_00_00.1'));
  await writeFile(join(dirs.policies, '..2026_01_01_00_00_00.1', 'ssh.yaml'), policyYaml('ssh', [22]));
  await symlink('..2026_01_01_00_00_00.1', join(dirs.policies, '..data'));
  await symlink('..data/ssh.yaml', join(dirs.policies, 'ssh.yaml'));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 20_000, 0, 'first apply');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');

  const mark = agent.lines.length;
  await mkdir(join(dirs.policies, '..2026_01_01_00_01_00.2'));
  await writeFile(join(dirs.policies, '..2026_01_01_00_01_00.2', 'ssh.yaml'), policyYaml('ssh', [22, 8080]));
  await symlink('..2026_01_01_00_01_00.2', join(dirs.policies, '..data_tmp'));
  await rename(join(dirs.policies, '..data_tmp'), join(dirs.policies, '..data'));
  await rm(join(dirs.policies, '..2026_01_01_00_00_00.1'), { recursive: true });
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'watch', 10_000, mark, 'apply after the swap');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');
  // read once through the top-level symlink, not again through ..data/ or the timestamped dir
  t.deepEqual(agent.find((l) => l['code'] === 'duplicate-policy'), []);
  t.is(await agent.stop(), 0);
});

test('no usable config at start: the agent waits (no crash) and applies once the config appears', async (t) => {
  const lab = await Lab.create(t, 'agt-nocfg');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  await unlink(dirs.config);
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config, '--state-dir', dirs.state]);
  const err = await agent.waitFor((l) => /no usable config/.test(l.msg), 20_000, 0, 'no config error');
  t.is(err.level, 50);
  const mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce' });
  await agent.waitFor((l) => l.msg === 'ruleset applied', 10_000, mark, 'apply once the config exists');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
  t.is(await agent.stop(), 0);
});
