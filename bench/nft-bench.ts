// nft benchmarks (issue 3), all inside throwaway network namespaces:
// - full apply of a 1k policy / 5k node / 100k pod cluster: render, nft -f, and
//   nodewall's whole apply against a bare `nft -f` of the same script;
// - one pod address change: element delta latency vs a full reload;
// - packet path: per-packet cost of a default-deny input chain whose identity
//   sets hold 10 vs 10k addresses, against a naive ruleset with one rule per address.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { loadManifestText } from '../src/api/load-manifests.js';
import { parseConfig } from '../src/inventory/config.js';
import { applyModel } from '../src/nft/apply.js';
import { loadScript, runNft } from '../src/nft/nft-exec.js';
import { renderPlan, renderRuleset } from '../src/nft/render.js';
import { buildState } from '../src/pipeline.js';
import type { HostModel, IdentitySet } from '../src/policy/model.js';
import { generateCluster, type SyntheticSize } from './synthetic.js';

const nft = '/usr/sbin/nft';
const table = 'nodewall';

function sh(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`, { cause: err })),
    );
  });
}

async function withNetns<T>(tag: string, fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = `nwt-nft-bench-${tag}-${randomBytes(3).toString('hex')}`;
  await sh('ip', ['netns', 'add', ns]);
  try {
    return await fn(ns);
  } finally {
    await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function benchSize(): SyntheticSize {
  const scale = Number(process.env['NODEWALL_BENCH_SCALE'] ?? '1');
  return { policies: Math.round(1000 * scale), nodes: Math.round(5000 * scale), pods: Math.round(100000 * scale) };
}

function clusterModel(size: SyntheticSize): HostModel {
  const cluster = generateCluster(size);
  const objects = loadManifestText(cluster.clusterYaml, 'cluster.yaml');
  const policies = loadManifestText(cluster.policiesYaml, 'policies.yaml');
  const config = parseConfig('mode: enforce\nclusterPodCIDRs: [100.65.0.0/16, "2001:db8:1::/48"]\n', 'bench.yaml');
  const load = { policies: policies.policies, objects: objects.objects, problems: [...objects.problems, ...policies.problems] };
  return buildState({ config, load, nodeName: cluster.nodeName }).model;
}

/** The same model with one address of its largest hash-typed identity replaced (a pod restarted elsewhere). */
function withOnePodMoved(model: HostModel, round: number): HostModel {
  const candidates = Object.values(model.sets).filter((s) => s.v4.length > 0 && s.v4.every((e) => e.endsWith('/32')));
  const target = candidates.sort((a, b) => b.v4.length - a.v4.length)[0];
  if (target === undefined) throw new Error('bench: no identity with exact addresses to change');
  const moved: IdentitySet = { ...target, v4: [...target.v4.slice(1), `100.127.${(round >> 8) & 255}.${round & 255}/32`] };
  return { ...model, sets: { ...model.sets, [target.name]: moved } };
}

/** Full apply vs bare nft -f, full replace, one-address deltas, for one model, in a fresh namespace (also used by the scale bench). */
export async function controlPlane(model: HostModel): Promise<Record<string, number>> {
  const r0 = performance.now();
  const plan = renderPlan(model, { table, mode: 'enforce' });
  const script = plan.script;
  const renderMs = performance.now() - r0;
  const elements = [...plan.sets.values()].reduce((n, s) => n + s.elements.length, 0);

  return withNetns('cp', async (ns) => {
    const exec = { netns: ns };
    const base = { nftPath: nft, table, mode: 'enforce', netns: ns } as const;
    const forceFull = { structureHash: null, sets: new Map() };
    const fresh = async () => runNft(nft, ['delete', 'table', 'inet', table], exec).catch(() => undefined);
    // From an empty namespace, 3 rounds each: bare nft -f of the very same script, nodewall with its
    // structure check (default), and nodewall without a check.
    const bare: number[] = [];
    const ours: number[] = [];
    const oursNoCheck: number[] = [];
    const oursCheck: number[] = [];
    for (let i = 0; i < 3; i++) {
      await fresh();
      const b0 = performance.now();
      await loadScript(nft, script, exec);
      bare.push(performance.now() - b0);
      await fresh();
      const a0 = performance.now();
      const r = await applyModel(model, base);
      ours.push(performance.now() - a0);
      oursCheck.push(r.durationsMs.check);
      if (r.kind !== 'full') throw new Error(`bench: expected a full apply, got ${r.kind}`);
      await fresh();
      const n0 = performance.now();
      await applyModel(model, { ...base, check: 'none' });
      oursNoCheck.push(performance.now() - n0);
    }
    // Full replace of an existing table (what a structural change costs).
    const replace: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a0 = performance.now();
      await applyModel(model, { ...base, previous: forceFull });
      replace.push(performance.now() - a0);
    }
    // One pod address change: element delta from the previous apply's state (the agent's path) ...
    let state = (await applyModel(model, { ...base, previous: forceFull })).state;
    const delta: number[] = [];
    let lastDelta = '';
    for (let i = 1; i <= 9; i++) {
      const next = withOnePodMoved(model, i);
      const d0 = performance.now();
      const r = await applyModel(next, { ...base, previous: state });
      delta.push(performance.now() - d0);
      if (r.kind !== 'delta' || r.added !== 1 || r.removed !== 1) throw new Error(`bench: expected a 1/1 element delta, got ${r.kind} ${r.added}/${r.removed}`);
      state = r.state;
      lastDelta = r.script;
    }
    // The same delta sent by a bare `nft -f` (back and forth): the floor nft itself imposes. nft 1.0.6 reads
    // every set element of the table for a `delete element`, so this grows with the table's element count.
    const inverse = lastDelta.replace(/^(add|delete) element/gm, (_m, verb: string) => `${verb === 'add' ? 'delete' : 'add'} element`);
    const bareDelta: number[] = [];
    for (let i = 0; i < 6; i++) {
      const b0 = performance.now();
      await loadScript(nft, i % 2 === 0 ? inverse : lastDelta, exec);
      bareDelta.push(performance.now() - b0);
    }
    // ... and from the kernel's read-back (the CLI's path: no previous state).
    const d0 = performance.now();
    const cli = await applyModel(withOnePodMoved(model, 200), base);
    const deltaFromKernel = performance.now() - d0;
    if (cli.kind !== 'delta') throw new Error(`bench: expected a delta from the kernel state, got ${cli.kind}`);
    // Starting nft for a command that needs no cache: the floor of any update.
    const floor: number[] = [];
    for (let i = 0; i < 5; i++) {
      const f0 = performance.now();
      await loadScript(nft, `flush set inet ${table} ${plan.markerSet}\n`, exec);
      floor.push(performance.now() - f0);
    }
    return {
      rules: plan.ruleCount,
      sets: plan.sets.size,
      elements,
      scriptMB: script.length / 1e6,
      renderMs,
      bareNftFMs: median(bare),
      applyFullMs: median(ours),
      applyFullCheckMs: median(oursCheck),
      applyOverBareRatio: median(ours) / median(bare),
      applyNoCheckOverBareRatio: median(oursNoCheck) / median(bare),
      fullReplaceMs: median(replace),
      deltaOnePodMs: median(delta),
      deltaOnePodMaxMs: Math.max(...delta),
      deltaBareNftMs: median(bareDelta),
      deltaFromKernelReadMs: deltaFromKernel,
      nftStartMs: median(floor),
    };
  });
}

function prefixed(prefix: string, r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [`${prefix}${k[0]?.toUpperCase() ?? ''}${k.slice(1)}`, v]));
}

const sender = `
import socket, sys, time
src, dst, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
msg = b'x' * 32
for _ in range(200):
    s.sendto(msg, (dst, 9))
time.sleep(0.2)
best = None
for _ in range(3):
    n = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(100):
            s.sendto(msg, (dst, 9))
        n += 100
        t = time.perf_counter() - t0
        if t >= seconds:
            break
    us = t / n * 1e6
    best = us if best is None else min(best, us)
print(best)
`;

function identityModel(addresses: number): HostModel {
  const perSet = Math.max(1, Math.floor(addresses / 10));
  const sets: Record<string, IdentitySet> = {};
  const entries = [];
  for (let i = 0; i < 10; i++) {
    const v4: string[] = [];
    for (let j = 0; j < perSet; j++) {
      const n = i * perSet + j;
      v4.push(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32`);
    }
    const name = `app_${i}`;
    sets[name] = { name, label: `bench:${name}`, kind: 'endpoints', v4, v6: [] };
    entries.push({ action: 'allow' as const, policy: `bench-${i}`, rule: 'spec.ingress[0]', peer: name, l4: [{ kind: 'ports' as const, proto: 'tcp' as const, ranges: [[1000 + i, 1000 + i] as const] }] });
  }
  return {
    node: 'bench',
    enforcementMode: 'default',
    runMode: 'enforce',
    selectedPolicies: entries.map((e) => e.policy),
    ingress: { enforced: true, defaultDeny: true, entries, reason: 'bench' },
    egress: { enforced: false, defaultDeny: false, entries: [], reason: 'bench' },
    sets,
    exclusions: { cluster: { v4: [], v6: [] }, cluster_non_node: { v4: [], v6: [] } },
    hostAddresses: [],
    datapath: { allowICMPFragNeeded: true, icmpv6AlwaysAllow: [1, 2, 3, 4, 133, 134, 135, 136], icmpv6IngressPolicyTypes: [128, 129], extendedProtocols: false },
  };
}

function naiveScript(addresses: number): string {
  const lines = ['table inet naive {', '\tchain input {', '\t\ttype filter hook input priority filter; policy accept;', '\t\tiif "lo" accept', '\t\tct direction reply accept'];
  for (let n = 0; n < addresses; n++) lines.push(`\t\tip saddr 10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255} tcp dport ${1000 + (n % 10)} counter accept`);
  lines.push('\t\tcounter drop', '\t}', '}', '');
  return lines.join('\n');
}

async function packetPath(): Promise<Record<string, number>> {
  const tag = randomBytes(3).toString('hex');
  const node = `nwt-nft-bench-n-${tag}`;
  const peer = `nwt-nft-bench-p-${tag}`;
  await sh('ip', ['netns', 'add', node]);
  await sh('ip', ['netns', 'add', peer]);
  try {
    await sh('ip', ['link', 'add', 'nw0', 'netns', node, 'type', 'veth', 'peer', 'name', 'nw1', 'netns', peer]);
    for (const [ns, dev, addr] of [[node, 'nw0', '192.0.2.1/24'], [peer, 'nw1', '192.0.2.77/24']] as const) {
      await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      await sh('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev]);
    }
    const send = async () => Number((await sh('ip', ['netns', 'exec', peer, 'python3', '-c', sender, '192.0.2.77', '192.0.2.1', '0.4'])).trim());
    const load = (script: string) => loadScript(nft, script, { netns: node });
    const clear = () => sh('ip', ['netns', 'exec', node, nft, 'flush', 'ruleset']);
    const out: Record<string, number> = {};
    out['noRulesetUsPerPacket'] = await send();
    await load(renderRuleset(identityModel(10), { table, mode: 'enforce' }));
    out['sets10AddressesUsPerPacket'] = await send();
    await load(renderRuleset(identityModel(10_000), { table, mode: 'enforce' }));
    out['sets10kAddressesUsPerPacket'] = await send();
    await load(renderRuleset(identityModel(100_000), { table, mode: 'enforce' }));
    out['sets100kAddressesUsPerPacket'] = await send();
    await clear();
    await load(naiveScript(10));
    out['naive10RulesUsPerPacket'] = await send();
    await clear();
    await load(naiveScript(10_000));
    out['naive10kRulesUsPerPacket'] = await send();
    return out;
  } finally {
    await sh('ip', ['netns', 'del', node]).catch(() => undefined);
    await sh('ip', ['netns', 'del', peer]).catch(() => undefined);
  }
}

/** Called by bench/run.ts; sizes follow NODEWALL_BENCH_SCALE like the other benchmarks. */
export async function runNftBench(size: SyntheticSize = benchSize()): Promise<Record<string, number>> {
  const t0 = performance.now();
  const cluster = clusterModel(size);
  const modelBuildMs = performance.now() - t0;
  // The synthetic cluster's model of one node (its sets hold the addresses its policies select) ...
  const cp = await controlPlane(cluster);
  // ... and a model whose identity sets hold every pod address of the cluster size (hash sets).
  const pods = await controlPlane(identityModel(size.pods));
  const pp = await packetPath();
  return { policies: size.policies, nodes: size.nodes, pods: size.pods, modelBuildMs, ...cp, ...prefixed('allPods', pods), ...pp };
}
