// The agent with nft.table naming someone else's table (issue 8, defect 6): it refuses and reports,
// never adopts; the foreign table keeps filtering real packets; once an operator adopts the table
// (`nodewall apply --adopt`), the agent's retry enforces its ruleset there.

import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/run-cli.js';
import { AgentProcess, agentDirs, isApplied, policyYaml } from './agent-harness.js';
import { Lab, nftPath } from './lab.js';

const peer = '203.0.113.5';

const foreign = [
  'table inet filter {',
  '\tchain input {',
  '\t\ttype filter hook input priority filter; policy accept;',
  `\t\tip saddr ${peer} tcp dport 9999 counter drop comment "distro rule"`,
  '\t}',
  '}',
  '',
].join('\n');

test('the agent refuses a foreign nft.table, reports it in the log and status, and enforces once it is adopted', async (t) => {
  const lab = await Lab.create(t, 'agt-own');
  await lab.load(foreign);
  const before = (await lab.nft(['list', 'ruleset'])).stdout.replace(/packets \d+ bytes \d+/g, '');
  const dirs = await agentDirs(t, { mode: 'enforce', nft: { path: nftPath, table: 'filter' } });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);

  const failed = await agent.waitFor((l) => /^apply failed/.test(l.msg), 30_000, 0, 'refused apply');
  const err = failed['err'] as { message?: string; type?: string } | undefined;
  t.regex(err?.message ?? '', /^refusing to replace table inet filter: it exists but was not created by nodewall/);
  t.is(err?.type, 'ForeignTableError');
  // The foreign table is untouched and still drops what it dropped; nodewall's default deny is not there.
  t.is((await lab.nft(['list', 'ruleset'])).stdout.replace(/packets \d+ bytes \d+/g, ''), before);
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 9999 }), 'deny');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'allow');
  const status = JSON.parse(await readFile(join(dirs.state, 'status.json'), 'utf8')) as { lastError?: { message?: string } };
  t.regex(status.lastError?.message ?? '', /refusing to replace table inet filter/);
  t.is(agent.find((l) => isApplied(l)).length, 0);

  // The operator decides: adopt. The agent's retry then finds its own table and enforces.
  const mark = agent.lines.length;
  const adopted = await runCli(['apply', '--config', dirs.config, '--adopt'], { netns: lab.nodeNs, timeoutMs: 60_000 });
  t.is(adopted.code, 0, adopted.stderr);
  await agent.waitFor(isApplied, 60_000, mark, 'apply after adoption');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 22 }), 'allow');
  t.false((await lab.nft(['list', 'table', 'inet', 'filter'])).stdout.includes('distro rule'));
  t.is(await agent.stop(), 0);
});
