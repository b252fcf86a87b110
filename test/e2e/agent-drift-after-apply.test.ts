// The drift hash recorded after the first full load describes what nodewall loaded: a chain edited by
// someone right after the "ruleset applied" line is drift and is undone, whether the hash was predicted
// in a scratch namespace (nft.path is the nft binary) or read back (nft.path is a wrapper script).

import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { Lab, nftPath } from './lab.js';
import { AgentProcess, agentDirs, policyYaml, writeConfig, type LogLine } from './agent-harness.js';

const peer = '203.0.113.5';
const firstApply = (l: LogLine): boolean => l.msg === 'ruleset applied' && l['trigger'] === 'start';

for (const via of ['binary', 'wrapper'] as const) {
  test(`a rule inserted right after the first apply is drift and undone (nft.path: ${via})`, async (t) => {
    const lab = await Lab.create(t, `dra${via[0]}`);
    const dirs = await agentDirs(t, { mode: 'enforce', logLevel: 'debug', driftCheckSeconds: 1 });
    let path = nftPath;
    if (via === 'wrapper') {
      path = join(dirs.root, 'nft');
      await writeFile(path, `#!/bin/sh\nexec ${nftPath} "$@"\n`);
      await chmod(path, 0o755);
      await writeConfig(dirs, { mode: 'enforce', logLevel: 'debug', driftCheckSeconds: 1, nft: { path, table: 'nodewall' } });
    }
    await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
    const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
    await agent.waitFor(firstApply, 30_000, 0, 'first apply');
    // At once: open the firewall for everyone (the agent's read-back, if any, is over by now: it precedes the line).
    await lab.nft(['insert', 'rule', 'inet', 'nodewall', 'input', 'counter', 'accept']);
    const recorded = await agent.waitFor((l) => l.msg === 'drift hash recorded', 30_000, 0, 'hash recorded');
    t.is(recorded['source'], via === 'binary' ? 'predicted' : 'read-back', JSON.stringify(recorded));
    if (via === 'wrapper') t.regex(String(recorded['skipped']), /not an ELF executable/);
    await agent.waitFor((l) => l.msg === 'table changed outside nodewall: restoring', 30_000, 0, 'drift seen');
    await agent.waitFor((l) => l.msg === 'ruleset applied' && l['restored'] === true, 30_000, 0, 'restored');
    t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
    t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 22 }, 'allow'), 'allow');
    t.false(agent.lines.some((l) => l.level >= 50), 'no error logged');
  });
}
