import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parsePeerFilter, parseSince } from '../../src/cli/commands/drops.js';
import { UsageError } from '../../src/cli/options.js';
import { corpusDir, repoRoot } from '../helpers/repo.js';
import { runCli } from '../helpers/run-cli.js';

const config = join(repoRoot(), 'test', 'fixtures', 'cli', 'nodewall.yaml');
const demo = join(corpusDir(), 'cilium-demo-host-policy.yaml');

test('--version prints the version of this install\'s package.json', async (t) => {
  const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
  const r = await runCli(['--version']);
  t.is(r.code, 0);
  t.is(r.stdout.trim(), pkg.version);
});

test('completion prints a shell completion script, and completes commands and their flags', async (t) => {
  const script = await runCli(['completion']);
  t.is(script.code, 0);
  t.regex(script.stdout, /nodewall --get-yargs-completions/);
  const commands = await runCli(['--get-yargs-completions', '']);
  t.true(commands.stdout.split('\n').includes('drops'));
  const flags = await runCli(['--get-yargs-completions', 'drops', '--']);
  t.true(flags.stdout.split('\n').includes('--since'));
});

test('-o yaml carries the same document as -o json (trace, validate)', async (t) => {
  const args = ['trace', '--config', config, '--source', demo, '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '8080'];
  const json = await runCli([...args, '-o', 'json']);
  const yaml = await runCli([...args, '-o', 'yaml']);
  t.is(yaml.code, 0, yaml.stderr);
  t.deepEqual(parseYaml(yaml.stdout), JSON.parse(json.stdout));
  const vj = await runCli(['validate', '--config', config, '--source', demo, '--output', 'json']);
  const vy = await runCli(['validate', '--config', config, '--source', demo, '-o', 'yaml']);
  t.deepEqual(parseYaml(vy.stdout), JSON.parse(vj.stdout));
});

test('drops --since takes durations and ISO times; --peer takes an address or a CIDR; anything else is a usage error', (t) => {
  const now = 1_000_000_000;
  t.is(parseSince('10m', now), now - 600_000);
  t.is(parseSince('90s', now), now - 90_000);
  t.is(parseSince('2h', now), now - 7_200_000);
  t.is(parseSince('1d', now), now - 86_400_000);
  // The same grammar as --for and --confirm-within (src/duration.ts).
  t.is(parseSince('1h30m', now), now - 5_400_000);
  t.is(parseSince('500ms', now), now - 500);
  t.is(parseSince('2026-01-31T12:00:00Z', now), Date.parse('2026-01-31T12:00:00Z'));
  for (const bad of ['10', 'ten minutes', '-5m', '1w', '', '1.5h', '1d2h', 'm']) t.throws(() => parseSince(bad, now), { instanceOf: UsageError });
  t.is(parsePeerFilter('198.51.100.7'), '198.51.100.7/32');
  t.is(parsePeerFilter('2001:db8::/32'), '2001:db8::/32');
  t.is(parsePeerFilter('198.51.100.0/24'), '198.51.100.0/24');
  for (const bad of ['198.51.100.300', 'x/8', '10.0.0.0/33']) t.throws(() => parsePeerFilter(bad), { instanceOf: UsageError });
});
