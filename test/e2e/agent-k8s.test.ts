// The real agent (`nodewall agent` in the lab's node namespace) with the
// Kubernetes API source: fake API server in this process, reached from the
// namespace through netns-api-proxy.ts; the kernel ruleset and real packets
// are checked from outside the agent.

import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { cachePath } from '../../src/inventory/sources/cache.js';
import { FakeApiServer, type JsonObject } from '../helpers/fake-apiserver.js';
import { ciliumEndpoint, node, podPeerPolicy, seedBaseCluster, sshPolicy } from '../helpers/fake-apiserver-cluster.js';
import { runCli } from '../helpers/run-cli.js';
import { AgentProcess, isApplied, kubernetesAgentDirs, writeConfig, type AgentDirs, type LogLine } from './agent-harness.js';
import { Lab } from './lab.js';

const table = 'nodewall';

interface Rig {
  readonly lab: Lab;
  readonly server: FakeApiServer;
  readonly dirs: AgentDirs;
  startAgent(): AgentProcess;
}

async function rig(t: ExecutionContext, tag: string, seed: (s: FakeApiServer) => void = () => undefined): Promise<Rig> {
  const lab = await Lab.create(t, tag);
  const server = await FakeApiServer.start();
  t.teardown(() => server.close());
  seedBaseCluster(server);
  server.apply('ciliumclusterwidenetworkpolicies', sshPolicy('ssh'));
  seed(server);
  // Only the source's own reads and its status: no periodic full re-read muddling the timings.
  const dirs = await kubernetesAgentDirs(t, lab.nodeNs, server, { resyncSeconds: 0 });
  return { lab, server, dirs, startAgent: () => AgentProcess.start(t, lab.nodeNs, ['--config', dirs.config]) };
}

const tcpFrom = (peer: string, port: number) => ({ direction: 'ingress', peer, proto: 'tcp', port }) as const;

/** `nft -j list table`, rules and set elements only, counters removed: what enforcement is made of. */
async function ruleset(lab: Lab, handles = false): Promise<string> {
  const out = (await lab.nft(['-j', ...(handles ? ['-a'] : []), 'list', 'table', 'inet', table])).stdout;
  const doc = JSON.parse(out) as { nftables: Record<string, unknown>[] };
  const keep = doc.nftables.filter((o) => 'rule' in o || 'set' in o || 'chain' in o).map(withoutDropRecordElements);
  return JSON.stringify(keep).replace(/\{"counter":\{"packets":\d+,"bytes":\d+\}\}/g, '{"counter":null}');
}

/** Drop records (render-drop-records.ts) follow the traffic, not the ruleset: their elements are left out. */
function withoutDropRecordElements(o: Record<string, unknown>): Record<string, unknown> {
  const set = o['set'] as { name?: unknown; elem?: unknown } | undefined;
  if (set === undefined || typeof set.name !== 'string' || !set.name.startsWith('nw_drop_')) return o;
  const { elem: _records, ...rest } = set;
  return { set: rest };
}

/** Rule handles in chain order (nft -a), to tell an element delta from a reload. */
async function ruleHandles(lab: Lab): Promise<number[]> {
  const doc = JSON.parse(await ruleset(lab, true)) as { rule?: { handle: number } }[];
  return doc.flatMap((o) => (o.rule === undefined ? [] : [o.rule.handle]));
}

async function status(r: Rig): Promise<{ running: boolean; status: Record<string, unknown> & { kubernetes?: Record<string, unknown> } }> {
  const res = await runCli(['status', '--state-dir', r.dirs.state, '--output', 'json']);
  return JSON.parse(res.stdout) as never;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((res) => setTimeout(res, everyMs));
  }
}

const webPolicy: JsonObject = {
  metadata: { name: 'web' },
  spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] },
};

const rulesMentionPort = (json: string, port: number): boolean => new RegExp(`"right":${port}[,}]|[\\[,]${port}[\\],]`).test(json);

test.serial('a CCNP created in the API reaches the kernel (latency logged); an invalid update keeps its last good version', async (t) => {
  const r = await rig(t, 'ik8sa');
  const agent = r.startAgent();
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'deny'), 'deny');
  t.false(rulesMentionPort(await ruleset(r.lab), 8080));

  // (a) API write -> rule visible in `nft -j list table` (polled from outside the agent).
  const t0 = performance.now();
  r.server.apply('ciliumclusterwidenetworkpolicies', webPolicy);
  // The latency is logged for the record, not asserted (no wall-clock margins in tests; timings are in `npm run bench`).
  await until('port 8080 in the kernel ruleset', async () => (rulesMentionPort(await ruleset(r.lab), 8080) ? true : undefined), 30_000, 5);
  const ms = performance.now() - t0;
  t.log(`CCNP API write -> kernel (nft -j list table): ${ms.toFixed(0)} ms`);
  const applied = await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'kubernetes', 30_000, 0, 'apply by the kubernetes trigger');
  t.is(typeof applied['durationMs'], 'number');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8081), 'deny'), 'deny');

  // (f) invalid update of `web` (port out of range): error with policy and field path, last good stays.
  const mark = agent.lines.length;
  r.server.apply('ciliumclusterwidenetworkpolicies', {
    metadata: { name: 'web' },
    spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '99999', protocol: 'TCP' }, { port: '8081', protocol: 'TCP' }] }] }] },
  });
  const err = await agent.waitFor((l: LogLine) => l.level === 50 && l['policy'] === 'web', 30_000, mark, 'error naming policy web');
  t.is(err['file'], 'k8s:ccnp/web');
  t.regex(String(err['field']), /^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]/);
  await agent.waitFor((l) => l['policy'] === 'web' && /last good version stays in force/.test(l.msg), 30_000, mark, 'kept message');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'allow'), 'allow', 'last good version of web still enforced');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8081), 'deny'), 'deny', 'the invalid version is not enforced');
  const st = await status(r);
  t.is((st.status['policies'] as { keptLastGood: number }).keptLastGood, 1);
  t.is(st.status.kubernetes?.['connected'], true);

  // Fixed in the API: the new version replaces the last good one.
  r.server.apply('ciliumclusterwidenetworkpolicies', {
    metadata: { name: 'web' },
    spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '8081', protocol: 'TCP' }] }] }] },
  });
  await until('8081 allowed', async () => ((await r.lab.probe(tcpFrom('203.0.113.7', 8081))) === 'allow' ? true : undefined), 30_000);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'deny'), 'deny');
  t.is(await agent.stop(), 0);
});

test('a node label change moves this node into and out of a policy', async (t) => {
  const r = await rig(t, 'ik8sb', (s) =>
    s.apply('ciliumclusterwidenetworkpolicies', {
      metadata: { name: 'edge-https' },
      spec: { nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{ fromCIDR: ['203.0.113.0/24'], toPorts: [{ ports: [{ port: '8443', protocol: 'TCP' }] }] }] },
    }),
  );
  const agent = r.startAgent();
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 8443), 'allow'), 'allow');

  let mark = agent.lines.length;
  r.server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'core' }));
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'kubernetes', 30_000, mark, 'apply after relabel');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 8443), 'deny'), 'deny');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 22), 'allow'), 'allow');

  mark = agent.lines.length;
  r.server.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'edge' }));
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'kubernetes', 30_000, mark, 'apply after relabel back');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.9', 8443), 'allow'), 'allow');
});

test('a pod IP change is an element delta: rule handles unchanged, packets follow', async (t) => {
  const r = await rig(t, 'ik8sc', (s) => {
    s.apply('ciliumclusterwidenetworkpolicies', podPeerPolicy('from-web'));
    s.apply('ciliumendpoints', ciliumEndpoint('default', 'web-1', '198.51.100.10', { app: 'web' }));
  });
  const agent = r.startAgent();
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.10', 9100), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.11', 9100), 'deny'), 'deny');
  const before = await ruleHandles(r.lab);
  t.true(before.length > 0);

  const mark = agent.lines.length;
  r.server.apply('ciliumendpoints', ciliumEndpoint('default', 'web-1', '198.51.100.11', { app: 'web' }));
  const a = await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'kubernetes', 30_000, mark, 'apply after pod IP change');
  t.is(a['kind'], 'delta', String(a['reason']));
  t.true((a['added'] as number) >= 1 && (a['removed'] as number) >= 1);
  t.deepEqual(await ruleHandles(r.lab), before, 'no rule replaced');
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.11', 9100), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('198.51.100.10', 9100), 'deny'), 'deny');
});

test('API gone: enforcement untouched, status says disconnected; a restart with the API down enforces from the cache', async (t) => {
  const r = await rig(t, 'ik8sd');
  const agent = r.startAgent();
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  await until('cache file', async () => (existsSync(cachePath(r.dirs.state)) ? true : undefined), 30_000);
  const up = await status(r);
  t.true(up.running);
  t.like(up.status.kubernetes, { connected: true, synced: true, stale: false });
  const before = await ruleset(r.lab);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');

  // (d) the API goes away
  const mark = agent.lines.length;
  await r.server.close();
  const down = await until('status: disconnected with an error', async () => {
    const s = await status(r);
    return s.status.kubernetes?.['connected'] === false && typeof s.status.kubernetes['lastError'] === 'string' ? s : undefined;
  }, 30_000, 250);
  t.log(`status while the API is down: ${String(down.status.kubernetes?.['lastError'])}`);
  const text = await runCli(['status', '--state-dir', r.dirs.state]);
  t.regex(text.stdout, /kubernetes: disconnected since /);
  t.regex(text.stdout, /last API error: \S+/);
  // The source's positive event after the API went away: a kind's reconnect failed too (its second "keeping the
  // last state, retrying" since then, kubernetes.ts). Bound: generous (the backoff's first delays are seconds).
  const retrying = (l: LogLine): boolean => l.msg === 'kubernetes source: API error; keeping the last state, retrying';
  await agent.waitFor((l) => retrying(l) && agent.find((x) => retrying(x) && x['kind'] === l['kind'], mark).indexOf(l) > 0, 90_000, mark, 'a failed reconnect');
  t.deepEqual(agent.find((l) => l.msg === 'ruleset applied', mark), [], 'nothing applied while the API is away');
  t.is(await ruleset(r.lab), before);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 23), 'deny'), 'deny');

  // (e) "reboot" with the API still down: agent stopped, kernel table gone, agent started again.
  t.is(await agent.stop(), 0);
  await r.lab.nft(['delete', 'table', 'inet', table]);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 23), 'allow'), 'allow', 'unfiltered without the table');
  const again = r.startAgent();
  await again.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'kubernetes', 30_000, 0, 'apply from the cache');
  t.truthy(again.find((l) => /enforcing the cached cluster state/.test(l.msg)).length);
  t.deepEqual(again.find((l) => /waiting for the first complete read/.test(l.msg)), [], 'the cache counts as a complete read');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 23), 'deny'), 'deny');
  const cached = await until('status: stale, disconnected', async () => {
    const s = await status(r);
    return s.status.kubernetes?.['stale'] === true && s.status.kubernetes['connected'] === false ? s : undefined;
  }, 30_000, 250);
  t.true(cached.running);

  // The API comes back: live again, same rules (nothing changed in the cluster).
  await r.server.listen();
  await until('status: connected, not stale', async () => {
    const s = await status(r);
    return s.status.kubernetes?.['connected'] === true && s.status.kubernetes['stale'] === false ? s : undefined;
  }, 30_000, 250);
  t.is(await ruleset(r.lab), before);
  t.is(await again.stop(), 0);
});

test('kubeconfig unreadable at start: nothing applied, error in status, retried until it can be read', async (t) => {
  const r = await rig(t, 'ik8se');
  const kubeconfig = join(r.dirs.root, 'kubeconfig');
  const later = join(r.dirs.root, 'kubeconfig.later');
  await rename(kubeconfig, later);
  const agent = r.startAgent();
  const err = await agent.waitFor((l) => l.level === 50 && /kubernetes source cannot start/.test(l.msg), 30_000, 0, 'start error');
  t.regex(String(err['error']), /kubeconfig/);
  await agent.waitFor((l) => /waiting for the first complete read/.test(l.msg), 30_000, 0, 'waiting message');
  const s = await until('status with the start error', async () => {
    const st = await status(r);
    return typeof st.status.kubernetes?.['lastError'] === 'string' ? st : undefined;
  }, 30_000, 250);
  t.like(s.status, { waitingForKubernetes: true });
  t.is(s.status.kubernetes?.['connected'], false);
  t.deepEqual(agent.find(isApplied), [], 'no half-known cluster: nothing applied');
  await t.throwsAsync(r.lab.nft(['list', 'table', 'inet', table]), undefined, 'no table in the kernel');

  await rename(later, kubeconfig);
  await agent.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'kubernetes', 30_000, 0, 'apply after the retry');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 23), 'deny'), 'deny');
  await until('status: connected, no longer waiting', async () => {
    const st = await status(r);
    return st.status.kubernetes?.['connected'] === true && st.status['waitingForKubernetes'] === undefined ? st : undefined;
  }, 30_000, 250);
});

test('a config edit of the kubernetes entry restarts the source without dropping what is in force', async (t) => {
  const r = await rig(t, 'ik8sf');
  const agent = r.startAgent();
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  const before = await ruleset(r.lab);
  const listing = (l: LogLine) => l.msg === 'kubernetes source: listing';
  t.is(agent.find(listing).length, 1);

  const mark = agent.lines.length;
  await writeConfig(r.dirs, {
    mode: 'enforce',
    sources: [{ kubernetes: { kubeconfig: join(r.dirs.root, 'kubeconfig'), needPods: false } }],
    clusterPodCIDRs: ['198.51.100.0/24', '2001:db8:100::/64'],
    resyncSeconds: 0,
  });
  await agent.waitFor(listing, 30_000, mark, 'source restarted');
  await agent.waitFor((l) => isApplied(l) && l['trigger'] === 'kubernetes', 30_000, mark, 'pass on the new source');
  t.deepEqual(agent.find((l) => /waiting for the first complete read/.test(l.msg), mark), []);
  t.is(await ruleset(r.lab), before);

  r.server.apply('ciliumclusterwidenetworkpolicies', webPolicy);
  await until('8080 allowed', async () => ((await r.lab.probe(tcpFrom('203.0.113.7', 8080))) === 'allow' ? true : undefined), 30_000);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
});

test('a CCNP deleted just before a crash stays deleted after a restart with the API down; a corrupt cache is moved aside', async (t) => {
  // `web` is in the first cache written; its deletion comes seconds later, well inside the old 30 s cache interval.
  const r = await rig(t, 'ik8sg', (s) => s.apply('ciliumclusterwidenetworkpolicies', webPolicy));
  const agent = r.startAgent();
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  await until('cache file', async () => (existsSync(cachePath(r.dirs.state)) ? true : undefined), 30_000);
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'allow'), 'allow');

  r.server.remove('ciliumclusterwidenetworkpolicies', 'web');
  await until('web gone from the kernel', async () => (rulesMentionPort(await ruleset(r.lab), 8080) ? undefined : true), 30_000, 20);
  agent.signal('SIGKILL');
  await r.server.close();
  await r.lab.nft(['delete', 'table', 'inet', table]);

  const again = r.startAgent();
  await again.waitFor((l) => l.msg === 'ruleset applied' && l['trigger'] === 'kubernetes', 30_000, 0, 'apply from the cache');
  t.truthy(again.find((l) => /enforcing the cached cluster state/.test(l.msg)).length);
  t.false(rulesMentionPort(await ruleset(r.lab), 8080), 'the deleted policy did not come back');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 8080), 'deny'), 'deny');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
  t.is(await again.stop(), 0);

  // A corrupt cache (truncated) with the API down: moved aside with a warning; nothing half-known is applied.
  const full = await readFile(cachePath(r.dirs.state), 'utf8');
  await writeFile(cachePath(r.dirs.state), full.slice(0, Math.floor(full.length / 2)));
  const third = r.startAgent();
  const warn = await third.waitFor((l) => /ignoring unusable cache/.test(l.msg), 30_000, 0, 'cache warning');
  t.is(warn['movedTo'], `${cachePath(r.dirs.state)}.corrupt`);
  await third.waitFor((l) => /waiting for the first complete read/.test(l.msg), 30_000, 0, 'waiting for the API');
  t.deepEqual(third.find(isApplied), []);
  await r.server.listen();
  await third.waitFor((l) => isApplied(l) && l['trigger'] === 'kubernetes', 30_000, 0, 'apply once the API answers');
  t.is(await r.lab.probeSure(tcpFrom('203.0.113.7', 22), 'allow'), 'allow');
});

test('a revoked token is the last error of `status`; after a stop the kubernetes line is still shown', async (t) => {
  const r = await rig(t, 'ik8sh');
  const agent = r.startAgent();
  await agent.waitFor(isApplied, 30_000, 0, 'first apply');
  r.server.setToken('revoked');
  r.server.dropWatches();
  const down = await until('status: last error is the 401', async () => {
    const res = await runCli(['status', '--state-dir', r.dirs.state]);
    return /^last error: \S+ kubernetes API: .*401/m.test(res.stdout) ? res : undefined;
  }, 30_000, 250);
  t.is(down.code, 0);
  t.regex(down.stdout, /^kubernetes: disconnected since /m);
  t.is(await agent.stop(), 0);
  const after = await runCli(['status', '--state-dir', r.dirs.state]);
  t.is(after.code, 3);
  t.regex(after.stdout, /not running \(last pid \d+, stopped cleanly\)/);
  t.regex(after.stdout, /^kubernetes: stopped with the agent; last state: disconnected since \S+, synced$/m);
  t.regex(after.stdout, /last API error: .*401/);
});
