// `nft.table` naming someone else's table (defect 6 of issue 8): the real CLI, inside a throwaway
// namespace holding a distro-style `table inet filter`. apply refuses without --adopt and leaves the
// table as it was; list says it is not nodewall's; --adopt takes it over.

import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNft } from '../../src/nft/nft-exec.js';
import { conformanceDir } from '../helpers/conformance.js';
import { runCli } from '../helpers/run-cli.js';
import { throwawayNetns } from '../nft/netns.js';
import { nftPath } from './lab.js';

const cluster = join(conformanceDir(), 'cluster.yaml');
const policy = [
  'apiVersion: cilium.io/v2',
  'kind: CiliumClusterwideNetworkPolicy',
  'metadata: { name: ssh-only }',
  'spec:',
  '  nodeSelector: {}',
  '  ingress:',
  '  - fromEntities: [world]',
  '    toPorts: [{ ports: [{ port: "22", protocol: TCP }] }]',
  '',
].join('\n');

const foreign = [
  'table inet filter {',
  '\tchain input {',
  '\t\ttype filter hook input priority filter; policy accept;',
  '\t\ttcp dport 9999 counter drop comment "distro rule"',
  '\t}',
  '}',
  '',
].join('\n');

test('apply with nft.table naming a foreign table refuses, list says so, --adopt takes it over', async (t) => {
  const ns = await throwawayNetns(t, 'cliown');
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-own-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'nodewall.yaml');
  const demo = join(dir, 'ssh-only.yaml');
  writeFileSync(demo, policy);
  writeFileSync(config, ['nodeName: node-a', 'clusterName: default', 'mode: enforce', `nft: { path: ${nftPath}, table: filter }`, ''].join('\n'));
  const nft = (args: readonly string[], stdin?: string) => runNft(nftPath, args, { netns: ns, ...(stdin === undefined ? {} : { stdin }) });
  const cli = (args: readonly string[]) => runCli(args, { netns: ns, timeoutMs: 60_000 });
  await nft(['-f', '-'], foreign);
  const before = (await nft(['list', 'ruleset'])).stdout;

  const refused = await cli(['apply', '--config', config, '--source', cluster, '--source', demo]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, /refusing to replace table inet filter: it exists but was not created by nodewall/);
  t.regex(refused.stderr, /nodewall apply --adopt/);
  t.is((await nft(['list', 'ruleset'])).stdout, before);

  const dry = await cli(['apply', '--config', config, '--source', cluster, '--source', demo, '--dry-run']);
  t.is(dry.code, 3);
  t.regex(dry.stderr, /refusing to replace table inet filter/);

  const list = await cli(['list', '--config', config]);
  t.is(list.code, 3);
  t.regex(list.stdout, /table inet filter exists but was not created by nodewall \(no nw_owner ownership mark\); nodewall is not enforcing with it/);
  t.is((await nft(['list', 'ruleset'])).stdout, before);

  const adopted = await cli(['apply', '--config', config, '--source', cluster, '--source', demo, '--adopt']);
  t.is(adopted.code, 0, adopted.stderr);
  t.regex(adopted.stderr, /table inet filter had no nodewall ownership mark; it was taken over \(--adopt\)/);
  const now = (await nft(['list', 'table', 'inet', 'filter'])).stdout;
  t.false(now.includes('distro rule'));
  t.regex(now, /comment "ssh-only spec\.ingress\[0\]"/);
  t.regex(now, /set nw_owner \{/);

  // Now it is nodewall's: no flag needed, and list shows its rules.
  const again = await cli(['apply', '--config', config, '--source', cluster, '--source', demo]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /up to date/);
  const listed = await cli(['list', '--config', config]);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /ssh-only/);
});
