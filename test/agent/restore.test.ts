// What a starting agent takes over from the state directory (defect: an
// invalid config at first start made it adopt the default state dir's store
// and its config, enforcing sources nobody named).

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { Agent } from '../../src/agent/agent.js';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { policyKey } from '../../src/agent/last-good.js';
import { saveLastGood } from '../../src/agent/last-good-store.js';
import { createAgentLogger } from '../../src/agent/log.js';
import { sha256 } from '../../src/inventory/read-manifest-files.js';
import { restorePersisted } from '../../src/agent/restore.js';
import { readStatus } from '../../src/agent/status-file.js';
import { formatStatus } from '../../src/cli/commands/status.js';
import { policyYaml } from '../e2e/agent-harness.js';

function logger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createAgentLogger({ level: 'debug', destination, env: {} }), lines };
}

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-restore-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const policy = policyYaml('ssh', [22]);

/** A store in `stateDir` as an agent running `configFile` (text `configText`) would have left it. */
async function plantStore(stateDir: string, configFile: string, configText: string): Promise<void> {
  const doc = loadManifestText(policy, '/elsewhere/ssh.yaml').policies[0]!;
  const h = sha256(policy);
  await saveLastGood(stateDir, new Map([[policyKey(doc), { key: policyKey(doc), file: '/elsewhere/ssh.yaml', textHash: h, doc }]]), () => policy, { file: configFile, text: configText });
}

test('invalid config, a store of ANOTHER config in the default state dir: nothing taken over', async (t) => {
  const root = await tmp(t);
  const defaultDir = join(root, 'default-state');
  const config = join(root, 'nodewall.yaml');
  await writeFile(config, 'mode: enforce\nbogusKey: 1\n');
  await plantStore(defaultDir, '/etc/nodewall/nodewall.yaml', `sources: [/etc/nodewall/policies]\nstateDir: ${defaultDir}\n`);
  const { log, lines } = logger();
  const r = await restorePersisted({ configFile: config, overrides: {}, defaultStateDir: defaultDir }, log);
  t.is(r.stateDir, defaultDir);
  t.is(r.stateDirFrom, 'default');
  t.is(r.config, undefined);
  t.is(r.policies.size, 0);
  t.regex(r.warnings.join('\n'), /ignoring the last good state in .*default-state.*\/etc\/nodewall\/nodewall\.yaml/);
  t.true(lines.some((l) => l['level'] === 40 && /ignoring the last good state/.test(String(l['msg']))));
});

test('invalid config, the store is this config\'s own (a restart after a bad edit): its last good config is used', async (t) => {
  const root = await tmp(t);
  const defaultDir = join(root, 'default-state');
  const config = join(root, 'nodewall.yaml');
  await writeFile(config, 'mode: enforce\nbogusKey: 1\n');
  await plantStore(defaultDir, config, `mode: enforce\nstateDir: ${defaultDir}\n`);
  const r = await restorePersisted({ configFile: config, overrides: {}, defaultStateDir: defaultDir }, logger().log);
  t.is(r.config?.file, config);
  t.is(r.config?.config.mode, 'enforce');
  t.is(r.policies.size, 1);
});

test('this config\'s own store but its stateDir is elsewhere: not taken from the default dir', async (t) => {
  const root = await tmp(t);
  const defaultDir = join(root, 'default-state');
  const config = join(root, 'nodewall.yaml');
  await writeFile(config, 'bogusKey: 1\n');
  await plantStore(defaultDir, config, `stateDir: ${join(root, 'other')}\n`);
  const r = await restorePersisted({ configFile: config, overrides: {}, defaultStateDir: defaultDir }, logger().log);
  t.is(r.config, undefined);
  t.is(r.policies.size, 0);
});

test('--state-dir is no guess: its policies are restored, a foreign config in it is not', async (t) => {
  const root = await tmp(t);
  const dir = join(root, 'state');
  const config = join(root, 'nodewall.yaml');
  await writeFile(config, 'bogusKey: 1\n');
  await plantStore(dir, '/etc/nodewall/nodewall.yaml', 'mode: enforce\n');
  const r = await restorePersisted({ configFile: config, overrides: { stateDir: dir }, defaultStateDir: join(root, 'default') }, logger().log);
  t.is(r.stateDirFrom, 'override');
  t.is(r.config, undefined);
  t.is(r.policies.size, 1);
});

test('a corrupt status.json (a directory the agent could never replace) is moved aside at start', async (t) => {
  const root = await tmp(t);
  const dir = join(root, 'state');
  await mkdir(join(dir, 'status.json'), { recursive: true });
  const config = join(root, 'nodewall.yaml');
  await writeFile(config, `stateDir: ${dir}\n`);
  const r = await restorePersisted({ configFile: config, overrides: {}, defaultStateDir: join(root, 'default') }, logger().log);
  t.regex(r.warnings.join('\n'), /status file .*status\.json was corrupt \(is not a regular file \(a directory\)\); moved to .*status\.json\.corrupt/);
  t.false(existsSync(join(dir, 'status.json')));
});

test('agent: invalid config at first start applies nothing, logs file:line:col and writes a no-config status where the operator looks', async (t) => {
  const root = await tmp(t);
  const dir = join(root, 'state');
  const config = join(root, 'nodewall.yaml');
  await writeFile(config, `stateDir: ${join(root, 'named-in-the-bad-config')}\nmode: enforce\nbogusKey: 1\n`);
  // A foreign store in the default state dir must not be adopted.
  await plantStore(join(root, 'default'), '/etc/nodewall/nodewall.yaml', 'mode: enforce\n');
  const { log, lines } = logger();
  const agent = new Agent({ configFile: config, overrides: { stateDir: dir, nodeName: 'node-a' }, defaultStateDir: join(root, 'default'), log });
  t.teardown(() => agent.stop('test'));
  await agent.start();
  t.is(agent.state, undefined, 'nothing built, nothing applied');
  t.deepEqual(lines.filter((l) => /ruleset/.test(String(l['msg']))), []);
  const problem = lines.find((l) => l['level'] === 50 && l['file'] === config);
  t.is(problem?.['line'], 3);
  t.is(typeof problem?.['col'], 'number');
  t.regex(String(problem?.['msg']), /nodewall\.yaml:3:\d+: error/);
  t.true(lines.some((l) => /no usable config and no last good one: nothing applied.*status in .*state, the --state-dir override/.test(String(l['msg']))));
  const s = await readStatus(dir);
  t.truthy(s !== undefined && 'noConfig' in s);
  const text = formatStatus(s!, true);
  t.regex(text, /config: {3}.*nodewall\.yaml is unusable and there is no last good config: nothing applied/);
  t.regex(text, /nodewall\.yaml:3:\d+: /);
  t.regex(text, /last error: \S+ .*bogusKey|last error: \S+ .*nodewall\.yaml/);
  t.false(existsSync(join(root, 'named-in-the-bad-config')));
  await agent.stop('test');
  const stopped = await readStatus(dir);
  t.true(stopped?.stopped);
  t.regex(formatStatus(stopped!, false), /not running .*stopped cleanly[\s\S]*nothing applied$/m);
  t.regex(await readFile(join(dir, 'status.json'), 'utf8'), /"noConfig"/);
});

test('agent without --state-dir: the no-config status goes to the default state dir (and says so); once the config is fixed it moves to the config\'s stateDir', async (t) => {
  const root = await tmp(t);
  const defaultDir = join(root, 'default');
  const config = join(root, 'nodewall.yaml');
  await mkdir(join(root, 'policies'));
  await writeFile(config, 'mode: dry-run\nbogusKey: 1\n');
  const { log, lines } = logger();
  const agent = new Agent({ configFile: config, overrides: { nodeName: 'node-a' }, defaultStateDir: defaultDir, log });
  t.teardown(() => agent.stop('test'));
  await agent.start();
  t.true(lines.some((l) => /status in .*default, the default state dir/.test(String(l['msg']))));
  const s = await readStatus(defaultDir);
  t.true(s !== undefined && 'noConfig' in s);

  await writeFile(config, `mode: dry-run\nsources: [${join(root, 'policies')}]\nstateDir: ${join(root, 'state')}\n`);
  await agent.reconcile('sighup');
  t.truthy(agent.state, 'the fixed config is in use');
  t.is(await readStatus(defaultDir), undefined, 'the stale no-config status is gone');
  const now = await readStatus(join(root, 'state'));
  t.true(now !== undefined && !('noConfig' in now) && now.mode === 'dry-run');
});
