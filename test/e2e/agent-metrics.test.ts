// Issue 11, metrics and instant drift repair, with the real agent in a lab
// namespace and real packets:
// - GET /metrics with a real HTTP client (Node's fetch, run inside the node
//   namespace) returns the Prometheus text format (strict parser + promtool),
//   and the rule counters move when packets are sent (accepted and dropped);
// - `nft flush ruleset` is repaired by the nft monitor (the poll is set to an
//   hour), the agent's own applies trigger no repair, a killed monitor child
//   is restarted, and a metrics address that cannot be bound is logged while
//   enforcement goes on.

import test from 'ava';
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab, nftPath } from './lab.js';
import { cachedCount, countSetElements } from '../../src/agent/rule-counters.js';
import { AgentProcess, agentDirs, atomicWrite, isApplied, policyYaml, type LogLine } from './agent-harness.js';
import { parseExposition, sampleValue } from '../helpers/prom-text.js';
import { waitMetrics } from './scrape-metrics.js';
import { readStatus, type AgentStatus } from '../../src/agent/status-file.js';
import { formatStatus } from '../../src/cli/commands/status.js';

/** The agent's status file once `pred` holds (bounded). */
async function waitStatus(stateDir: string, pred: (s: AgentStatus) => boolean, what: string): Promise<AgentStatus> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  for (;;) {
    const s = await readStatus(stateDir).catch(() => undefined);
    last = s;
    if (s !== undefined && !('noConfig' in s) && pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`timeout waiting for the status file: ${what}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const peer = '203.0.113.5';

/** GET the URL from inside the node namespace with Node's fetch; status, content type and body. */
async function scrape(lab: Lab, url: string): Promise<{ status: number; type: string; body: string }> {
  const script = `const r = await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(15000) });
process.stdout.write(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), body: await r.text() }));`;
  const out = await lab.exec('node', process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(out) as { status: number; type: string; body: string };
}

function promtool(args: readonly string[], stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', [...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      resolve({ code, out: `${stdout}${stderr}${err !== null && code === -1 ? err.message : ''}` });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

const ssh = { direction: 'ingress', policy: 'ssh', rule: 'spec.ingress[0]', action: 'accept' };
const defaultDeny = { direction: 'ingress', policy: '(nodewall)', rule: 'default-deny', action: 'drop' };

test('/metrics serves the Prometheus text format and rule counters move with real packets', async (t) => {
  const lab = await Lab.create(t, 'agt-met');
  const dirs = await agentDirs(t, { mode: 'enforce', metrics: { listen: '127.0.0.1:9964' } });
  await writeFile(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  await agent.waitFor((l) => l.msg === 'metrics: serving /metrics', 30_000, 0, 'metrics server');
  const st = await waitStatus(dirs.state, (s) => s.metrics?.state === 'listening', 'metrics listening in the status file');
  t.like(st.metrics, { state: 'listening', address: '127.0.0.1:9964' });

  const raw = await scrape(lab, 'http://127.0.0.1:9964/metrics');
  t.is(raw.status, 200);
  t.regex(raw.type, /^text\/plain; version=0\.0\.4/);
  const checked = await promtool(['check', 'metrics'], raw.body);
  t.is(checked.code, 0, `promtool check metrics: ${checked.out}`);
  const first = parseExposition(raw.body);
  for (const [name, f] of first) {
    if (!name.startsWith('nodewall_')) continue;
    t.truthy(f.help, `${name} has HELP`);
  }
  t.is(sampleValue(first, 'nodewall_policies', { state: 'selected' }), 1);
  t.true((sampleValue(first, 'nodewall_rules') ?? 0) > 0);
  t.true((sampleValue(first, 'nodewall_last_successful_apply_timestamp_seconds') ?? 0) > 1.7e9);
  t.is(sampleValue(first, 'nodewall_apply_duration_seconds_count', { kind: 'full' }), 1);
  t.is(sampleValue(first, 'nodewall_drop_record_entries'), 0);
  const before = { ok: sampleValue(first, 'nodewall_rule_packets_total', ssh) ?? 0, deny: sampleValue(first, 'nodewall_rule_packets_total', defaultDeny) ?? 0 };
  t.is(typeof sampleValue(first, 'nodewall_rule_packets_total', ssh), 'number', 'a series per policy rule');

  // Real packets: an allowed connection (SYN hits the policy rule) and a denied one (default deny).
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
  const after = await waitMetrics(lab, (f) => (sampleValue(f, 'nodewall_rule_packets_total', ssh) ?? 0) > before.ok
    && (sampleValue(f, 'nodewall_rule_packets_total', defaultDeny) ?? 0) > before.deny, 'counters after packets');
  t.true((sampleValue(after, 'nodewall_rule_bytes_total', ssh) ?? 0) > 0);
  t.true((sampleValue(after, 'nodewall_rule_bytes_total', defaultDeny) ?? 0) > 0);

  // An invalid edit: counted as an input error, the policy is kept at its last good version.
  const mark = agent.lines.length;
  await atomicWrite(join(dirs.policies, 'ssh.yaml'), policyYaml('ssh', [22, 99999]));
  await agent.waitFor((l) => /last good version stays in force/.test(l.msg), 30_000, mark, 'kept message');
  const kept = await waitMetrics(lab, (f) => sampleValue(f, 'nodewall_policies', { state: 'kept_last_good' }) === 1, 'kept_last_good');
  t.true((sampleValue(kept, 'nodewall_input_errors_total') ?? 0) >= 1);

  // Other paths and methods.
  t.is((await scrape(lab, 'http://127.0.0.1:9964/nope')).status, 404);
  t.is(await agent.stop(), 0);
});

/** PIDs of the agent's `nft -j monitor KIND` children. */
async function monitorChildren(agentPid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== agentPid) continue;
      const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
      const i = argv.indexOf('monitor');
      if (i > 0 && argv[i + 1] !== undefined) out.set(argv[i + 1] ?? '', Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function waitChildren(agentPid: number, pred: (m: Map<string, number>) => boolean, what: string): Promise<Map<string, number>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = await monitorChildren(agentPid);
    if (pred(m)) return m;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}: ${JSON.stringify([...m])}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const repairedByMonitor = (l: LogLine): boolean => l.msg === 'ruleset applied' && l['trigger'] === 'drift' && l['detectedBy'] === 'monitor';
const driftSeen = (l: LogLine): boolean => /table missing|table changed outside nodewall/.test(l.msg);

test('nft monitor repairs a flushed ruleset at once; own applies trigger no repair; a killed child is restarted', async (t) => {
  const lab = await Lab.create(t, 'agt-mon');
  // The poll would take an hour: whatever repairs the table below is the monitor. The metrics address is not on
  // this host: the bind fails, is logged, and enforcement goes on.
  const dirs = await agentDirs(t, { mode: 'enforce', driftCheckSeconds: 3600, metrics: { listen: '198.51.100.77:9964' } });
  const file = join(dirs.policies, 'ssh.yaml');
  await writeFile(file, policyYaml('ssh', [22]));
  const agent = AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]);
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  const bind = await agent.waitFor((l) => /metrics: cannot listen on 198\.51\.100\.77:9964/.test(l.msg), 30_000, 0, 'bind failure logged');
  t.is(bind.level, 50);
  const kids = await waitChildren(agent.pid, (m) => m.size === 4, 'four monitor children');
  t.deepEqual([...kids.keys()].sort(), ['chains', 'rules', 'sets', 'tables']);
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }), 'deny');
  // `nodewall status` says so: the endpoint's bind error, and the monitor children.
  const st = await waitStatus(dirs.state, (s) => s.metrics?.state === 'error' && s.driftMonitor?.children === 4, 'bind error and 4 children');
  t.like(st.metrics, { state: 'error', listen: '198.51.100.77:9964' });
  t.deepEqual(st.driftMonitor, { children: 4, expected: 4, restarts: 0 });
  t.regex(formatStatus(st, true), /^metrics: {2}NOT serving: cannot listen on 198\.51\.100\.77:9964 since .*EADDRNOTAVAIL/m);

  // 1. The agent's own applies (a changed policy, a new one) are not drift: no repair follows them.
  let mark = agent.lines.length;
  await atomicWrite(file, policyYaml('ssh', [22, 8080]));
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'watch', 30_000, mark, 'apply after change');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }, 'allow'), 'allow');
  const beforeWeb = agent.lines.length;
  await writeFile(join(dirs.policies, 'web.yaml'), policyYaml('web', [9090]));
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'watch', 30_000, beforeWeb, 'apply of a new policy');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 9090 }, 'allow'), 'allow');

  // 2. Someone flushes the whole ruleset: the monitor sees it and the table is back.
  const ownApplies = agent.lines.length;
  await lab.nft(['flush', 'ruleset']);
  await agent.waitFor(repairedByMonitor, 30_000, ownApplies, 'repair by the monitor');
  t.deepEqual(agent.find(driftSeen, mark).slice(1), [], 'exactly one drift: the flush (own applies are not drift)');
  t.is(agent.find(driftSeen, mark).length, 1);
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 7070 }), 'deny');
  t.is(await lab.probeSure({ direction: 'ingress', peer, proto: 'tcp', port: 8080 }, 'allow'), 'allow');

  // 2b. A `systemctl reload nftables` style load: one transaction that flushes everything and loads another
  //     table. Repaired too, and the other table stays as loaded.
  mark = agent.lines.length;
  await lab.load('flush ruleset\ntable inet filter {\n  chain input { type filter hook input priority 10; policy accept; }\n}\n');
  await agent.waitFor(repairedByMonitor, 30_000, mark, 'repair after an nftables.conf reload');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 7070 }), 'deny');
  t.regex((await lab.nft(['list', 'table', 'inet', 'filter'])).stdout, /chain input \{\s+type filter hook input priority/);
  await lab.nft(['delete', 'table', 'inet', 'filter']);

  // 3. A stray `nft delete rule` (the default deny of input) is an edit: restored too.
  mark = agent.lines.length;
  const listing = (await lab.nft(['-a', 'list', 'chain', 'inet', 'nodewall', 'input'])).stdout;
  const handle = /comment "nodewall default-deny" # handle (\d+)/.exec(listing)?.[1];
  t.truthy(handle, listing);
  await lab.nft(['delete', 'rule', 'inet', 'nodewall', 'input', 'handle', handle ?? '0']);
  const changed = await agent.waitFor((l) => /table changed outside nodewall/.test(l.msg), 30_000, mark, 'edit detected');
  t.is(changed['detectedBy'], 'monitor');
  await agent.waitFor(repairedByMonitor, 30_000, mark, 'repair of the edit');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 7070 }), 'deny');

  // 4. Another owner's table is left alone: adding and deleting it is no drift of ours.
  mark = agent.lines.length;
  await lab.nft(['add', 'table', 'inet', 'firewalld']);
  await lab.nft(['add', 'chain', 'inet', 'firewalld', 'x']);
  await lab.nft(['delete', 'table', 'inet', 'firewalld']);
  // A marker event after them: once this drift is repaired, the foreign events were long processed.
  await lab.nft(['flush', 'ruleset']);
  await agent.waitFor(repairedByMonitor, 30_000, mark, 'repair after the foreign table events');
  t.is(agent.find(driftSeen, mark).length, 1, 'only our own table\'s deletion counted');

  // 5. Kill the `tables` child: restarted (new pid), logged; a flush is still repaired by the monitor.
  mark = agent.lines.length;
  const old = kids.get('tables') ?? -1;
  process.kill(old, 'SIGKILL');
  await agent.waitFor((l) => /drift monitor: nft monitor child ended; restarting/.test(l.msg) && l['kind'] === 'tables', 30_000, mark, 'restart logged');
  const again = await waitChildren(agent.pid, (m) => m.size === 4 && m.get('tables') !== old, 'restarted tables child');
  t.not(again.get('tables'), old);
  const restarted = await waitStatus(dirs.state, (s) => (s.driftMonitor?.restarts ?? 0) >= 1 && s.driftMonitor?.children === 4, 'restart in the status file');
  t.regex(formatStatus(restarted, true), /^drift: {4}4\/4 nft monitor children running, \d+ restart\(s\)$/m);
  mark = agent.lines.length;
  await lab.nft(['flush', 'ruleset']);
  await agent.waitFor(repairedByMonitor, 30_000, mark, 'repair after the restart');
  t.is(await lab.probe({ direction: 'ingress', peer, proto: 'tcp', port: 7070 }), 'deny');

  // Enforcement went on although /metrics could not be served.
  t.is(await agent.stop(), 0);
  t.deepEqual(await monitorChildren(agent.pid), new Map(), 'children gone with the agent');
});

test('countSetElements: elements of named sets of our table, 0 for absent sets and tables (drop-record gauge source)', async (t) => {
  const lab = await Lab.create(t, 'agt-cnt');
  const opts = { netns: lab.nodeNs };
  t.is(await countSetElements(nftPath, 'nodewall', ['nw_drops_v4'], opts), 0, 'no table');
  await lab.load([
    'table inet nodewall {',
    '  set nw_drops_v4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 1h; elements = { 192.0.2.7, 192.0.2.8, 198.51.100.1 }; }',
    '  set nw_drops_v6 { type ipv6_addr; size 65536; flags dynamic,timeout; timeout 1h; elements = { 2001:db8::7 }; }',
    '}', '',
  ].join('\n'));
  t.is(await countSetElements(nftPath, 'nodewall', ['nw_drops_v4', 'nw_drops_v6', 'nw_absent'], opts), 4);
  const cached = cachedCount(() => countSetElements(nftPath, 'nodewall', ['nw_drops_v4'], opts), 60_000);
  t.is(await cached(), 3);
  await lab.nft(['add', 'element', 'inet', 'nodewall', 'nw_drops_v4', '{ 203.0.113.9 }']);
  t.is(await cached(), 3, 'cached');
  t.is(await countSetElements(nftPath, 'nodewall', ['nw_drops_v4'], opts), 4);
});
