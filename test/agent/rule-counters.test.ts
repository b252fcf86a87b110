import test from 'ava';
import { counterRows, fixedPolicyLabel, RuleCounterReader, type CounterTarget } from '../../src/agent/rule-counters.js';
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

test('RuleCounterReader: one nft call in flight, cached, failures reported not thrown', async (t) => {
  let calls = 0;
  let release: (() => void) | undefined;
  let fail = false;
  const list = async (_t: CounterTarget): Promise<KernelRule[] | null> => {
    calls++;
    await new Promise<void>((r) => (release = r));
    if (fail) throw new Error('nft timed out');
    return [...parseTableDoc(doc, 'nodewall').rules];
  };
  const reader = new RuleCounterReader({ cacheMs: 1000, list });
  const target = { nftPath: '/usr/sbin/nft', table: 'nodewall' };
  const a = reader.read(target, 0);
  const b = reader.read(target, 0);
  t.is(calls, 1, 'a second scrape waits for the call in flight');
  release?.();
  const [ra, rb] = await Promise.all([a, b]);
  t.true(ra.ok && rb.ok && ra.rows.length === 5);
  await reader.read(target);
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
  await new Promise((r) => setTimeout(r, 10));
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
