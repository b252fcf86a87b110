import test from 'ava';
import { renderPlan, renderRuleset } from '../../src/nft/render.js';
import { l4Parts, numberList } from '../../src/nft/render-rules.js';
import { RenderError, commentText, hashSetElements, identitySetKind, kernelDelta, maxHashSetAddresses } from '../../src/nft/render-sets.js';
import * as b from '../helpers/model-builders.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' });
const pods = b.identity('pods', ['198.51.100.5/32', '198.51.100.6/32'], ['2001:db8:100::5/128'], { kind: 'endpoints' });
const exclusions = {
  cluster: { v4: ['192.0.2.0/24', '198.51.100.0/24'], v6: ['2001:db8:100::/64'] },
  cluster_non_node: { v4: ['198.51.100.0/24'], v6: [] },
};

function demo(podV4 = pods.v4) {
  return b.model({
    sets: [world, { ...pods, v4: podV4 }],
    exclusions,
    ingress: b.enforced([
      b.allow('world', [b.tcp(22, [8000, 8080]), b.udp(53)], 'spec.ingress[0]'),
      b.deny('pods', [b.anyL4], 'spec.ingressDeny[0]'),
      b.allow(null, [b.icmp('ipv4', 8), b.icmp('ipv6', 128)], 'spec.ingress[1]'),
    ]),
    egress: b.enforced([b.allow('pods', [b.udp(5353)], 'spec.egress[0]')], false),
  });
}

function rawChain(script: string, name: string): string[] {
  const start = script.indexOf(`\tchain ${name} {`);
  if (start < 0) return [];
  const end = script.indexOf('\n\t}', start);
  const lines = script.slice(start, end).split('\n').slice(1).map((l) => l.trim());
  return lines[0]?.startsWith('type filter hook') === true ? lines.slice(1) : lines;
}

/** The rules a packet walks in a chain: each `jump` to a policy chain replaced by that chain's rules. */
function chain(script: string, name: string): string[] {
  return rawChain(script, name).flatMap((l) => {
    const target = /^jump (\S+) /.exec(l)?.[1];
    return target === undefined ? [l] : rawChain(script, target);
  });
}

test('the script creates or replaces only its own table in one file', (t) => {
  const s = renderRuleset(demo(), { table: 'nodewall', mode: 'enforce' });
  const lines = s.split('\n').filter((l) => !l.startsWith('#'));
  t.deepEqual(lines.slice(0, 3), ['table inet nodewall {}', 'delete table inet nodewall', 'table inet nodewall {']);
  t.notRegex(s, /flush ruleset/);
  t.is((s.match(/^table /gm) ?? []).length, 2);
});

test('same model, same text; element changes keep the structure hash, rule changes do not', (t) => {
  const a = renderPlan(demo(), { table: 'nodewall', mode: 'enforce' });
  const a2 = renderPlan(demo(), { table: 'nodewall', mode: 'enforce' });
  t.is(a.script, a2.script);
  const moved = renderPlan(demo(['198.51.100.7/32']), { table: 'nodewall', mode: 'enforce' });
  t.not(moved.script, a.script);
  t.is(moved.structureHash, a.structureHash);
  const other = renderPlan(b.model({ sets: [world], exclusions, ingress: b.enforced([b.allow('world', [b.tcp(23)])]) }), { table: 'nodewall', mode: 'enforce' });
  t.not(other.structureHash, a.structureHash);
  const audit = renderPlan(demo(), { table: 'nodewall', mode: 'audit' });
  t.not(audit.structureHash, a.structureHash);
  t.regex(a.script, new RegExp(`set nw_structure_${a.structureHash} \\{`));
});

test('base chains hook input and output only, accept by default, in the documented order', (t) => {
  const s = renderRuleset(demo(), { table: 'nodewall', mode: 'enforce' });
  t.deepEqual([...s.matchAll(/type filter hook (\w+) priority filter; policy accept;/g)].map((m) => m[1]), ['input', 'output']);
  const input = chain(s, 'input');
  const comments = input.map((l) => /comment "([^"]*)"$/.exec(l)?.[1]);
  t.deepEqual(comments, [
    'nodewall loopback',
    'nodewall conntrack reply',
    'nodewall conntrack related',
    'nodewall datapath icmp frag-needed',
    'nodewall datapath icmpv6',
    'nodewall datapath icmpv6 drop',
    'nodewall datapath extended protocols',
    'p1 spec.ingressDeny[0]',
    'p1 spec.ingressDeny[0]',
    // tcp 22 and the tcp range 8000-8080 are separate rules (numberList), udp 53 a third, each in both families.
    'p1 spec.ingress[0]',
    'p1 spec.ingress[0]',
    'p1 spec.ingress[0]',
    'p1 spec.ingress[0]',
    'p1 spec.ingress[0]',
    'p1 spec.ingress[0]',
    'p1 spec.ingress[1]',
    'p1 spec.ingress[1]',
    'nodewall default-deny',
  ]);
  t.regex(input[0] ?? '', /^iif "lo" counter accept/);
  t.regex(input[1] ?? '', /^ct direction reply counter accept/);
  t.regex(input[2] ?? '', /^ct state related counter accept/);
  t.regex(input[5] ?? '', /^icmpv6 type != { 128, 129 } counter drop/);
  t.regex(input.at(-1) ?? '', /^counter drop comment "nodewall default-deny"$/);
  for (const l of [...input, ...chain(s, 'output')]) t.regex(l, /(^| )counter .*comment "[^"]+"$/, l);
  t.notRegex(s, /reject/);
});

test('egress has no icmpv6 drop and no default deny when the model says so', (t) => {
  const out = chain(renderRuleset(demo(), { table: 'nodewall', mode: 'enforce' }), 'output');
  t.regex(out[0] ?? '', /^oif "lo"/);
  t.false(out.some((l) => l.includes('icmpv6 drop')));
  t.false(out.some((l) => l.includes('default-deny')));
  t.true(out.some((l) => l.startsWith('ip daddr @pods_v4 udp dport 5353 counter accept')));
});

test('a direction that is not enforced accepts after the datapath rules and renders no entries', (t) => {
  const s = renderRuleset(b.model({ sets: [pods], egress: b.enforced([b.allow('pods', [b.tcp(1)])]) }), { table: 't', mode: 'enforce' });
  const input = chain(s, 'input');
  t.regex(input.at(-1) ?? '', /^counter accept comment "nodewall not enforced"$/);
  t.false(input.some((l) => l.includes('@pods')));
});

test('peers, exclusions, ports and ICMP families render as set matches', (t) => {
  const input = chain(renderRuleset(demo(), { table: 'nodewall', mode: 'enforce' }), 'input');
  t.true(input.includes('ip saddr @world_v4 ip saddr != @nw_excl_cluster_v4 tcp dport 22 counter accept comment "p1 spec.ingress[0]"'));
  t.true(input.includes('ip saddr @world_v4 ip saddr != @nw_excl_cluster_v4 tcp dport 8000-8080 counter accept comment "p1 spec.ingress[0]"'));
  t.true(input.includes('ip6 saddr @world_v6 ip6 saddr != @nw_excl_cluster_v6 udp dport 53 counter accept comment "p1 spec.ingress[0]"'));
  t.true(input.includes('ip saddr @pods_v4 counter drop comment "p1 spec.ingressDeny[0]"'));
  t.true(input.includes('icmp type 8 counter accept comment "p1 spec.ingress[1]"'));
  t.true(input.includes('icmpv6 type 128 counter accept comment "p1 spec.ingress[1]"'));
});

test('ICMP entries only render in their family when a peer is set', (t) => {
  const m = b.model({ sets: [pods], ingress: b.enforced([b.allow('pods', [b.icmp('ipv6', 128, 129)])]) });
  const input = chain(renderRuleset(m, { table: 't', mode: 'enforce' }), 'input');
  t.true(input.includes('ip6 saddr @pods_v6 icmpv6 type { 128, 129 } counter accept comment "p1 spec.ingress[0]"'));
  t.false(input.some((l) => l.startsWith('ip saddr @pods_v4')));
});

test('an entry with no L4 match renders nothing; an all-ports range is a protocol match', (t) => {
  const m = b.model({
    sets: [pods],
    ingress: b.enforced([b.allow('pods', [], 'spec.ingress[0]'), b.allow(null, [b.tcp([0, 65535]), b.udp([0, 100], [50, 200])], 'spec.ingress[1]')]),
  });
  const input = chain(renderRuleset(m, { table: 't', mode: 'enforce' }), 'input');
  t.false(input.some((l) => l.includes('spec.ingress[0]')));
  t.true(input.includes('meta l4proto tcp counter accept comment "p1 spec.ingress[1]"'));
  t.true(input.includes('udp dport 0-200 counter accept comment "p1 spec.ingress[1]"'));
});

test('port lists and protocol numbers are grouped', (t) => {
  t.deepEqual(l4Parts([b.tcp(80), b.tcp(443, 80), b.udp(53)]), [{ text: 'tcp dport { 80, 443 }' }, { text: 'udp dport 53' }]);
  t.deepEqual(l4Parts([{ kind: 'proto', proto: 112, name: 'vrrp' }, { kind: 'proto', proto: 47, name: 'gre' }]), [{ text: 'meta l4proto { 47, 112 }' }]);
  t.deepEqual(l4Parts([b.tcp(80), b.anyL4]), [{ text: '' }]);
  const any = (lo: number, hi: number) => (['tcp', 'udp', 'sctp'] as const).map((proto) => ({ kind: 'ports' as const, proto, ranges: [[lo, hi] as const] }));
  t.deepEqual(l4Parts(any(1000, 1010)), [{ text: 'meta l4proto { tcp, udp, sctp } th dport 1000-1010' }]);
  t.deepEqual(l4Parts([...any(0, 65535), b.udp(53)]), [{ text: 'meta l4proto { tcp, udp, sctp }' }]);
  t.deepEqual(l4Parts([b.tcp(53), b.udp(53), b.tcp(80)]), [{ text: 'tcp dport { 53, 80 }' }, { text: 'udp dport 53' }]);
  // Never a range: an anonymous interval set misses packets while its transaction commits (numberList).
  t.is(numberList([1, 2, 3, 4, 130, 131, 128, 2]), '{ 1, 2, 3, 4, 128, 130, 131 }');
  // Singles in one plain set, each run of ports a range expression of its own (adjacent singles merge into a run).
  t.deepEqual(l4Parts([b.tcp(22, 443, 8000, 9999), b.tcp([8000, 8080]), b.tcp([9000, 9100]), b.tcp(23)]), [
    { text: 'tcp dport { 443, 9999 }' },
    { text: 'tcp dport 22-23' },
    { text: 'tcp dport 8000-8080' },
    { text: 'tcp dport 9000-9100' },
  ]);
  t.is(numberList([8]), '8');
});

test('sets: hash for identities of single addresses, interval for those that can hold prefixes, both families declared even when empty', (t) => {
  const s = renderRuleset(demo(), { table: 'nodewall', mode: 'enforce' });
  const block = (name: string) => s.slice(s.indexOf(`\tset ${name} {`), s.indexOf('\n\t}', s.indexOf(`\tset ${name} {`)));
  t.notRegex(block('pods_v4'), /flags interval/);
  t.regex(block('pods_v4'), /elements = \{ 198\.51\.100\.5, 198\.51\.100\.6 \}/);
  t.regex(block('world_v4'), /flags interval/);
  t.regex(block('world_v4'), /elements = \{ 0\.0\.0\.0\/0 \}/);
  t.regex(block('nw_excl_cluster_non_node_v6'), /type ipv6_addr\n\t\tflags interval\n\t\tcomment "nodewall exclusion cluster_non_node"$/);
  // By what the identity selects, never by its elements of the moment.
  t.is(identitySetKind({ kind: 'endpoints', label: 'endpoints:{}' }), 'hash');
  t.is(identitySetKind({ kind: 'nodes', label: 'nodes:{}' }), 'hash');
  t.is(identitySetKind({ kind: 'entity', label: 'entity:kube-apiserver' }), 'hash');
  t.is(identitySetKind({ kind: 'entity', label: 'entity:cluster' }), 'interval');
  t.is(identitySetKind({ kind: 'entity', label: 'entity:world' }), 'interval');
  t.is(identitySetKind({ kind: 'cidr', label: 'cidr:192.0.2.1/32' }), 'interval');
  const empty = renderRuleset(b.model({ sets: [b.identity('only4', ['192.0.2.9/32'], [], { kind: 'nodes' })], ingress: b.enforced([b.allow('only4', [b.anyL4])]) }), { table: 't', mode: 'enforce' });
  t.regex(empty, /set only4_v6 \{\n\t\ttype ipv6_addr\n\t\tcomment/);
  t.regex(empty, /ip6 saddr @only4_v6 counter accept/);
});

test('hash sets: merged neighbours are written out as their addresses, in order; too many are refused', (t) => {
  t.deepEqual(hashSetElements(['192.0.2.1/32', '198.51.100.4/31', '198.51.100.8/30'], 'ipv4'), [
    '192.0.2.1/32', '198.51.100.4/32', '198.51.100.5/32', '198.51.100.8/32', '198.51.100.9/32', '198.51.100.10/32', '198.51.100.11/32',
  ]);
  t.deepEqual(hashSetElements(['2001:db8::/127', '2001:db8::5/128'], 'ipv6'), ['2001:db8::/128', '2001:db8::1/128', '2001:db8::5/128']);
  const exact = ['192.0.2.1/32', '192.0.2.3/32'];
  t.is(hashSetElements(exact, 'ipv4'), exact, 'a list without prefixes is used as it is');
  t.throws(() => hashSetElements(['10.0.0.0/8'], 'ipv4', 'pods_v4'), { instanceOf: RenderError, message: new RegExp(`pods_v4: more than ${maxHashSetAddresses} addresses \\(10\\.0\\.0\\.0/8\\)`) });
  // Addresses above 2^31 (no sign trouble), and a list rebuilt from the pieces of the previous one equals a fresh one.
  t.deepEqual(hashSetElements(['203.0.113.254/31'], 'ipv4', 'hi_v4'), ['203.0.113.254/32', '203.0.113.255/32']);
  const before = ['192.0.2.0/30', '198.51.100.4/31'];
  const after = ['192.0.2.0/30', '198.51.100.4/31', '198.51.100.8/32', '203.0.113.0/29'];
  hashSetElements(before, 'ipv4', 'churn_v4');
  t.deepEqual(hashSetElements(after, 'ipv4', 'churn_v4'), hashSetElements([...after], 'ipv4', 'fresh_v4'));
  t.is(hashSetElements(after, 'ipv4', 'churn_v4').length, 4 + 2 + 1 + 8);
  // A model delta that merges a neighbour in (or splits it off) is one address for a hash set, untouched for an interval set.
  t.deepEqual(kernelDelta({ add: ['198.51.100.4/31'], remove: ['198.51.100.4/32'] }, 'ipv4', 'hash'), { add: ['198.51.100.5/32'], remove: [] });
  t.deepEqual(kernelDelta({ add: ['198.51.100.4/32', '198.51.100.6/32'], remove: ['198.51.100.4/30'] }, 'ipv4', 'hash'), { add: [], remove: ['198.51.100.5/32', '198.51.100.7/32'] });
  const interval = { add: ['198.51.100.4/31'], remove: ['198.51.100.4/32'] };
  t.is(kernelDelta(interval, 'ipv4', 'interval'), interval);
  // The same model: two neighbouring pods are two elements of a hash set, not a /31 in an interval set.
  const s = renderRuleset(b.model({ sets: [b.identity('pods', ['198.51.100.4/31'], [], { kind: 'endpoints' })], ingress: b.enforced([b.allow('pods', [b.anyL4])]) }), { table: 't', mode: 'enforce' });
  t.regex(s, /set pods_v4 \{\n\t\ttype ipv4_addr\n\t\tcomment "[^"]*"\n\t\telements = \{ 198\.51\.100\.4, 198\.51\.100\.5 \}/);
});

test('audit mode: nothing is dropped, would-drops go to the recording chain', (t) => {
  const s = renderRuleset(demo(), { table: 'nodewall', mode: 'audit' });
  t.notRegex(s, /counter drop/);
  const input = chain(s, 'input');
  t.true(input.includes('ip saddr @pods_v4 counter goto nw_audit_in comment "p1 spec.ingressDeny[0]"'));
  t.true(input.includes('counter goto nw_audit_in comment "nodewall default-deny"'));
  t.regex(s, /set nw_audit_in_v4 \{\n\t\ttype ipv4_addr \. inet_proto \. inet_service\n\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout 10m/);
  const audit = chain(s, 'nw_audit_out');
  t.true(audit.includes('meta nfproto ipv6 update @nw_audit_out_v6 { ip6 daddr . meta l4proto . th dport } counter accept comment "nodewall audit ipv6"'));
  t.regex(audit.at(-1) ?? '', /^counter accept/);
  t.false(renderRuleset(demo(), { table: 'nodewall', mode: 'enforce' }).includes('nw_audit'));
});

test('comments name policy and rule, stay quotable and within nft limits', (t) => {
  t.is(commentText('a "b" c'), "a 'b' c");
  const long = commentText(`${'x'.repeat(200)} spec.ingress[0]`);
  t.true(Buffer.byteLength(long) <= 128);
  t.not(long, commentText(`${'x'.repeat(199)}y spec.ingress[0]`));
  // A cut never splits a character: no lone surrogate (nft would store U+FFFD, and the comment read back would differ).
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  for (let i = 0; i < 8; i++) {
    const c = commentText(`${'a'.repeat(i)}${'\u{1F600}'.repeat(60)}`);
    t.true(Buffer.byteLength(c) <= 128);
    t.notRegex(c, lone);
  }
});

test('bad input is a RenderError, not a broken script', (t) => {
  t.throws(() => renderRuleset(demo(), { table: 'bad table', mode: 'enforce' }), { instanceOf: RenderError });
  const missing = b.model({ ingress: b.enforced([b.allow('ghost', [b.anyL4])]) });
  t.throws(() => renderRuleset(missing, { table: 't', mode: 'enforce' }), { instanceOf: RenderError, message: /ghost/ });
  const reserved = b.model({ sets: [b.identity('nw_x', [])], ingress: b.enforced([b.allow('nw_x', [b.anyL4])]) });
  t.throws(() => renderRuleset(reserved, { table: 't', mode: 'enforce' }), { instanceOf: RenderError, message: /reserved/ });
});

test('rule count grows with entries, not with addresses', (t) => {
  const small = renderPlan(demo(), { table: 't', mode: 'enforce' });
  const big = renderPlan(demo(b.podAddresses(5000)), { table: 't', mode: 'enforce' });
  t.is(big.ruleCount, small.ruleCount);
  t.is(big.sets.get('pods_v4')?.elements.length, 5000);
});
