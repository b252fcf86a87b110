import test from 'ava';
import { counterRows, failsafePolicyLabel, fixedPolicyLabel, RuleCounterReader, type CounterTarget } from '../../src/agent/rule-counters.js';
import { parseTableDoc, type KernelRule } from '../../src/nft/read-kernel.js';

const rule = (chain: string, comment: string, verdict: object, packets: number, bytes: number) => ({
  rule: { family: 'inet', table: 'nodewall', chain, handle: 1, comment, expr: [{ counter: { packets, bytes } }, verdict] },
});

// The shape of `nft -j -t list table` (terse: sets without elements).
const doc = {
  nftables: [
    { table: { family: 'inet', name: 'nodewall' } },
    { set: { family: 'inet', name: 'nw_owner', table: 'nodewall', type: 'inet_proto' } },
    rule('input', 'nodewall loopback', { accept: null }, 5, 500),
    rule('input', 'nodewall default-deny', { drop: null }, 3, 180),
    { rule: { family: 'inet', table: 'nodewall', chain: 'input', handle: 9, comment: 'nodewall jump', expr: [{ jump: { target: 'nw_in_allow_ssh_0123' } }] } },
    rule('nw_in_allow_ssh_0123', 'ssh spec.ingress[0]', { accept: null }, 7, 420),
    rule('nw_in_allow_ssh_0123', 'ssh spec.ingress[0]', { accept: null }, 1, 80), // the IPv6 rule of the same entry
    rule('nw_out_deny_web_4567', 'web spec.egressDeny[1]', { drop: null }, 2, 120),
    rule('output', 'nodewall default-deny', { goto: { target: 'nw_audit_out' } }, 4, 240),
    rule('nw_audit_out', 'nodewall audit unrecorded', { accept: null }, 4, 240),
  ],
};

test('counterRows: per direction, policy, rule and action; families summed; jumps and audit chains left out', (t) => {
  const rows = counterRows(parseTableDoc(doc, 'nodewall').rules);
  const key = (r: (typeof rows)[number]) => `${r.direction} ${r.policy} ${r.rule} ${r.action} ${r.packets} ${r.bytes}`;
  t.deepEqual(rows.map(key).sort(), [
    `egress ${fixedPolicyLabel} default-deny audit 4 240`,
    'egress web spec.egressDeny[1] drop 2 120',
    `ingress ${fixedPolicyLabel} default-deny drop 3 180`,
    `ingress ${fixedPolicyLabel} loopback accept 5 500`,
    'ingress ssh spec.ingress[0] accept 8 500',
  ]);
});

// Enforce mode with drop records, staged policies and a failsafe (the merged features side by side).
const enforceDoc = {
  nftables: [
    { table: { family: 'inet', name: 'nodewall' } },
    // A staged record rule: a counter and a set update, no verdict.
    { rule: { family: 'inet', table: 'nodewall', chain: 'input', handle: 4, comment: 'nodewall staged record ipv4', expr: [
      { match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv4' } }, { counter: { packets: 50, bytes: 5000 } },
      { set: { op: 'update', elem: { concat: [{ payload: { protocol: 'ip', field: 'saddr' } }] }, set: '@nw_staged_in_v4' } }] } },
    rule('input', 'nodewall failsafe tcp/22 from 192.0.2.0/24', { accept: null }, 6, 360),
    // A policy really named "failsafe" stays a policy.
    rule('nw_in_allow_failsafe_89ab', 'failsafe spec.ingress[0]', { accept: null }, 2, 100),
    rule('nw_in_deny_edge_0123', 'edge spec.ingressDeny[0]', { goto: { target: 'nw_drop_in' } }, 9, 540),
    rule('input', 'nodewall default-deny', { goto: { target: 'nw_drop_in' } }, 11, 660),
    rule('output', 'nodewall default-deny', { goto: { target: 'nw_drop_out' } }, 1, 60),
    rule('nw_drop_in', 'nodewall drop tcp', { drop: null }, 20, 1200),
    rule('nw_drop_in', 'nodewall drop unrecorded', { drop: null }, 0, 0),
  ],
};

test('counterRows with drop records, staged records and failsafes: goto the drop-record chain is a drop, staged records are nothing, failsafes are not a policy', (t) => {
  const rows = counterRows(parseTableDoc(enforceDoc, 'nodewall').rules);
  const key = (r: (typeof rows)[number]) => `${r.direction} ${r.policy} ${r.rule} ${r.action} ${r.packets}`;
  t.deepEqual(rows.map(key).sort(), [
    `egress ${fixedPolicyLabel} default-deny drop 1`,
    `ingress ${failsafePolicyLabel} tcp/22 from 192.0.2.0/24 accept 6`,
    `ingress ${fixedPolicyLabel} default-deny drop 11`,
    'ingress edge spec.ingressDeny[0] drop 9',
    'ingress failsafe spec.ingress[0] accept 2',
  ]);
  // The staged record rule counted 50 packets: none of them is a drop or an accept of any policy.
  t.false(rows.some((r) => r.packets === 50));
});

test('RuleCounterReader: one nft call in flight, cached, failures reported not thrown', async (t) => {
  let calls = 0;
  let release: (() => void) | undefined;
  let fail = false;
  const list = async (_t: CounterTarget): Promise<KernelRule[] | null> => {
    calls++;
    const call = calls;
    await new Promise<void>((r) => (release = r));
    if (fail) throw new Error('nft timed out');
    const rules = [...parseTableDoc(doc, 'nodewall').rules];
    // The background refresh (second call) answers differently, so its landing can be seen.
    return call === 2 ? rules.slice(0, 2) : rules;
  };
  const reader = new RuleCounterReader({ cacheMs: 1000, list });
  const target = { nftPath: '/usr/sbin/nft', table: 'nodewall' };
  const a = reader.read(target, 0);
  const b = reader.read(target, 0);
  t.is(calls, 1, 'a second scrape waits for the call in flight');
  release?.();
  const [ra, rb] = await Promise.all([a, b]);
  t.true(ra.ok && rb.ok && ra.rows.length === 5);
  // As of the read time itself (age 0), not the wall clock: a busy machine must not make it stale.
  await reader.read(target, reader.readAt ?? 0);
  t.is(calls, 1, 'cached');
  // Stale: answered at once with the last value, one refresh in the background.
  const stale = await reader.read(target, Date.now() + 5000);
  t.true(stale.ok);
  t.is(calls, 2, 'a refresh started');
  const stale2 = await reader.read(target, Date.now() + 5000);
  t.true(stale2.ok);
  t.is(calls, 2, 'not a second one while it runs');
  const before = reader.readAt;
  release?.();
  // Wait (bounded, generously) for the refresh to land instead of sleeping a fixed time: the cache then holds its answer.
  const deadline = Date.now() + 20_000;
  let landed = await reader.read(target, reader.readAt ?? 0);
  while (!(landed.ok && landed.rules === 2) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
    landed = await reader.read(target, reader.readAt ?? 0);
  }
  t.true(landed.ok && landed.rules === 2, 'the background refresh replaced the cached value');
  t.is(calls, 2, 'reading the fresh value made no call');
  t.true((reader.readAt ?? 0) >= (before ?? 0));
  const r2 = new RuleCounterReader({ cacheMs: 0, list });
  fail = true;
  const p = r2.read(target);
  await new Promise((r) => setImmediate(r));
  release?.();
  const rf = await p;
  t.false(rf.ok);
  t.regex(rf.ok ? '' : rf.error, /timed out/);
  // An absent table: not ok, named.
  const r3 = new RuleCounterReader({ list: async () => null });
  const ra3 = await r3.read(target);
  t.regex(ra3.ok ? '' : ra3.error, /absent/);
});
