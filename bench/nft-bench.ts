// nft benchmarks (issue 3), all inside throwaway network namespaces:
// - full apply of a 1k policy / 5k node / 100k pod cluster: render, nft -f, and
//   nodewall's whole apply against a bare `nft -f` of the same script;
// - one pod address change: element delta latency vs a full reload and vs a bare `nft -f` of the same delta;
// - one policy's rule changed: chain delta latency vs a bare `nft -f` of the same delta;
// - large CIDR lists (issue 8): one fromCIDR rule of 8k and 100k CIDRs, from YAML to the kernel, against
//   a bare `nft -f` of a table holding only one interval set with the same elements;
// - cold start with 1M set elements: one transaction vs the staged cold start (nft.maxElementsPerTransaction),
//   with a prober of tiny nft transactions alongside that shows how long the commit lock was held;
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
import { planApply } from '../src/nft/set-delta.js';
import { buildState } from '../src/pipeline.js';
import type { HostModel, IdentitySet } from '../src/policy/model.js';
import { generateCluster, type SyntheticSize } from './synthetic.js';
import { noFailsafes } from '../src/policy/failsafe.js';

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

function scale(): number {
  return Number(process.env['NODEWALL_BENCH_SCALE'] ?? '1');
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

/** The same model with the first port-matching entry's ports changed: one policy's chain differs. */
function withOnePolicyChanged(model: HostModel): HostModel {
  for (const direction of ['ingress', 'egress'] as const) {
    const dp = model[direction];
    const i = dp.entries.findIndex((e) => e.l4.some((m) => m.kind === 'ports'));
    const entry = dp.entries[i];
    if (entry === undefined) continue;
    const l4 = entry.l4.map((m) => (m.kind === 'ports' ? { ...m, ranges: [[40123, 40123] as const] } : m));
    const entries = dp.entries.map((e, j) => (j === i ? { ...e, l4 } : e));
    return { ...model, [direction]: { ...dp, entries } };
  }
  throw new Error('bench: no entry with ports to change');
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
    // From an empty namespace, 3 rounds each: bare nft -f of the very same script, and nodewall's apply
    // (render, ownership read, load; no separate nft -c step).
    const bare: number[] = [];
    const ours: number[] = [];
    for (let i = 0; i < 3; i++) {
      await fresh();
      const b0 = performance.now();
      await loadScript(nft, script, exec);
      bare.push(performance.now() - b0);
      await fresh();
      const a0 = performance.now();
      const r = await applyModel(model, base);
      ours.push(performance.now() - a0);
      if (r.kind !== 'full') throw new Error(`bench: expected a full apply, got ${r.kind}`);
    }
    // Full replace of an existing table (what a structural change costs).
    const replace: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a0 = performance.now();
      await applyModel(model, { ...base, previous: forceFull });
      replace.push(performance.now() - a0);
    }
    // One pod address change: element delta from the previous apply's state (the agent's path), against a
    // bare `nft -f` of the very same delta: after each of ours, the bare nft takes it back and forth again
    // (interleaved, so load from other processes hits both alike). nft 1.0.6 reads every set element of the
    // table for a `delete element`, so the bare figure grows with the table's element count.
    const invert = (script: string) => script.replace(/^(add|delete) element/gm, (_m, verb: string) => `${verb === 'add' ? 'delete' : 'add'} element`);
    const rounds = 15;
    let state = (await applyModel(model, { ...base, previous: forceFull })).state;
    const delta: number[] = [];
    const deltaOverhead: number[] = [];
    const bareDelta: number[] = [];
    const timed = async (into: number[], fn: () => Promise<unknown>) => {
      const b0 = performance.now();
      await fn();
      into.push(performance.now() - b0);
    };
    // The models are built before the loop: their allocations would otherwise trigger collections of the
    // bench's large heap in the middle of the timed runs.
    const moved = Array.from({ length: rounds }, (_, i) => withOnePodMoved(model, i + 1));
    for (let i = 1; i <= rounds; i++) {
      const next = moved[i - 1] ?? model;
      const d0 = performance.now();
      const r = await applyModel(next, { ...base, previous: state });
      delta.push(performance.now() - d0);
      deltaOverhead.push(r.durationsMs.total - r.durationsMs.load);
      if (r.kind !== 'delta' || r.added !== 1 || r.removed !== 1) throw new Error(`bench: expected a 1/1 element delta, got ${r.kind} ${r.added}/${r.removed}`);
      state = r.state;
      await timed(bareDelta, () => loadScript(nft, invert(r.script), exec));
      await timed(bareDelta, () => loadScript(nft, r.script, exec));
    }
    // One policy's rule changed (a port): a chain delta replacing that policy's chain, from the previous
    // apply's state, back and forth between two models; after each, a bare `nft -f` of the very same
    // scripts takes it back and forth again.
    const changed = withOnePolicyChanged(model);
    const planA = renderPlan(model, { table, mode: 'enforce' });
    const planB = renderPlan(changed, { table, mode: 'enforce' });
    const forward = planApply(planA, planB);
    const backward = planApply(planB, planA);
    if (forward.kind !== 'delta' || backward.kind !== 'delta' || forward.chains.length !== 1) {
      throw new Error(`bench: expected a one-chain delta, got ${forward.kind} ${forward.kind === 'delta' ? forward.chains.length : ''}`);
    }
    state = (await applyModel(model, { ...base, previous: forceFull })).state;
    const chainDelta: number[] = [];
    const chainDeltaOverhead: number[] = [];
    const bareChainDelta: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const toB = i % 2 === 0;
      const d0 = performance.now();
      const r = await applyModel(toB ? changed : model, { ...base, previous: state });
      chainDelta.push(performance.now() - d0);
      chainDeltaOverhead.push(r.durationsMs.total - r.durationsMs.load);
      if (r.kind !== 'delta' || r.chains.length !== 1) throw new Error(`bench: expected a one-chain delta, got ${r.kind}: ${r.reason}`);
      state = r.state;
      await timed(bareChainDelta, () => loadScript(nft, toB ? backward.script : forward.script, exec));
      await timed(bareChainDelta, () => loadScript(nft, toB ? forward.script : backward.script, exec));
    }
    await applyModel(model, { ...base, previous: forceFull });
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
      applyOverBareRatio: median(ours) / median(bare),
      fullReplaceMs: median(replace),
      deltaOnePodMs: median(delta),
      deltaOnePodMaxMs: Math.max(...delta),
      deltaBareNftMs: median(bareDelta),
      deltaOverBareRatio: median(delta) / median(bareDelta),
      // Time spent in nodewall itself (render, plan) besides the nft run: less noisy than the ratio on a busy machine.
      deltaOverheadMs: median(deltaOverhead),
      chainDeltaOnePolicyMs: median(chainDelta),
      chainDeltaBareNftMs: median(bareChainDelta),
      chainDeltaOverBareRatio: median(chainDelta) / median(bareChainDelta),
      chainDeltaOverheadMs: median(chainDeltaOverhead),
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
    failsafe: noFailsafes,
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

/** The i-th CIDR of a large list: /30s eight addresses apart, so none merge and the set stays interval-typed. */
function spacedCidr(i: number): string {
  const n = 0x14000000 + i * 8; // from 20.0.0.0
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/30`;
}

/**
 * The policy as JSON (kubectl's form): a YAML document this big must be plain block YAML or JSON to be read at all
 * (the position-tracking parser stops at 2 MiB per document: load/document-too-big).
 */
function cidrPolicyYaml(count: number): string {
  const policy = {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumClusterwideNetworkPolicy',
    metadata: { name: 'big-cidr-list' },
    spec: {
      nodeSelector: {},
      ingress: [
        { toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] },
        { fromCIDR: Array.from({ length: count }, (_, i) => spacedCidr(i)), toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] },
      ],
    },
  };
  return `${JSON.stringify(policy, null, 2)}\n`;
}

/** One fromCIDR rule of `count` CIDRs: YAML -> model -> script -> kernel, vs a bare set of as many elements. */
async function cidrList(count: number): Promise<Record<string, number>> {
  const yaml = cidrPolicyYaml(count);
  const config = parseConfig('mode: enforce\nnodeName: bench\n', 'bench.yaml');
  const m0 = performance.now();
  const policies = loadManifestText(yaml, 'big.yaml');
  const model = buildState({ config, load: { policies: policies.policies, objects: [], problems: policies.problems }, nodeName: 'bench' }).model;
  const modelMs = performance.now() - m0;
  const r0 = performance.now();
  const plan = renderPlan(model, { table, mode: 'enforce' });
  const script = plan.script;
  const renderMs = performance.now() - r0;
  const elements = [...plan.sets.values()].reduce((n, x) => n + x.elements.length, 0);
  if (elements < count) throw new Error(`bench: expected at least ${count} set elements, got ${elements}`);
  const bareScript = ['table inet bare {', '\tset s {', '\t\ttype ipv4_addr', '\t\tflags interval',
    `\t\telements = { ${Array.from({ length: count }, (_, i) => spacedCidr(i)).join(', ')} }`, '\t}', '}', ''].join('\n');
  return withNetns('cidr', async (ns) => {
    const exec = { netns: ns };
    const bare: number[] = [];
    const apply: number[] = [];
    for (let i = 0; i < 3; i++) {
      await runNft(nft, ['flush', 'ruleset'], exec);
      const b0 = performance.now();
      await loadScript(nft, bareScript, exec);
      bare.push(performance.now() - b0);
      await runNft(nft, ['flush', 'ruleset'], exec);
      const a0 = performance.now();
      const r = await applyModel(model, { nftPath: nft, table, mode: 'enforce', netns: ns });
      apply.push(performance.now() - a0);
      if (r.kind !== 'full') throw new Error(`bench: expected a full apply, got ${r.kind}`);
    }
    return {
      cidrs: count,
      rules: plan.ruleCount,
      sets: plan.sets.size,
      elements,
      scriptLines: script.split('\n').length,
      yamlToModelMs: modelMs,
      renderMs,
      applyFullMs: median(apply),
      bareSetNftFMs: median(bare),
      applyOverBareRatio: median(apply) / median(bare),
    };
  });
}

/**
 * Runs tiny nft transactions back to back in `ns` until `stop` resolves; returns their latencies. Each needs
 * the namespace's nf_tables commit lock, so the longest one shows how long another transaction held it
 * (what kube-proxy or any other nft user on the node would wait).
 */
async function lockProber(ns: string, stop: Promise<unknown>): Promise<number[]> {
  await loadScript(nft, 'table inet nwprobe {\n\tset s { type ipv4_addr; }\n}\n', { netns: ns });
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  const out: number[] = [];
  for (let i = 0; !done && i < 100_000; i++) {
    const p0 = performance.now();
    await loadScript(nft, `flush set inet nwprobe s\nadd element inet nwprobe s { 192.0.2.${i % 250} }\n`, { netns: ns });
    out.push(performance.now() - p0);
  }
  return out;
}

/**
 * 1M addresses from an empty namespace: the whole script as one bare `nft -f` transaction (the naive load; nodewall
 * stages every cold start with elements, hooks last) vs the staged cold start, with a lock prober alongside.
 */
async function coldStart(addresses: number, perTransaction: number): Promise<Record<string, number>> {
  const model = identityModel(addresses);
  return withNetns('cold', async (ns) => {
    const base = { nftPath: nft, table, mode: 'enforce', netns: ns } as const;
    const probed = async <T>(load: () => Promise<T>) => {
      await runNft(nft, ['flush', 'ruleset'], { netns: ns });
      const t0 = performance.now();
      const loading = load();
      const probes = lockProber(ns, loading);
      const r = await loading;
      const ms = performance.now() - t0;
      const p = await probes;
      return { r, ms, probeMax: Math.max(0, ...p), probeMedian: median(p), probes: p.length };
    };
    const script = renderPlan(model, { table, mode: 'enforce' }).script;
    const one = await probed(() => loadScript(nft, script, { netns: ns }));
    const staged = await probed(() => applyModel(model, { ...base, maxElementsPerTransaction: perTransaction }));
    if (staged.r.transactions < 3) throw new Error(`bench: expected a staged cold start, got ${staged.r.transactions} transactions`);
    return {
      elements: addresses,
      perTransaction,
      oneTransactionTotalMs: one.ms,
      oneTransactionMs: one.ms,
      oneTransactionProbeMaxMs: one.probeMax,
      oneTransactionProbeMedianMs: one.probeMedian,
      stagedTotalMs: staged.r.durationsMs.total,
      stagedTransactions: staged.r.transactions,
      stagedMaxTransactionMs: staged.r.maxTransactionMs,
      stagedProbeMaxMs: staged.probeMax,
      stagedProbeMedianMs: staged.probeMedian,
    };
  });
}

/** Only the cold-start figures: `npm run bench nftcold`. */
export async function runColdStartBench(): Promise<Record<string, number>> {
  return prefixed('coldStart', await coldStart(Math.max(10_000, Math.round(1_000_000 * scale())), 100_000));
}

/** Called by bench/run.ts; sizes follow NODEWALL_BENCH_SCALE like the other benchmarks. */
/** Only the CIDR-list figures: `node dist/bench/nft-bench.js cidr` (npm run bench nft runs them with the rest). */
export async function runCidrListBench(): Promise<Record<string, number>> {
  return { ...prefixed('cidrList8k', await cidrList(Math.max(1, Math.round(8000 * scale())))), ...prefixed('cidrList100k', await cidrList(Math.max(1, Math.round(100_000 * scale())))) };
}

export async function runNftBench(size: SyntheticSize = benchSize()): Promise<Record<string, number>> {
  const t0 = performance.now();
  const cluster = clusterModel(size);
  const modelBuildMs = performance.now() - t0;
  // The synthetic cluster's model of one node (its sets hold the addresses its policies select) ...
  const cp = await controlPlane(cluster);
  // ... and a model whose identity sets hold every pod address of the cluster size (hash sets).
  const pods = await controlPlane(identityModel(size.pods));
  const cidr8k = await cidrList(Math.max(1, Math.round(8000 * scale())));
  const cidr100k = await cidrList(Math.max(1, Math.round(100_000 * scale())));
  const pp = await packetPath();
  const cold = await coldStart(Math.max(10_000, Math.round(1_000_000 * scale())), 100_000);
  return {
    policies: size.policies, nodes: size.nodes, pods: size.pods, modelBuildMs, ...cp, ...prefixed('allPods', pods),
    ...prefixed('cidrList8k', cidr8k), ...prefixed('cidrList100k', cidr100k), ...pp, ...prefixed('coldStart', cold),
  };
}
