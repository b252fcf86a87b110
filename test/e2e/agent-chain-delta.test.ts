// The agent applies a changed, added or deleted policy as a chain delta: only
// that policy's chain (and, for an added or deleted one, the base chain's
// jumps) is replaced; the other policy keeps its rule handles and counters.

import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { readTable, type KernelTable } from '../../src/nft/read-kernel.js';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml } from './agent-harness.js';
import { Lab, nftPath } from './lab.js';

const peer = '203.0.113.5';

function handlesOf(k: KernelTable | null, chainPrefix: string): number[] {
  return (k?.rules ?? []).filter((r) => r.chain.startsWith(chainPrefix)).map((r) => r.handle);
}

test('a policy changed, added or deleted through the agent is a chain delta; the other policy keeps its handles', async (t) => {
  const lab = await Lab.create(t, 'agt-chd');
  const dirs = await agentDirs(t, { mode: 'enforce' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  await writeFile(join(dirs.policies, 'web.yaml'), policyYaml('web', [80]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 20_000, 0, 'first apply');
  const read = () => readTable(nftPath, 'nodewall', { netns: lab.nodeNs });
  const k0 = await read();
  const ssh0 = handlesOf(k0, 'nw_in_allow_ssh_');
  t.is(ssh0.length, 2, 'ssh: one rule per family');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 22 }, 'allow'), 'allow');

  // Changed: only web's chain.
  let mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'web.yaml'), policyYaml('web', [80, 8080]));
  let applied = await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'watch', 20_000, mark, 'apply after the change');
  t.is(applied['kind'], 'delta', String(applied['reason']));
  t.regex(String(applied['reason']), /1 chain\(s\) replaced/);
  const k1 = await read();
  t.deepEqual(handlesOf(k1, 'nw_in_allow_ssh_'), ssh0);
  t.deepEqual(handlesOf(k1, 'input'), handlesOf(k0, 'input'), 'the base chain was not touched');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }, 'allow'), 'allow');

  // Added: a new chain and the base chain's jumps.
  mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'db.yaml'), policyYaml('db', [5432]));
  applied = await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'watch', 20_000, mark, 'apply after the addition');
  t.is(applied['kind'], 'delta', String(applied['reason']));
  const k2 = await read();
  t.deepEqual(handlesOf(k2, 'nw_in_allow_ssh_'), ssh0);
  t.is(handlesOf(k2, 'nw_in_allow_db_').length, 2);
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 5432 }, 'allow'), 'allow');

  // Deleted: its chain goes, ssh stays.
  mark = agent.lines.length;
  await rm(join(dirs.policies, 'web.yaml'));
  applied = await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'watch', 20_000, mark, 'apply after the deletion');
  t.is(applied['kind'], 'delta', String(applied['reason']));
  const k3 = await read();
  t.deepEqual(handlesOf(k3, 'nw_in_allow_ssh_'), ssh0);
  t.deepEqual(handlesOf(k3, 'nw_in_allow_web_'), []);
  t.false((k3?.chains ?? []).some((c) => c.name.startsWith('nw_in_allow_web_')));
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 22 }, 'allow'), 'allow');
  // No drift was seen in between: the agent's own deltas are not drift.
  t.false(agent.lines.some((l) => /table missing|drift/i.test(l.msg) && l.level !== undefined && (l.level as number) >= 40));
});
