// render / apply / list end to end, run inside the lab's node namespace.

import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkScript } from '../../src/nft/nft-exec.js';
import { corpusFile } from '../api/corpus.js';
import { conformanceDir } from '../helpers/conformance.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { Lab, nftPath } from './lab.js';
import { withoutDropRecords } from './table-canon.js';

const cluster = join(conformanceDir(), 'cluster.yaml');
const demo = corpusFile('cilium-demo-host-policy.yaml');
const ingressCorpus = corpusFile('cilium-test-ccnp-default-deny-host-ingress.yaml');

/** The real CLI (src/bin/nodewall.js beside this build), run inside the lab's node namespace. */
function cli(lab: Lab, args: readonly string[]): Promise<CliResult> {
  return runCli(args, { netns: lab.nodeNs, timeoutMs: 60_000 });
}

function configFile(t: { teardown(fn: () => void): void }, extra = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-nft-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nodewall.yaml');
  writeFileSync(
    path,
    [
      'nodeName: node-a',
      'clusterName: default',
      'clusterPodCIDRs: [198.51.100.0/24, "2001:db8:100::/64"]',
      'mode: enforce',
      `nft: { path: ${nftPath}, table: nodewall }`,
      extra,
      '',
    ].join('\n'),
  );
  return path;
}

test('render prints a deterministic script that nft -c accepts', async (t) => {
  const lab = await Lab.create(t, 'clir');
  const config = configFile(t);
  const a = await cli(lab, ['render', '--config', config, '--source', cluster, '--source', demo]);
  t.is(a.code, 0, a.stderr);
  t.regex(a.stdout, /^table inet nodewall \{\}$/m);
  t.regex(a.stdout, /comment "demo-host-policy spec\.ingress\[1\]"/);
  const b = await cli(lab, ['render', '--config', config, '--source', cluster, '--source', demo]);
  t.is(b.stdout, a.stdout);
  await checkScript(nftPath, a.stdout, { netns: lab.nodeNs });
  const audit = await cli(lab, ['render', '--config', config, '--source', cluster, '--source', demo, '--mode', 'audit']);
  t.regex(audit.stdout, /goto nw_audit_in/);
});

test('list without nodewall\'s table says nodewall is not enforcing', async (t) => {
  const lab = await Lab.create(t, 'clil');
  const config = configFile(t);
  const r = await cli(lab, ['list', '--config', config]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /nodewall is not enforcing on this node: there is no table inet nodewall/);
  const j = await cli(lab, ['list', '--config', config, '--output', 'json']);
  t.deepEqual(JSON.parse(j.stdout), { table: 'nodewall', enforcing: false });
});

test('apply loads, list reads back rules, counters and sets; dry run and re-apply change nothing', async (t) => {
  const lab = await Lab.create(t, 'clia');
  const config = configFile(t);
  const src = ['--source', cluster, '--source', demo];
  const first = await cli(lab, ['apply', '--config', config, ...src]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /^replaced table inet nodewall atomically: no nodewall table in the kernel/m);

  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 8080 }), 'deny');

  const list = await cli(lab, ['list', '--config', config]);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /^ingress: enforced, default deny$/m);
  t.regex(list.stdout, /^egress: not enforced/m);
  t.regex(list.stdout, /^ingress\s+accept\s+demo-host-policy\s+spec\.ingress\[1\]\s+any\s+tcp\/22\s+[1-9]/m);

  const json = JSON.parse((await cli(lab, ['list', '--config', config, '--output', 'json', '--sets'])).stdout) as {
    enforcing: boolean;
    mode: string;
    ingress: { enforced: boolean; defaultDeny: boolean };
    egress: { enforced: boolean };
    rules: { direction: string; action: string; policy: string | null; rule: string | null; peer: string; protocol: string; packets: number }[];
    sets: { name: string; elements: number; members?: string[] }[];
  };
  t.true(json.enforcing);
  t.is(json.mode, 'enforce');
  t.deepEqual(json.ingress, { enforced: true, defaultDeny: true });
  t.false(json.egress.enforced);
  const ssh = json.rules.find((r) => r.policy === 'demo-host-policy' && r.rule === 'spec.ingress[1]');
  t.is(ssh?.protocol, 'tcp/22');
  t.true((ssh?.packets ?? 0) >= 1);
  const dropped = json.rules.find((r) => r.rule === 'nodewall default-deny' && r.direction === 'ingress');
  t.true((dropped?.packets ?? 0) >= 1);
  const cluster4 = json.rules.find((r) => r.policy === 'demo-host-policy' && r.rule === 'spec.ingress[0]' && r.peer.includes('_v4'));
  t.regex(cluster4?.peer ?? '', /^\w+_v4 \(\d+\)/);
  t.true(json.sets.every((s) => s.members !== undefined && s.members.length === s.elements));

  const again = await cli(lab, ['apply', '--config', config, ...src]);
  t.regex(again.stdout, /is up to date/);
  const handlesBefore = withoutDropRecords((await lab.nft(['-a', 'list', 'table', 'inet', 'nodewall'])).stdout.replace(/packets \d+ bytes \d+/g, ''));
  const dry = await cli(lab, ['apply', '--config', config, '--source', cluster, '--source', ingressCorpus, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^would replace table inet nodewall atomically: structure changed/m);
  t.regex(dry.stdout, /^ {2}- \d+ rule\(s\) in input: demo-host-policy spec\.ingress\[1\]$/m);
  t.regex(dry.stdout, /^ {2}\+ \d+ rule\(s\) in input: /m);
  t.is(withoutDropRecords((await lab.nft(['-a', 'list', 'table', 'inet', 'nodewall'])).stdout.replace(/packets \d+ bytes \d+/g, '')), handlesBefore);
});

test('apply refuses invalid policies and reports nft failures with exit codes', async (t) => {
  const lab = await Lab.create(t, 'clie');
  const invalid = await cli(lab, ['apply', '--config', configFile(t), '--source', cluster, '--source', corpusFile('cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml')]);
  t.is(invalid.code, 1);
  t.regex(invalid.stderr, /nothing was applied/);
  t.regex((await lab.nft(['list', 'tables'])).stdout, /^$/);
  const broken = configFile(t).replace(/$/, '');
  writeFileSync(broken, `nodeName: node-a\nmode: enforce\nnft: { path: /bin/false, table: nodewall }\n`);
  const failed = await cli(lab, ['apply', '--config', broken, '--source', cluster, '--source', demo]);
  t.is(failed.code, 3);
  t.regex(failed.stderr, /\/bin\/false/);
});

test('apply refuses to cut an established inbound session unless forced', async (t) => {
  const lab = await Lab.create(t, 'cliguard');
  const config = configFile(t);
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-nft-guard-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const web = join(dir, 'web-only.yaml');
  writeFileSync(web, [
    'apiVersion: cilium.io/v2',
    'kind: CiliumClusterwideNetworkPolicy',
    'metadata: { name: web-only }',
    'spec:',
    '  nodeSelector: {}',
    '  ingress:',
    '  - fromEntities: [world]',
    '    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]',
    '',
  ].join('\n'));
  t.is((await cli(lab, ['apply', '--config', config, '--source', cluster, '--source', demo])).code, 0);
  const ssh = await lab.openIngress('203.0.113.7', 22);
  t.true(await lab.echo(ssh, 20_000));
  const handles = withoutDropRecords((await lab.nft(['-a', 'list', 'table', 'inet', 'nodewall'])).stdout.replace(/packets \d+ bytes \d+/g, ''));

  const refused = await cli(lab, ['apply', '--config', config, '--source', cluster, '--source', web]);
  t.is(refused.code, 3);
  t.regex(refused.stderr, /established session 203\.0\.113\.7:\d+ -> local port 22 would be cut \(default-deny\)/);
  t.regex(refused.stderr, /nothing was changed/);
  t.is(withoutDropRecords((await lab.nft(['-a', 'list', 'table', 'inet', 'nodewall'])).stdout.replace(/packets \d+ bytes \d+/g, '')), handles);
  t.true(await lab.echo(ssh, 20_000));

  const forced = await cli(lab, ['apply', '--config', config, '--source', cluster, '--source', web, '--force']);
  t.is(forced.code, 0, forced.stderr);
  t.false(await lab.echo(ssh));
  // Not slowness: a session the new ruleset allows (port 80) answers, and the cut one still does not.
  const web80 = await lab.openIngress('203.0.113.8', 80);
  t.true(await lab.echo(web80, 20_000), 'a session the new ruleset allows answers');
  t.false(await lab.echo(ssh, 3000), 'still cut');
  await lab.closeConn(web80);
  await lab.closeConn(ssh);
});
