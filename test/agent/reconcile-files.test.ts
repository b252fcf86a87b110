// readDesired with manifest files that are empty, huge, non-regular or still
// being written: the policies they held keep their last good versions, and
// the reason is reported (defects 1, 2 and 7 of issue 8).

import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { keptMessage, removedMessage } from '../../src/agent/last-good.js';
import { readDesired, type Memory } from '../../src/agent/reconcile.js';

const policy = (name: string, port: number): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: ${name}\nspec:\n  nodeSelector: {}\n` +
  `  ingress:\n  - fromCIDR: [203.0.113.0/24]\n    toPorts:\n    - ports:\n      - {port: "${port}", protocol: TCP}\n`;

interface Setup {
  readonly config: string;
  readonly policies: string;
}

/** debounceMs 0: files are trusted at once (the quiet-time rule has its own tests in test/inventory). */
async function setup(t: ExecutionContext, extra = ''): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-rd-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const policies = join(dir, 'policies');
  await mkdir(policies);
  const config = join(dir, 'nodewall.yaml');
  await writeFile(config, `nodeName: node-a\nmode: enforce\nstateDir: ${join(dir, 'state')}\ndebounceMs: 0\nsources: [${policies}]\n${extra}`);
  return { config, policies };
}

const memory = (): Memory => ({ lastGood: new Map(), texts: new Map() });

async function pass(s: Setup, mem: Memory) {
  const d = await readDesired({ configFile: s.config, overrides: {} }, mem);
  mem.lastGood = d.merge.lastGood;
  return d;
}

const ports = (d: Awaited<ReturnType<typeof readDesired>>): string[] =>
  d.state.model.ingress.entries.flatMap((e) => e.l4.flatMap((m) => (m.kind === 'ports' ? m.ranges.map(([lo]) => `${e.policy}:${lo}`) : []))).sort();

test('a file truncated to empty is suspect: its policies stay in their last good version, with how to remove them', async (t) => {
  const s = await setup(t);
  const file = join(s.policies, 'ssh.yaml');
  await writeFile(file, policy('ssh', 22));
  const mem = memory();
  t.deepEqual(ports(await pass(s, mem)), ['ssh:22']);

  await truncate(file, 0);
  const d = await pass(s, mem);
  t.deepEqual(ports(d), ['ssh:22'], 'the default deny and the allow stay as they were');
  t.true(d.state.model.ingress.enforced);
  t.deepEqual(d.merge.kept, [{ policy: 'ssh', file, reason: 'empty' }]);
  t.regex(keptMessage(d.merge.kept[0]!), /empty.*suspect.*delete the file/);
  t.true(d.state.problems.some((p) => p.code === 'load/empty-file' && p.pos.file === file && p.severity === 'warning'));

  // Only comments and document markers: the same.
  await writeFile(file, '# rewritten soon\n---\n');
  t.deepEqual((await pass(s, mem)).merge.kept.map((k) => k.reason), ['empty']);

  // Deleting the file is how a policy is removed.
  await rm(file);
  const gone = await pass(s, mem);
  t.deepEqual(ports(gone), []);
  t.deepEqual(gone.merge.kept, []);
  t.deepEqual(gone.merge.removed, [{ policy: 'ssh', file, fileRead: false }]);
});

test('a file truncated at a document boundary drops only what it no longer holds', async (t) => {
  // Well-formed YAML with fewer policies is an edit like any other once it is quiet; the quiet-time rule
  // (test/inventory/read-manifest-files.test.ts) is what keeps a writer's pause from being trusted at once.
  const s = await setup(t);
  const file = join(s.policies, 'two.yaml');
  await writeFile(file, `${policy('a', 22)}---\n${policy('b', 80)}`);
  const mem = memory();
  t.deepEqual(ports(await pass(s, mem)), ['a:22', 'b:80']);
  await writeFile(file, policy('a', 22));
  const d = await pass(s, mem);
  t.deepEqual(ports(d), ['a:22']);
  // ... and it is logged, naming what to do if the file was cut short.
  t.deepEqual(d.merge.removed, [{ policy: 'b', file, fileRead: true }]);
  t.regex(removedMessage(d.merge.removed[0]!), /no longer in .*two\.yaml \(the file is still there\).*restore it/);
});

test('a file over maxFileBytes keeps its last good version; the error names file, size, limit and key', async (t) => {
  const s = await setup(t, 'maxFileBytes: 4096\n');
  const file = join(s.policies, 'web.yaml');
  await writeFile(file, policy('web', 8080));
  const mem = memory();
  t.deepEqual(ports(await pass(s, mem)), ['web:8080']);
  await writeFile(file, `${policy('web', 9090)}${'# padding\n'.repeat(500)}`);
  const d = await pass(s, mem);
  t.deepEqual(ports(d), ['web:8080']);
  t.deepEqual(d.merge.kept, [{ policy: 'web', file, reason: 'unreadable' }]);
  const err = d.state.problems.find((p) => p.code === 'load/too-large');
  t.is(err?.severity, 'error');
  t.is(err?.pos.file, file);
  t.regex(err?.message ?? '', /\d+ bytes, over the limit of 4096 bytes \(config key maxFileBytes\)/);
});

test('a policy file replaced by a FIFO or a /dev/zero symlink keeps its last good version; the pass returns', async (t) => {
  const s = await setup(t);
  const a = join(s.policies, 'a.yaml');
  const b = join(s.policies, 'b.yaml');
  await writeFile(a, policy('a', 22));
  await writeFile(b, policy('b', 80));
  const mem = memory();
  t.deepEqual(ports(await pass(s, mem)), ['a:22', 'b:80']);
  await rm(a);
  execFileSync('mkfifo', [a]);
  await rm(b);
  await symlink('/dev/zero', b);
  const d = await pass(s, mem);
  t.deepEqual(ports(d), ['a:22', 'b:80']);
  t.deepEqual(d.merge.kept.map((k) => [k.policy, k.reason]).sort(), [['a', 'unreadable'], ['b', 'unreadable']]);
  t.deepEqual(d.state.problems.filter((p) => p.code === 'load/not-regular').map((p) => [p.pos.file, p.severity]).sort(), [[a, 'warning'], [b, 'warning']]);
});

test('a file still being written keeps its last good version; a new policy in it waits', async (t) => {
  // A quiet time of a minute: a file written now is not trusted by this pass (and not waited for that long:
  // the in-read wait is capped, then the file is reported unsettled).
  const s = await setup(t);
  const file = join(s.policies, 'ssh.yaml');
  await writeFile(file, policy('ssh', 22));
  const mem = memory();
  t.deepEqual(ports(await pass(s, mem)), ['ssh:22']);
  await writeFile(s.config, (await import('node:fs')).readFileSync(s.config, 'utf8').replace('debounceMs: 0', 'debounceMs: 60000'));
  await writeFile(file, policy('ssh', 2222));
  await writeFile(join(s.policies, 'new.yaml'), policy('new', 80));
  const d = await pass(s, mem);
  t.deepEqual(ports(d), ['ssh:22']);
  t.deepEqual(d.merge.kept, [{ policy: 'ssh', file, reason: 'unsettled' }]);
  t.true(d.sources.issues.every((e) => e.kind === 'unsettled'));
  t.deepEqual(d.state.problems.filter((p) => p.code === 'load/unsettled').map((p) => p.pos.file).sort(), [join(s.policies, 'new.yaml'), file]);
});
