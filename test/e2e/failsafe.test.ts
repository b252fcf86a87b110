// Failsafes with real packets: the kernel accepts exactly the flows evaluate() says the failsafes accept
// (a differential over boundary flows, enforce and audit), and the real agent in enforce mode keeps a
// failsafe port open under a deny-all policy while another port is dropped; trace and list say "failsafe".

import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readAuditRecords } from '../../src/agent/audit-records.js';
import { renderRuleset } from '../../src/nft/render.js';
import { parseFailsafeEntry, type Failsafes } from '../../src/policy/failsafe.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import type { Flow } from '../../src/verdict/types.js';
import * as b from '../helpers/model-builders.js';
import { runCli } from '../helpers/run-cli.js';
import { AgentProcess, agentDirs, isApplied } from './agent-harness.js';
import { Lab, mapLimit, type Probe } from './lab.js';

const failsafe: Failsafes = {
  ingress: [
    parseFailsafeEntry('tcp/2222', 'ingress'),
    parseFailsafeEntry('tcp/6443-6444 from 198.51.100.0/25', 'ingress'),
    parseFailsafeEntry('udp/5353 from 2001:db8:1::/48', 'ingress'),
  ],
  egress: [parseFailsafeEntry('udp/53 to 198.51.100.53', 'egress'), parseFailsafeEntry('tcp/9443 to 2001:db8:2::/64', 'egress')],
};
const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
// Ingress: a deny of everything from world (wins over any allow); egress: default deny, nothing allowed.
const lockdown = b.model({
  sets: [world],
  ingress: b.enforced([b.deny('world', [b.anyL4], 'spec.ingressDeny[0]', 'lockdown'), b.allow('world', [b.tcp(80)], 'spec.ingress[0]', 'lockdown')]),
  egress: b.enforced([]),
  failsafe,
});

// Inside and just outside each entry: port, protocol, peer prefix, family, direction.
const flows: readonly Flow[] = [
  { direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 2222 },
  { direction: 'ingress', peer: '2001:db8:9::7', proto: 'tcp', port: 2222 },
  { direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 2223 },
  { direction: 'ingress', peer: '203.0.113.7', proto: 'udp', port: 2222 },
  { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 6443 },
  { direction: 'ingress', peer: '198.51.100.126', proto: 'tcp', port: 6444 },
  { direction: 'ingress', peer: '198.51.100.129', proto: 'tcp', port: 6443 },
  { direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 6445 },
  { direction: 'ingress', peer: '2001:db8:1::5', proto: 'udp', port: 5353 },
  { direction: 'ingress', peer: '2001:db8:2::5', proto: 'udp', port: 5353 },
  { direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 80 },
  { direction: 'egress', peer: '198.51.100.53', proto: 'udp', port: 53 },
  { direction: 'egress', peer: '198.51.100.54', proto: 'udp', port: 53 },
  { direction: 'egress', peer: '198.51.100.53', proto: 'tcp', port: 53 },
  { direction: 'egress', peer: '2001:db8:2::9', proto: 'tcp', port: 9443 },
  { direction: 'egress', peer: '2001:db8:3::9', proto: 'tcp', port: 9443 },
  { direction: 'egress', peer: '203.0.113.7', proto: 'tcp', port: 2222 },
];

test('kernel == evaluate for flows at the edges of every failsafe entry (enforce)', async (t) => {
  const lab = await Lab.create(t, 'fsd');
  await lab.load(renderRuleset(lockdown, { table: 'nodewall', mode: 'enforce' }));
  await lab.addPeerAddresses(flows.map((f) => f.peer));
  const expected = flows.map((f) => evaluate(lockdown, f));
  const kernel = await mapLimit(flows, 6, (f) => lab.probeSure(f as Probe, expected[flows.indexOf(f)]?.verdict ?? 'deny'));
  flows.forEach((f, i) => {
    t.is(kernel[i], expected[i]?.verdict, `${f.direction} ${f.proto}/${f.port} ${f.peer}: kernel ${kernel[i]}, evaluate ${expected[i]?.verdict} (${expected[i]?.reason})`);
  });
  // The differential is not vacuous: some flows pass by a failsafe, others are dropped.
  t.true(expected.filter((v) => v.decidedBy === 'failsafe').length >= 6);
  t.true(expected.filter((v) => v.verdict === 'deny').length >= 8);
});

test('audit mode: failsafe flows pass and are never recorded; the others are recorded', async (t) => {
  const lab = await Lab.create(t, 'fsa');
  await lab.load(renderRuleset(lockdown, { table: 'nodewall', mode: 'audit' }));
  await lab.addPeerAddresses(flows.map((f) => f.peer));
  const kernel = await mapLimit(flows, 6, (f) => lab.probeSure(f as Probe, 'allow'));
  t.deepEqual(kernel, flows.map(() => 'allow'));
  const recorded = new Set((await readAuditRecords('/usr/sbin/nft', 'nodewall', lab.nodeNs)).map((r) => `${r.direction} ${r.peer} ${r.proto} ${r.port}`));
  for (const f of flows) {
    const v = evaluate(lockdown, f);
    const key = `${f.direction} ${f.peer} ${f.proto === 'tcp' ? 6 : 17} ${f.port}`;
    if (v.decidedBy === 'failsafe') t.false(recorded.has(key), `${key} passed a failsafe but was recorded`);
    if (v.verdict === 'deny') t.true(recorded.has(key), `${key} would be dropped but was not recorded`);
  }
});

const denyAllPolicy = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: deny-all
spec:
  nodeSelector: {}
  ingressDeny:
  - fromEntities: [all]
`;

test('agent, enforce: a failsafe keeps tcp/2222 open under a deny-all policy, another port is dropped; trace and list say failsafe', async (t) => {
  const lab = await Lab.create(t, 'fsag');
  const config = { mode: 'enforce', lockoutGuard: 'off', failsafe: { ingress: ['tcp/2222'] } };
  const dirs = await agentDirs(t, config);
  await writeFile(join(dirs.policies, 'deny-all.yaml'), denyAllPolicy);
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  const peer = '203.0.113.22';
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 2222 }, 'allow'), 'allow', 'failsafe port open');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 2223 }), 'deny', 'other port dropped');

  const trace = await runCli(['trace', '--config', dirs.config, '--direction', 'ingress', '--peer', peer, '--proto', 'tcp', '--port', '2222']);
  t.is(trace.code, 0, trace.stderr);
  t.regex(trace.stdout, /ALLOW/);
  t.regex(trace.stdout, /^decided by: failsafe tcp\/2222 \(before any policy rule\)/m);
  const denied = await runCli(['trace', '--config', dirs.config, '--direction', 'ingress', '--peer', peer, '--proto', 'tcp', '--port', '2223', '--output', 'json']);
  t.is((JSON.parse(denied.stdout) as { verdict: string }).verdict, 'deny');

  const list = await runCli(['list', '--config', dirs.config, '--output', 'json'], { netns: lab.nodeNs });
  t.is(list.code, 0, list.stderr);
  const rows = (JSON.parse(list.stdout) as { rules: { policy: string | null; rule: string | null; action: string; packets: number }[] }).rules;
  const fs = rows.find((r) => r.policy === 'failsafe');
  t.is(fs?.rule, 'tcp/2222');
  t.is(fs?.action, 'accept');
  t.true((fs?.packets ?? 0) > 0, 'the failsafe rule counted the probe');
  t.is(await agent.stop(), 0);
});
