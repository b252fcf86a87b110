// Staged policies with the real agent and real packets: a staged policy never
// changes what the kernel drops or accepts; the agent reports exactly the flows
// whose verdict it would change, as `trace` and `nodewall audit` say.

import test from 'ava';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from '../agent/paths.js';
import { Lab, type Probe } from './lab.js';
import { AgentProcess, agentDirs, isApplied, policyYaml, writeConfig, type LogLine } from './agent-harness.js';

const run = promisify(execFile);

interface TraceJson {
  verdict: string;
  staged?: { verdict: string; changed: boolean; summary?: string; policies: string[] };
}

async function trace(config: string, p: Probe): Promise<TraceJson> {
  const r = await run(process.execPath, [cliPath(), 'trace', '--config', config, '--output', 'json',
    '--direction', p.direction, '--peer', p.peer, '--proto', String(p.proto), '--port', String(p.port)], { timeout: 30_000 });
  return JSON.parse(r.stdout) as TraceJson;
}

const stagedLines = (a: AgentProcess): LogLine[] => a.find((l) => l['kind'] === 'staged-record');
const key = (peer: unknown, port: unknown) => `${String(peer)}:${String(port)}`;

const stagedDeny = [
  'apiVersion: cilium.io/v2',
  'kind: CiliumClusterwideNetworkPolicy',
  'metadata:',
  '  name: tighten-8080',
  '  annotations:',
  '    nodewall.io/stage: audit',
  'spec:',
  '  nodeSelector: {}',
  '  ingressDeny:',
  '    - fromCIDR: [203.0.113.0/25]',
  '      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]',
  '',
].join('\n');

test('staged deny: reports exactly the flows trace says it would deny, and drops none of them', async (t) => {
  const lab = await Lab.create(t, 'agt-stg');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'base.yaml'), policyYaml('base', [22, 8080]));
  await writeFile(join(dirs.policies, 'tighten.yaml'), stagedDeny);
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'ruleset applied');

  // the last probe is one the staged policy changes: once its line is logged, every earlier record was read too
  const probes: (Probe & { expect: 'allow' | 'deny' })[] = [
    { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 8080, expect: 'allow' },
    { direction: 'ingress', peer: '203.0.113.200', proto: 'tcp', port: 8080, expect: 'allow' },
    { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 22, expect: 'allow' },
    { direction: 'ingress', peer: '203.0.113.11', proto: 'tcp', port: 7000, expect: 'deny' },
    { direction: 'ingress', peer: '203.0.113.10', proto: 'tcp', port: 8080, expect: 'allow' },
  ];
  for (const p of probes) t.is(await lab.probeSure(p, p.expect), p.expect, `enforced verdict unchanged by the staged policy: ${JSON.stringify(p)}`);
  await agent.waitFor((l) => l['kind'] === 'staged-record' && l['peer'] === '203.0.113.10', 30_000, 0, 'staged line for the last probe');

  const reported = new Set(stagedLines(agent).map((l) => key(l['peer'], l['port'])));
  const wouldChange = new Set<string>();
  for (const p of probes) {
    const v = await trace(dirs.config, p);
    t.is(v.verdict, p.expect, 'trace gives the enforced verdict the packets met');
    t.deepEqual(v.staged?.policies, ['tighten-8080']);
    if (v.staged?.changed === true) wouldChange.add(key(p.peer, p.port));
  }
  t.deepEqual([...reported].sort(), [...wouldChange].sort());
  t.deepEqual([...wouldChange].sort(), ['203.0.113.10:8080', '203.0.113.9:8080']);
  const line = stagedLines(agent).find((l) => l['peer'] === '203.0.113.9');
  t.like(line, { direction: 'ingress', proto: 'tcp', port: 8080, verdict: 'would-deny', policy: 'tighten-8080', rule: 'spec.ingressDeny[0]',
    staged: 'would deny (staged: tighten-8080 spec.ingressDeny[0])', enforcedVerdict: 'allow' });
  t.regex(line?.msg ?? '', /^would deny \(staged: tighten-8080 spec\.ingressDeny\[0\]\) ingress tcp\/8080 203\.0\.113\.9$/);

  // the connections still succeed after the report; the kernel has no rule of the staged policy
  t.is(await lab.probeSure(probes[0]!, 'allow'), 'allow');
  const ruleset = (await lab.nft(['list', 'table', 'inet', 'nodewall'])).stdout;
  t.notRegex(ruleset, /tighten-8080 spec/);
  t.notRegex(ruleset, /update @nw_staged[^\n]*(drop|accept|reject|goto|jump)/, 'record rules carry no verdict');

  // `nodewall audit` (kernel records, both models) says the same
  const audit = await run('ip', ['netns', 'exec', lab.nodeNs, process.execPath, cliPath(), 'audit', '--config', dirs.config, '--output', 'json'], { timeout: 60_000 });
  const doc = JSON.parse(audit.stdout) as { staged?: { policies: string[]; verdicts: { peer: string; port: number; kind: string }[] } };
  t.deepEqual(doc.staged?.policies, ['tighten-8080']);
  const fromAudit = new Set((doc.staged?.verdicts ?? []).filter((v) => v.kind === 'staged-record').map((v) => key(v.peer, v.port)));
  t.deepEqual([...fromAudit].sort(), [...wouldChange].sort());

  // `list` shows the staged policy as staged
  const list = await run('ip', ['netns', 'exec', lab.nodeNs, process.execPath, cliPath(), 'list', '--config', dirs.config], { timeout: 60_000 });
  t.regex(list.stdout, /ingress: staged \(evaluated, not enforced\): tighten-8080/);
  const status = await run(process.execPath, [cliPath(), 'status', '--config', dirs.config], { timeout: 60_000 });
  t.regex(status.stdout, /\nstaged: {3}tighten-8080 \(evaluated, not enforced\)\n/);
  // records change set contents only: never taken for drift
  t.deepEqual(agent.find((x) => /table (changed|missing)/.test(x.msg)), []);

  // a full record set never changes forwarding: the recording rule stops, the packet goes on
  const elems: string[] = [];
  for (let i = 0; i < 65535; i++) elems.push(`198.51.100.${i >> 8} . tcp . ${1000 + (i & 0xff)}`);
  await lab.nft(['-f', '-'], `flush set inet nodewall nw_staged_in_v4\nadd element inet nodewall nw_staged_in_v4 { ${elems.join(', ')} }\n`);
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.77', proto: 'tcp', port: 8080 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.78', proto: 'tcp', port: 7000 }), 'deny');
  const full = (await lab.nft(['list', 'set', 'inet', 'nodewall', 'nw_staged_in_v4'])).stdout;
  t.notRegex(full, /203\.0\.113\.77 /, 'the set was full: the new flow was not recorded');
  t.is(await agent.stop(), 0);
});

test('staged allow (config stagedPolicies): reports "would allow" and the flow stays denied', async (t) => {
  const lab = await Lab.create(t, 'agt-stga');
  const dirs = await agentDirs(t, { mode: 'enforce', stagedPolicies: ['open-9090'] });
  await writeFile(join(dirs.policies, 'base.yaml'), policyYaml('base', [22]));
  await writeFile(join(dirs.policies, 'open.yaml'), policyYaml('open-9090', [9090]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'ruleset applied');
  const p: Probe = { direction: 'ingress', peer: '203.0.113.20', proto: 'tcp', port: 9090 };
  t.is(await lab.probeSure({ ...p, port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe(p), 'deny');
  const l = await agent.waitFor((x) => x['kind'] === 'staged-record' && x['peer'] === '203.0.113.20', 30_000, 0, 'would-allow line');
  t.like(l, { port: 9090, verdict: 'would-allow', policy: 'open-9090', rule: 'spec.ingress[0]', staged: 'would allow (staged: open-9090 spec.ingress[0])', enforcedVerdict: 'deny' });
  t.is(await lab.probe(p), 'deny', 'still denied after the report');
  const v = await trace(dirs.config, p);
  t.like(v, { verdict: 'deny', staged: { verdict: 'allow', changed: true } });
  t.false(stagedLines(agent).some((x) => x['port'] === 22), 'a flow both models allow is not reported');

  // promoted (no longer staged): enforced from the next pass, and nothing is recorded any more
  const mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce' });
  await agent.waitFor((x) => x.msg === 'ruleset applied', 30_000, mark, 'promoted ruleset');
  t.is(await lab.probeSure(p, 'allow'), 'allow');
  t.notRegex((await lab.nft(['list', 'table', 'inet', 'nodewall'])).stdout, /nw_staged/);
  t.is(await agent.stop(), 0);
});
