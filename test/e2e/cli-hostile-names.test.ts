// Control characters in names and labels never reach the kernel (issue 8 defect 4): `apply`
// refuses the input with a printable error naming file:line:col, policy and field path, and the
// ruleset in force stays, packets included. Runs the real CLI inside the lab's node namespace.

import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpusFile } from '../api/corpus.js';
import { conformanceDir } from '../helpers/conformance.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { Lab, nftPath } from './lab.js';
import { withoutDropRecords } from './table-canon.js';

const cluster = join(conformanceDir(), 'cluster.yaml');
const demo = corpusFile('cilium-demo-host-policy.yaml');
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function cli(lab: Lab, args: readonly string[]): Promise<CliResult> {
  return runCli(args, { netns: lab.nodeNs, timeoutMs: 60_000 });
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(dir: string, extra = ''): string {
  const path = join(dir, 'nodewall.yaml');
  writeFileSync(path, [
    'nodeName: node-a',
    'clusterPodCIDRs: [198.51.100.0/24, "2001:db8:100::/64"]',
    'mode: enforce',
    `nft: { path: ${nftPath}, table: nodewall }`,
    extra,
    '',
  ].join('\n'));
  return path;
}

// A host policy that would open port 8080 to the world, named with a NUL (as nft would read it:
// "open" and then nothing), plus one whose node selector value carries an escape sequence.
const hostile = [
  'apiVersion: cilium.io/v2',
  'kind: CiliumClusterwideNetworkPolicy',
  'metadata:',
  '  name: "open\\0 8080"',
  'spec:',
  '  nodeSelector: {}',
  '  ingress:',
  '  - fromEntities: [world]',
  '    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]',
  '---',
  'apiVersion: cilium.io/v2',
  'kind: CiliumClusterwideNetworkPolicy',
  'metadata: {name: escape-label}',
  'spec:',
  '  nodeSelector: {matchLabels: {role: "edge\\u001b[2J"}}',
  '  ingress: [{fromEntities: [world]}]',
  '',
].join('\n');

/** The kernel's view of nodewall's table, without counters (they move with traffic). */
async function tableText(lab: Lab): Promise<string> {
  return withoutDropRecords((await lab.nft(['-a', 'list', 'table', 'inet', 'nodewall'])).stdout.replace(/packets \d+ bytes \d+/g, ''));
}

test('apply refuses a policy with a NUL in its name or an escape in a label; the ruleset in force stays', async (t) => {
  const lab = await Lab.create(t, 'hostile');
  const dir = tempDir(t);
  const config = writeConfig(dir);
  const evil = join(dir, 'evil.yaml');
  writeFileSync(evil, hostile);

  const first = await cli(lab, ['apply', '--config', config, '--source', cluster, '--source', demo]);
  t.is(first.code, 0, first.stderr);
  const before = await tableText(lab);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 8080 }), 'deny');

  for (const cmd of ['apply', 'render', 'validate'] as const) {
    const r = await cli(lab, [cmd, '--config', config, '--source', cluster, '--source', demo, '--source', evil]);
    t.is(r.code, 1, `${cmd}: ${r.stderr}`);
    const out = r.stdout + r.stderr;
    t.notRegex(out, CONTROL, `${cmd} prints no control character`);
    t.true(out.includes(`${evil}:4:3: error: policy open\\u0000 8080: metadata.name: Invalid value: "open\\u0000 8080": contains the control character U+0000 at character 5`), out);
    t.true(out.includes(`${evil}:15:32: error: policy escape-label: spec.nodeSelector.matchLabels.role: invalid label value: Invalid value: "edge\\u001b[2J"`), out);
    if (cmd === 'render') t.notRegex(r.stdout, /table inet/, 'render prints no script');
    if (cmd === 'apply') t.regex(r.stderr, /nothing was applied/);
  }

  t.is(await tableText(lab), before, 'same rules, sets and handles');
  const ruleset = (await lab.nft(['list', 'ruleset'])).stdout;
  t.notRegex(ruleset, /open|escape-label/);
  t.notRegex(ruleset, CONTROL);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 8080 }), 'deny');
});

test('a config or flag naming the node with control characters is refused before anything is applied', async (t) => {
  const lab = await Lab.create(t, 'hostilecfg');
  const dir = tempDir(t);
  const badName = join(dir, 'bad.yaml');
  writeFileSync(badName, 'nodeName: "node-a\\0"\nmode: enforce\nnft: {path: /usr/sbin/nft}\n__proto__: {mode: enforce}\nnodeName: again\n');
  const r = await cli(lab, ['apply', '--config', badName, '--source', cluster, '--source', demo]);
  t.is(r.code, 1, r.stderr);
  t.notRegex(r.stderr, CONTROL);
  t.true(r.stderr.includes(`${badName}:1:11: error: nodeName: Invalid value: "node-a\\u0000": contains the control character U+0000`), r.stderr);
  t.true(r.stderr.includes(`${badName}:4:1: error: __proto__: unknown key`), r.stderr);
  t.true(r.stderr.includes(`${badName}:5:1: error: nodeName: duplicate key "nodeName", also set at line 1, column 1: keep only one of them`), r.stderr);

  const good = writeConfig(tempDir(t));
  const flag = await cli(lab, ['apply', '--config', good, '--source', cluster, '--source', demo, '--node-labels', 'role=edge\u001b[2J']);
  t.is(flag.code, 2, flag.stderr);
  t.notRegex(flag.stderr, CONTROL);
  t.regex(flag.stderr, /--node-labels: label role: invalid label value: Invalid value: "edge\\u001b\[2J"/);
  t.regex((await lab.nft(['list', 'tables'])).stdout, /^$/, 'nothing reached the kernel');
});
