// No packet sees a half-committed ruleset. Inside one nft transaction the kernel (6.18) makes the new rules
// visible before it publishes the elements of an interval set (rbtree, pipapo) that is new in the same
// transaction: for a moment a rule referring to such a set matches nothing. An allow rule then lets packets
// fall through to the default deny, a deny rule lets them through. Here a sender in the node namespace sends
// as fast as it can while applyModel replaces the table, cold-starts it or changes chains, and the node's
// OUTPUT hook's verdict on every packet is counted: sendto() fails with EPERM when netfilter drops a locally
// generated packet. Counts only, no timing: a packet that should pass must never get EPERM, a packet that
// should be dropped must never pass.

import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { applyModel, type ApplyOptions, type ApplyResult } from '../../src/nft/apply.js';
import type { HostModel, IdentitySet, L4Match } from '../../src/policy/model.js';
import * as b from '../helpers/model-builders.js';
import { Lab, nftPath } from './lab.js';
import { type SendCounts, type SendTarget, SendLoop, countsText, sendPackets } from './send-loop.js';

const table = 'nodewall';

/** The address the UDP sender targets: in every big set below, and their highest element. */
const target = '2001:db8:ff::1';
const udpTarget = { kind: 'udp', dst: target, port: 9 } as const satisfies SendTarget;
const mldTarget: SendTarget = { kind: 'mld', ifname: 'nw0' };

/**
 * Elements of each big set (an interval set: kind cidr). 10k shows the window on every run here (thousands of
 * packets over 20 replaces) and keeps the file under a minute: under the flood a full replace of a 50k set
 * took 1.2-2.2 s here (10k: 0.3 s). NODEWALL_E2E_WINDOW_SET_SIZE runs it bigger.
 */
const bigSetSize = Number(process.env['NODEWALL_E2E_WINDOW_SET_SIZE'] ?? 10_000);

/** `bigSetSize` - 1 single addresses of 2001:db8:fe::/64 (every other one, so none are adjacent), then `target`. */
const bigV6: readonly string[] = (() => {
  const out: string[] = [];
  for (let i = 0; i < bigSetSize - 1; i++) {
    const v = 2 * i + 2;
    out.push(`2001:db8:fe::${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}/128`);
  }
  out.push(`${target}/128`);
  return out;
})();

function bigSet(name: string): IdentitySet {
  return b.identity(name, [], bigV6, { kind: 'cidr' });
}

/** Egress enforced, default deny, one allow entry that has nothing to do with the MLD report. */
function datapathModel(icmpv6AlwaysAllow?: readonly number[]): HostModel {
  return b.model({
    sets: [b.identity('other', [], ['2001:db8:77::/64'])],
    egress: b.enforced([b.allow('other', [b.tcp(443)], 'spec.egress[0]', 'pa')]),
    ...(icmpv6AlwaysAllow === undefined ? {} : { datapath: { icmpv6AlwaysAllow } }),
  });
}

/** Egress default deny; pa allows the big set `peer` (holding the target) to the given UDP ports. */
function allowedPeerModel(ports: readonly number[], peer = 'peers'): HostModel {
  return b.model({
    sets: [bigSet(peer)],
    egress: b.enforced([b.allow(peer, [b.udp(...ports)], 'spec.egress[0]', 'pa')]),
  });
}

/** Egress: pd denies the big set `peer` (holding the target), pa allows everything else. */
function deniedPeerModel(denied: readonly L4Match[], peer = 'blocked'): HostModel {
  return b.model({
    sets: [bigSet(peer)],
    egress: b.enforced([b.deny(peer, denied, 'spec.egressDeny[0]', 'pd'), b.allow(null, [b.anyL4], 'spec.egress[0]', 'pa')]),
  });
}

/**
 * Egress default deny; pw allows all of 2001:db8::/32 except the cluster exclusion, which holds the big list.
 * The allow set's name sorts before nw_excl_*: the script declares (and the kernel publishes) it first, so a
 * moment where it matches and the exclusion is still empty is possible.
 */
function excludedPeerModel(ports: readonly number[]): HostModel {
  return b.model({
    sets: [b.identity('anywhere', [], ['2001:db8::/32'], { kind: 'cidr', exclude: 'cluster' })],
    exclusions: { cluster: { v4: [], v6: bigV6 }, cluster_non_node: { v4: [], v6: [] } },
    egress: b.enforced([b.allow('anywhere', [b.udp(...ports)], 'spec.egress[0]', 'pw')]),
  });
}

function applyOptions(lab: Lab): ApplyOptions {
  return { nftPath, table, mode: 'enforce', netns: lab.nodeNs };
}

const dropAllTable = 'nwt_dropall';

/**
 * The detection works before anything else is measured: with no table every packet passes, with a table of
 * our own that drops everything in OUTPUT every packet fails with EPERM. Leaves the namespace without tables.
 */
async function proveDetection(t: ExecutionContext, lab: Lab, to: SendTarget): Promise<void> {
  const open = await sendPackets(t, lab.nodeNs, to, 2000);
  t.log(`detection, no table: ${countsText(open)}`);
  t.is(open.eperm, 0, 'no table: nothing is dropped');
  t.true(open.passed > 0, 'no table: packets pass');
  await lab.load(`table inet ${dropAllTable} {\n\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n\t}\n}\n`);
  const closed = await sendPackets(t, lab.nodeNs, to, 2000);
  t.log(`detection, drop-all table: ${countsText(closed)}`);
  t.is(closed.passed, 0, 'drop-all table: nothing passes');
  t.true(closed.eperm > 0, 'drop-all table: drops are seen as EPERM');
  await lab.nft(['delete', 'table', 'inet', dropAllTable]);
}

/** The UDP target is on nw0's link but nobody's: a permanent neighbour entry with a MAC no one has, so
 *  sendto() never waits for neighbour discovery and the peer drops the frames at once. */
async function routeUdpTarget(lab: Lab): Promise<void> {
  await lab.exec('node', 'ip', ['-6', 'neigh', 'replace', target, 'lladdr', '02:00:00:00:00:01', 'dev', 'nw0', 'nud', 'permanent']);
}

/** Runs `applies` applies while a sender sends to `to`; returns the sender's counts over that stretch. */
async function duringApplies(
  t: ExecutionContext,
  lab: Lab,
  to: SendTarget,
  label: string,
  applies: number,
  apply: (i: number) => Promise<void>,
): Promise<SendCounts> {
  const loop = await SendLoop.start(t, lab.nodeNs, to);
  let counts: SendCounts | undefined;
  const started = performance.now();
  try {
    for (let i = 0; i < applies; i++) await apply(i);
  } finally {
    const ms = (performance.now() - started) / applies;
    counts = await loop.stop();
    t.log(`${label} x${applies} (${ms.toFixed(0)} ms each): ${countsText(counts)}`);
  }
  t.is(counts.stoppedBy, 'signal', `${label}: the sender ran through every apply`);
  return counts;
}

/** The packets that should pass: some did, none was dropped. */
function assertAllPassed(t: ExecutionContext, c: SendCounts, label: string): void {
  t.true(c.passed > 0, `${label}: packets were sent`);
  t.is(c.eperm, 0, `${label}: ${c.eperm} packets dropped by a half-committed ruleset`);
}

/** The packets that should be dropped: some were, none passed. */
function assertNonePassed(t: ExecutionContext, c: SendCounts, label: string): void {
  t.true(c.eperm > 0, `${label}: packets were sent`);
  t.is(c.passed, 0, `${label}: ${c.passed} packets let through by a half-committed ruleset`);
}

async function fullReplace(lab: Lab, model: HostModel): Promise<ApplyResult> {
  return applyModel(model, { ...applyOptions(lab), replace: true });
}

/** Deletes the table, then applies: a cold start. (No table meanwhile: those packets pass, no EPERM.) */
async function coldStart(lab: Lab, model: HostModel): Promise<ApplyResult> {
  await lab.nft(['delete', 'table', 'inet', table]);
  return applyModel(model, applyOptions(lab));
}

async function chainDelta(lab: Lab, model: HostModel, previous: ApplyResult): Promise<ApplyResult> {
  return applyModel(model, { ...applyOptions(lab), previous: previous.state });
}

/** The apply was a chain delta (one that replaced at least one chain). */
function assertChainDelta(t: ExecutionContext, r: ApplyResult): void {
  t.is(r.kind, 'delta', r.reason);
  t.true(r.chains.length > 0, 'a chain delta');
}

/** A second UDP target on the node's link, outside every big set, with a permanent neighbour entry like udpTarget's. */
async function routeOtherTarget(lab: Lab): Promise<SendTarget> {
  const other: SendTarget = { ...udpTarget, dst: '2001:db8:ff::2' };
  await lab.exec('node', 'ip', ['-6', 'neigh', 'replace', other.dst, 'lladdr', '02:00:00:00:00:01', 'dev', 'nw0', 'nud', 'permanent']);
  return other;
}

test.serial('datapath ICMPv6: an MLD report out of nw0 is never dropped while the table is replaced or cold-started', async (t) => {
  const lab = await Lab.create(t, 'cwdp');
  await proveDetection(t, lab, mldTarget);
  // Without type 143 in the datapath rule the report goes to policy and meets the default deny: a datapath
  // rule that matched nothing for a moment would show as EPERM.
  await applyModel(datapathModel(b.datapathDefaults.icmpv6AlwaysAllow.filter((n) => n !== 143)), applyOptions(lab));
  const denied = await sendPackets(t, lab.nodeNs, mldTarget, 2000);
  t.is(denied.passed, 0, 'type 143 outside the datapath rule: default deny');
  t.true(denied.eperm > 0);
  const model = datapathModel();
  t.is((await fullReplace(lab, model)).kind, 'full');

  const replaces = await duringApplies(t, lab, mldTarget, 'ICMPv6 datapath, full replace of the existing table', 40, async () => {
    t.is((await fullReplace(lab, model)).kind, 'full');
  });
  const cold = await duringApplies(t, lab, mldTarget, 'ICMPv6 datapath, cold start', 40, async () => {
    const r = await coldStart(lab, model);
    t.is(r.kind, 'full');
    t.regex(r.reason, /no nodewall table/);
  });
  assertAllPassed(t, replaces, 'full replaces');
  assertAllPassed(t, cold, 'cold starts');
});

test.serial('a peer allowed by a big interval set is never dropped: full replaces, cold starts, chain deltas, a delta bringing a new big set', async (t) => {
  const lab = await Lab.create(t, 'cwal');
  await routeUdpTarget(lab);
  await proveDetection(t, lab, udpTarget);
  let last = await applyModel(allowedPeerModel([9]), applyOptions(lab));
  // Enforcing: the same peer on another port is dropped by the default deny.
  t.is((await sendPackets(t, lab.nodeNs, { ...udpTarget, port: 10 }, 1000)).passed, 0, 'udp/10 meets the default deny');

  const replaces = await duringApplies(t, lab, udpTarget, 'allowed peer, full replace of the existing table', 20, async () => {
    last = await fullReplace(lab, allowedPeerModel([9]));
    t.is(last.kind, 'full');
  });
  const cold = await duringApplies(t, lab, udpTarget, 'allowed peer, cold start', 10, async () => {
    last = await coldStart(lab, allowedPeerModel([9]));
    t.is(last.kind, 'full');
    t.regex(last.reason, /no nodewall table/);
  });
  // pa's port list alternates: its chain is replaced, the big set stays.
  const deltas = await duringApplies(t, lab, udpTarget, 'allowed peer, chain delta (port list)', 20, async (i) => {
    last = await chainDelta(lab, allowedPeerModel(i % 2 === 0 ? [9, 7001] : [9]), last);
    assertChainDelta(t, last);
  });
  // pa's peer alternates between two big sets with the same addresses: every delta brings a new big set and
  // a rule referring to it, and drops the old rule and set, which allowed the packet until then.
  const newSets = await duringApplies(t, lab, udpTarget, 'allowed peer, chain delta bringing a new big set', 10, async (i) => {
    last = await chainDelta(lab, allowedPeerModel([9], i % 2 === 0 ? 'peers_b' : 'peers'), last);
    assertChainDelta(t, last);
  });
  assertAllPassed(t, replaces, 'full replaces');
  assertAllPassed(t, cold, 'cold starts');
  assertAllPassed(t, deltas, 'chain deltas');
  assertAllPassed(t, newSets, 'chain deltas with a new big set');
});

test.serial('a peer denied by a big interval set never passes: full replaces, chain deltas, a delta bringing a new big set', async (t) => {
  const lab = await Lab.create(t, 'cwdn');
  await routeUdpTarget(lab);
  await proveDetection(t, lab, udpTarget);
  let last = await applyModel(deniedPeerModel([b.anyL4]), applyOptions(lab));
  // Not denied: another address of the same link passes by the allow-all entry.
  const other = await routeOtherTarget(lab);
  t.is((await sendPackets(t, lab.nodeNs, other, 1000)).eperm, 0, 'a peer outside the deny set is allowed');

  const replaces = await duringApplies(t, lab, udpTarget, 'denied peer, full replace of the existing table', 20, async () => {
    last = await fullReplace(lab, deniedPeerModel([b.anyL4]));
    t.is(last.kind, 'full');
  });
  // pd's rule alternates between any protocol and udp/9: its chain is replaced, the big set stays.
  const deltas = await duringApplies(t, lab, udpTarget, 'denied peer, chain delta (deny rule)', 20, async (i) => {
    last = await chainDelta(lab, deniedPeerModel(i % 2 === 0 ? [b.udp(9)] : [b.anyL4]), last);
    assertChainDelta(t, last);
  });
  const newSets = await duringApplies(t, lab, udpTarget, 'denied peer, chain delta bringing a new big set', 10, async (i) => {
    last = await chainDelta(lab, deniedPeerModel([b.anyL4], i % 2 === 0 ? 'blocked_b' : 'blocked'), last);
    assertChainDelta(t, last);
  });
  assertNonePassed(t, replaces, 'full replaces');
  assertNonePassed(t, deltas, 'chain deltas');
  assertNonePassed(t, newSets, 'chain deltas with a new big set');
});

test.serial('a peer in a big exclusion set (ip6 daddr != @excl in an allow rule) never passes: full replaces, chain deltas', async (t) => {
  const lab = await Lab.create(t, 'cwex');
  await routeUdpTarget(lab);
  await proveDetection(t, lab, udpTarget);
  let last = await applyModel(excludedPeerModel([9]), applyOptions(lab));
  // Not excluded: another address of 2001:db8::/32 is allowed by pw.
  const other = await routeOtherTarget(lab);
  t.is((await sendPackets(t, lab.nodeNs, other, 1000)).eperm, 0, 'a peer outside the exclusion is allowed');

  const replaces = await duringApplies(t, lab, udpTarget, 'excluded peer, full replace of the existing table', 20, async () => {
    last = await fullReplace(lab, excludedPeerModel([9]));
    t.is(last.kind, 'full');
  });
  const deltas = await duringApplies(t, lab, udpTarget, 'excluded peer, chain delta (port list)', 20, async (i) => {
    last = await chainDelta(lab, excludedPeerModel(i % 2 === 0 ? [9, 7001] : [9]), last);
    assertChainDelta(t, last);
  });
  assertNonePassed(t, replaces, 'full replaces');
  assertNonePassed(t, deltas, 'chain deltas');
});
