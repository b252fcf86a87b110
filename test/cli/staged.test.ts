// The CLI for staged policies: validate counts and names them, trace shows both verdicts,
// an unknown stage value fails validate with file:line and the annotation path.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/run-cli.js';

const policies = (stage: string) => `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: base
spec:
  nodeSelector: {}
  ingress:
    - fromEntities: [world]
      toPorts: [{ports: [{port: "22", protocol: TCP}, {port: "8080", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: staged-deny
  annotations:
    nodewall.io/stage: ${stage}
spec:
  nodeSelector: {}
  ingressDeny:
    - fromCIDR: [203.0.113.0/24]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`;

async function file(t: import('ava').ExecutionContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-staged-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'p.yaml');
  await writeFile(f, text);
  return f;
}

test('validate and trace with a staged policy', async (t) => {
  const f = await file(t, policies('audit'));
  const v = await runCli(['validate', '--source', f, '--node', 'n1']);
  t.is(v.code, 0);
  t.regex(v.stderr, /2 policies, 2 valid, 2 select node n1 \(1 staged, evaluated but not enforced: staged-deny\)/);
  const deny = await runCli(['trace', '--source', f, '--node', 'n1', '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '8080']);
  t.is(deny.code, 0);
  t.regex(deny.stdout, /^ingress tcp port 8080 from 203\.0\.113\.7: ALLOW/);
  t.regex(deny.stdout, /\nwith staged policies: DENY: would deny \(staged: staged-deny spec\.ingressDeny\[0\]\); enforced: ALLOW/);
  const same = await runCli(['trace', '--source', f, '--node', 'n1', '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '22', '--output', 'json']);
  t.like(JSON.parse(same.stdout), { verdict: 'allow', staged: { policies: ['staged-deny'], verdict: 'allow', changed: false } });
});

test('an unknown stage value fails validate at the annotation', async (t) => {
  const f = await file(t, policies('Audit'));
  const v = await runCli(['validate', '--source', f, '--node', 'n1']);
  t.is(v.code, 1);
  t.true(v.stdout.includes(`${f}:16:5: error: policy staged-deny: metadata.annotations["nodewall.io/stage"]: unknown stage "Audit"`));
  const r = await runCli(['render', '--source', f, '--node', 'n1']);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /not rendering: fix the errors above/);
  t.is(r.stdout, '', 'no partial ruleset');
});
