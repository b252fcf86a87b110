import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpusDir, repoRoot } from '../helpers/repo.js';
import { runCli } from '../helpers/run-cli.js';

const config = join(repoRoot(), 'test', 'fixtures', 'cli', 'nodewall.yaml');
const corpus = (name: string) => join(corpusDir(), name);

function tempPolicy(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-validate-'));
  const file = join(dir, 'p.yaml');
  writeFileSync(file, text);
  return file;
}

test('a valid corpus policy validates with exit 0', async (t) => {
  const r = await runCli(['validate', '--config', config, '--source', corpus('cilium-demo-host-policy.yaml')]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.notRegex(r.stdout, /: error: /);
  t.regex(r.stderr, /1 policies, 1 valid, 1 select node node-a/);
});

test('the placeholder CIDR is an error naming file, line, column, policy and field path', async (t) => {
  const file = corpus('cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml');
  const r = await runCli(['validate', '--config', config, '--source', file]);
  t.is(r.code, 1, r.stdout + r.stderr);
  const line = r.stdout.split('\n').find((l) => l.includes(': error: '));
  t.truthy(line, r.stdout);
  t.regex(
    line ?? '',
    /cilium-test-ccnp-host-ingress-from-cidr-to-ports\.yaml:14:9: error: policy host-ingress-from-cidr-to-ports: spec\.ingress\[0\]\.fromCIDR\[0\]: .*NODE_WITHOUT_CILIUM_IP/,
  );
});

test('--output json reports each policy and the problems', async (t) => {
  const r = await runCli(['validate', '--config', config, '--output', 'json', '--source', corpusDir()]);
  t.is(r.code, 1);
  const out = JSON.parse(r.stdout) as {
    ok: boolean;
    policies: { name: string; valid: boolean; selectsThisNode: boolean }[];
    problems: { severity: string; policy?: string; code: string }[];
  };
  t.false(out.ok);
  // Several corpus files reuse a name (demo-host-policy, lock-down-dev-vms): read together they clash
  // as they would in one cluster, which is an error of its own kind.
  const duplicates = new Set(out.problems.filter((p) => p.code === 'duplicate-policy').map((p) => p.policy));
  t.deepEqual([...duplicates].sort(), ['demo-host-policy', 'lock-down-dev-vms']);
  const invalid = out.problems
    .filter((p) => p.severity === 'error' && p.code !== 'duplicate-policy')
    .map((p) => p.policy);
  // The placeholder CIDR, and VRRP without enableExtendedIPProtocols (reference §2.3).
  t.deepEqual([...new Set(invalid)].sort(), ['allow-extended-egress-worker-node', 'host-ingress-from-cidr-to-ports']);
  t.true(out.policies.some((p) => p.name === 'demo-host-policy' && p.selectsThisNode));
  t.true(out.problems.every((p) => p.severity === 'error' || p.severity === 'warning'));
});

test('warnings pass without --strict and fail with it', async (t) => {
  // kubernetes.io/os is dropped by Cilium's label filter: the policy can never select a node.
  const file = tempPolicy(`apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: os-selector
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/os: linux
  ingress:
  - fromEntities: [cluster]
`);
  const lax = await runCli(['validate', '--config', config, '--source', file]);
  t.is(lax.code, 0, lax.stdout + lax.stderr);
  t.regex(lax.stdout, /p\.yaml:8:\d+: warning: policy os-selector: spec\.nodeSelector.*kubernetes\.io\/os/);
  const strict = await runCli(['validate', '--config', config, '--strict', '--source', file]);
  t.is(strict.code, 1);
});

test('a YAML syntax error is reported with its position, not a crash', async (t) => {
  const file = tempPolicy('apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: x\n  name: y\nspec: {\n');
  const r = await runCli(['validate', '--config', config, '--source', file]);
  t.is(r.code, 1);
  t.regex(r.stdout + r.stderr, /p\.yaml:\d+:\d+: error: /);
  t.notRegex(r.stderr, /at .*\.js:\d+/, 'no stack trace');
});

test('an unknown flag is a usage error (exit 2)', async (t) => {
  const r = await runCli(['validate', '--config', config, '--nope']);
  t.is(r.code, 2);
  t.regex(r.stderr, /Unknown argument/);
});

test('a missing source path is an input error (exit 1) naming the path', async (t) => {
  const r = await runCli(['validate', '--config', config, '--source', '/nonexistent/nodewall-policies']);
  t.is(r.code, 1);
  t.regex(r.stdout + r.stderr, /\/nonexistent\/nodewall-policies/);
});

test('render prints no script at all when a policy is invalid', async (t) => {
  const bad = join(corpusDir(), 'cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml');
  const r = await runCli(['render', '--config', config, '--source', corpus('cilium-demo-host-policy.yaml'), '--source', bad]);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, /NODE_WITHOUT_CILIUM_IP/);
  const good = await runCli(['render', '--config', config, '--source', corpus('cilium-demo-host-policy.yaml')]);
  t.is(good.code, 0, good.stderr);
  t.regex(good.stdout, /^table inet nodewall \{\}$/m);
  t.regex(good.stdout, /comment "demo-host-policy spec\.ingress\[1\]"/);
});

test('validate --source DIR: a FIFO, a /dev/zero link and a symlink loop are warnings, an empty file too; it returns', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-validate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.yaml'), [
    'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'metadata: {name: a}',
    'spec: {nodeSelector: {}, ingress: [{fromEntities: [world]}]}', '',
  ].join('\n'));
  writeFileSync(join(dir, 'empty.yaml'), '');
  execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
  symlinkSync('/dev/zero', join(dir, 'zero.yaml'));
  symlinkSync('.', join(dir, 'self'));
  // runCli's own 30 s kill is the only bound: a blocked read would show as a killed process, not a result.
  const r = await runCli(['validate', '--config', config, '--source', dir]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`${join(dir, 'pipe.yaml')}:1:1: warning: not a regular file \\(FIFO\\): skipped`));
  t.regex(r.stdout, new RegExp(`${join(dir, 'zero.yaml')}:1:1: warning: not a regular file \\(character device\\): skipped`));
  t.regex(r.stdout, new RegExp(`${join(dir, 'self')}:1:1: warning: symlink loop`));
  t.regex(r.stdout, new RegExp(`${join(dir, 'empty.yaml')}:1:1: warning: file is empty`));
  t.regex(r.stderr, /^1 policies, 1 valid/m);
  t.notRegex(r.stdout, /duplicate/);
});

test('validate: a file over maxFileBytes is an error naming the file, its size, the limit and the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-validate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'nodewall.yaml');
  writeFileSync(cfg, 'nodeName: node-a\nmaxFileBytes: 100\n');
  writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(200)}\n`);
  const r = await runCli(['validate', '--config', cfg, '--source', join(dir, 'big.yaml')]);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /big\.yaml:1:1: error: file too large: 203 bytes, over the limit of 100 bytes \(config key maxFileBytes\)/);
});
