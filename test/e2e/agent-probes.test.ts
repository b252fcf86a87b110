// Health-checked changes with the real agent and real packets: a change that breaks a rollout probe (a TCP
// listener in the peer namespace that the node reaches) is rolled back, the previous ruleset is back in the
// kernel, `status` names the probe and the policy, and a later change of that policy is tried again. A
// change that breaks no probe stays; a probe already failing before a change never rolls it back.

import test from 'ava';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/run-cli.js';
import { Lab } from './lab.js';
import { canonTable } from './table-canon.js';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml, writeConfig } from './agent-harness.js';

const api = '198.51.100.20';
/** Has no listener: its probe fails before every change. */
const dead = '198.51.100.21';

function egressDeny(name: string, cidrs: readonly string[], port?: number): string {
  return [
    'apiVersion: cilium.io/v2',
    'kind: CiliumClusterwideNetworkPolicy',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  nodeSelector: {}',
    // Only the deny drops egress: the rest of egress stays allowed.
    '  enableDefaultDeny: {egress: false}',
    '  egressDeny:',
    `    - toCIDR: [${cidrs.join(', ')}]`,
    ...(port === undefined ? [] : ['      toPorts:', `        - ports: [{ port: "${port}", protocol: TCP }]`]),
    '',
  ].join('\n');
}

/** The table as nft lists it, counters zeroed (they move with every probe). */
async function tableText(lab: Lab): Promise<string> {
  return (await lab.nft(['list', 'table', 'inet', 'nodewall'])).stdout.replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0');
}

test('a probe-breaking change is rolled back and refused; a later change of the policy is tried again', async (t) => {
  const lab = await Lab.create(t, 'prb');
  await lab.addPeerAddresses([api, dead]);
  await lab.listen('peer', 'tcp', 6443);
  const dirs = await agentDirs(t, {
    mode: 'enforce', lockoutGuard: 'off', resyncSeconds: 0,
    rollout: { probes: [`${api}:6443`, `${dead}:7000`], probeSeconds: 3 },
  });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  let agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  t.is(await lab.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow');

  // 1. A tightening change that breaks no passing probe stays; it cuts the dead probe's address, which
  //    failed before the change, so that probe does not count.
  let mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'other.yaml'), egressDeny('deny-other', ['203.0.113.0/24', `${dead}/32`]));
  const before1 = await agent.waitFor((l) => l.msg === 'rollout probes before a tightening change', 30_000, mark, 'probes before change 1');
  t.deepEqual((before1['probes'] as { passed: string[] }).passed, [`${api}:6443`]);
  await agent.waitFor((l) => l.msg === 'rollout probes pass after the change', 30_000, mark, 'probes pass after change 1');
  t.is(agent.find((l) => l['rollback'] === true, mark).length, 0);
  t.regex(await tableText(lab), /deny-other spec\.egressDeny\[0\]/);
  t.is(await lab.probe({ direction: 'egress', peer: '203.0.113.9', proto: 'tcp', port: 80 }), 'deny', 'change 1 in force');

  // 2. A change that cuts the API server probe: rolled back, refused, the previous ruleset back in the kernel.
  // Drop-record elements follow the traffic (the probe's own drops add some): compared without them.
  const ruleset = await canonTable(lab.nodeNs, 'nodewall');
  mark = agent.lines.length;
  const lockFile = join(dirs.policies, 'lock.yaml');
  await atomicWrite(lockFile, egressDeny('lock-api', [`${api}/32`]));
  const rb = await agent.waitFor((l) => l['rollback'] === true && l.level === 50, 60_000, mark, 'rollback');
  t.is(rb['probe'], `${api}:6443`);
  t.deepEqual(rb['policies'], ['lock-api']);
  t.regex(rb.msg, /rollout probe 198\.51\.100\.20:6443 broke after the change: previous ruleset restored; refused lock-api until it changes again/);
  t.true(Number(rb['attempts']) >= 2, 'retried before rolling back');
  await agent.waitFor((l) => l.msg === 'rollback: previous ruleset restored', 30_000, mark, 'restored');
  t.deepEqual(await canonTable(lab.nodeNs, 'nodewall'), ruleset, 'the previous ruleset is back: same structure, sets, elements and rules');
  t.is(await lab.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow', 'API server reachable again');

  const st = await runCli(['status', '--config', dirs.config]);
  // (last apply may already be a later noop pass: the refusal is what stays.)
  t.regex(st.stdout, /^last error: \S+ rollout probe 198\.51\.100\.20:6443 broke after the change/m);
  t.regex(st.stdout, /^refused: {2}policy lock-api \(version [0-9a-f]{8}\) refused at \S+ by probe 198\.51\.100\.20:6443: probe 198\.51\.100\.20:6443 passed before the change and failed .*policies involved: lock-api$/m);
  const json = JSON.parse(await readFile(join(dirs.state, 'status.json'), 'utf8')) as { refused?: { policies: { policy: string }[]; by: string }[] };
  t.deepEqual(json.refused?.map((r) => [r.by, r.policies.map((p) => p.policy)]), [[`probe ${api}:6443`, ['lock-api']]]);

  // A pass with the same input (SIGHUP) keeps the refusal: nothing is re-applied that cuts the API server.
  mark = agent.lines.length;
  agent.signal('SIGHUP');
  await agent.waitFor((l) => l['trigger'] === 'sighup' && (isApplied(l) || /refused/.test(l.msg)), 30_000, mark, 'sighup pass');
  t.is(agent.find((l) => l['rollback'] === true, mark).length, 0, 'no second rollback');
  t.is(await lab.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow');
  t.notRegex(await tableText(lab), /lock-api/);

  // The refusal survives a restart (refused.json): the restarted agent does not re-apply the breaking version.
  t.is(await agent.stop(), 0);
  agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply after restart');
  t.truthy(agent.find((l) => /policy lock-api: this version was rolled back and is refused/.test(l.msg)).length, 'withheld, logged');
  t.notRegex(await tableText(lab), /lock-api/);
  t.is(await lab.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow');

  // 3. A later change of the same policy is tried again; this one breaks no probe and stays.
  mark = agent.lines.length;
  await atomicWrite(lockFile, egressDeny('lock-api', [`${api}/32`], 6444));
  await agent.waitFor((l) => /refused change of lock-api changed since: trying it again/.test(l.msg), 30_000, mark, 'retry');
  await agent.waitFor((l) => l.msg === 'rollout probes pass after the change', 30_000, mark, 'probes pass after change 3');
  t.regex(await tableText(lab), /lock-api spec\.egressDeny\[0\]/);
  t.is(await lab.probe({ direction: 'egress', peer: api, proto: 'tcp', port: 6444 }), 'deny', 'the new version is enforced');
  t.is(await lab.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow');
  const st2 = JSON.parse(await readFile(join(dirs.state, 'status.json'), 'utf8')) as { refused?: unknown };
  t.is(st2.refused, undefined, 'nothing refused any more');
  t.is(await agent.stop(), 0);
});

/** The canonical table without the audit records (timed elements the kernel adds as packets pass). */
async function withoutRecords(lab: Lab): Promise<unknown> {
  const c = await canonTable(lab.nodeNs, 'nodewall');
  return { ...c, sets: c.sets.map((x) => (x.includes('"name":"nw_audit_') ? x.replace(/"elements":\[.*\]\}$/, '"elements":[]}') : x)) };
}

test('a switch from audit to enforce that breaks a probe goes back to audit and refuses that input until it changes', async (t) => {
  const lab = await Lab.create(t, 'prbm');
  await lab.addPeerAddress(api);
  await lab.listen('peer', 'tcp', 6443);
  const rollout = { probes: [`${api}:6443`], probeSeconds: 3 };
  // logLevel debug: the pass that keeps a refused input says so at debug level.
  const dirs = await agentDirs(t, { mode: 'audit', lockoutGuard: 'off', resyncSeconds: 0, rollout, logLevel: 'debug' });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const lockFile = join(dirs.policies, 'lock.yaml');
  await writeFile(lockFile, egressDeny('lock-api', [`${api}/32`]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply (audit)');
  t.is(await lab.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow', 'audit mode lets it pass');
  const audit = await withoutRecords(lab);

  // No policy document changed: the input as a whole is refused, and the audit ruleset is back.
  let mark = agent.lines.length;
  await writeConfig(dirs, { mode: 'enforce', lockoutGuard: 'off', resyncSeconds: 0, rollout, logLevel: 'debug' });
  const rb = await agent.waitFor((l) => l['rollback'] === true && l.level === 50, 60_000, mark, 'rollback');
  t.regex(rb.msg, /refused this input until any input changes \(no policy entry changed\)/);
  await agent.waitFor((l) => l.msg === 'rollback: previous ruleset restored', 30_000, mark, 'restored');
  t.deepEqual(await withoutRecords(lab), audit, 'the audit ruleset is back');
  t.is(await lab.probeSure({ direction: 'egress', peer: api, proto: 'tcp', port: 6443 }, 'allow'), 'allow');
  const st = await runCli(['status', '--config', dirs.config]);
  t.regex(st.stdout, /^refused: {2}the current input \(no policy version explains the change; tried again when any input changes\) refused at \S+ by probe 198\.51\.100\.20:6443/m);

  // The same input again (SIGHUP): not re-applied.
  mark = agent.lines.length;
  agent.signal('SIGHUP');
  await agent.waitFor((l) => l['trigger'] === 'sighup' && l.msg === 'pass done', 30_000, mark, 'sighup pass');
  t.is(agent.find((l) => l['trigger'] === 'sighup' && /input refused earlier \(rolled back\): the previous ruleset stays/.test(l.msg), mark).length, 1);
  t.is(agent.find((l) => isApplied(l) || l['rollback'] === true, mark).length, 0, 'nothing applied, nothing rolled back');
  t.deepEqual(await withoutRecords(lab), audit);

  // Any input change: tried again (here the offending policy is gone, so enforce stays).
  mark = agent.lines.length;
  await rm(lockFile);
  await agent.waitFor((l) => l.msg === 'inputs changed since a refused change: trying again', 30_000, mark, 'retry');
  await agent.waitFor((l) => l.msg === 'rollout probes pass after the change', 30_000, mark, 'probes pass in enforce');
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 8080 }), 'deny', 'enforcing now');
  t.is(await agent.stop(), 0);
});
