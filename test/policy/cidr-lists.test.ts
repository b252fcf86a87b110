// A CIDR field (fromCIDR / fromCIDRSet) becomes one set per exclusion (issue 8, defect 8). The
// property test checks the merge against the per-CIDR semantics it replaces: an address matches the
// field iff some entry contains it, that entry's own excepts do not, and the entry's exclusion
// (cluster addresses) does not.

import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import type { CIDRRule, PeerRule } from '../../src/api/types.js';
import { AddressMatcher, addressInPrefix, formatPrefix, parseAddress, parsePrefix, type Prefix } from '../../src/policy/cidr.js';
import type { IdentitySet } from '../../src/policy/model.js';
import { resolveContext, resolvePeers, shortHash, type ResolveContext } from '../../src/policy/resolve-peers.js';
import { baseInventory, config } from '../helpers/policy-builders.js';

function setsOf(rule: PeerRule, ctx: ResolveContext): IdentitySet[] {
  return resolvePeers(rule, 'ingress', ctx).sets.map((n) => ctx.sets.get(n)!);
}

test('a fromCIDR list is one set; overlapping and adjacent prefixes are merged', (t) => {
  const ctx = resolveContext(baseInventory(), config());
  const sets = setsOf({ cidr: ['203.0.113.0/26', '203.0.113.16/28', '203.0.113.64/26', '2001:db8:ffff::/48', '203.0.113.200/32'] }, ctx);
  t.is(sets.length, 1);
  const s = sets[0]!;
  t.regex(s.name, /^cidr_[0-9a-f]{8}$/);
  t.deepEqual(s.v4, ['203.0.113.0/25', '203.0.113.200/32']);
  t.deepEqual(s.v6, ['2001:db8:ffff::/48']);
  t.is(s.exclude, 'cluster');
  t.is(s.label, 'cidr:2001:db8:ffff::/48, 203.0.113.0/26, 203.0.113.16/28 and 2 more (5 CIDRs)');
});

test('a single CIDR keeps the set name it always had; order and duplicates do not change a list\'s name', (t) => {
  const ctx = resolveContext(baseInventory(), config());
  t.is(setsOf({ cidr: ['203.0.113.0/24'] }, ctx)[0]!.name, `cidr_${shortHash('cidr:203.0.113.0/24')}`);
  t.is(setsOf({ cidr: ['203.0.113.0/24', '203.0.113.0/24'] }, ctx)[0]!.name, `cidr_${shortHash('cidr:203.0.113.0/24')}`);
  const a = setsOf({ cidr: ['203.0.113.0/25', '2001:db8:ffff::/48'] }, ctx)[0]!;
  const b = setsOf({ cidr: ['2001:db8:ffff::/48', '203.0.113.0/25', '203.0.113.0/25'] }, ctx)[0]!;
  t.is(a.name, b.name);
  t.is(ctx.sets.size, 2);
});

test('a bare zero-length prefix in a list stays the shared world set of its family', (t) => {
  const ctx = resolveContext(baseInventory(), config());
  const names = resolvePeers({ cidr: ['0.0.0.0/0', '203.0.113.0/24', '2001:db8:ffff::/48'] }, 'ingress', ctx).sets;
  t.true(names.includes('world_ipv4'));
  t.is(names.length, 2);
});

test('policyCIDRMatchMode nodes: a zero-length CIDRSet entry and the others become two sets with their own exclusions', (t) => {
  const ctx = resolveContext(baseInventory(), config({ policyCIDRMatchMode: 'nodes' }));
  const sets = setsOf({ cidrSet: [{ cidr: '0.0.0.0/0', except: ['203.0.113.0/24'] }, { cidr: '192.0.2.2/32' }, { cidr: '192.0.2.3/32' }] }, ctx);
  t.deepEqual(sets.map((s) => s.exclude).sort(), ['cluster', 'cluster_non_node']);
  t.deepEqual(sets.find((s) => s.exclude === 'cluster_non_node')?.v4, ['192.0.2.2/31']);
});

test('the same list in two rules shares one set', (t) => {
  const ctx = resolveContext(baseInventory(), config());
  const a = resolvePeers({ cidr: ['203.0.113.0/25', '203.0.113.128/26'] }, 'ingress', ctx).sets;
  const b = resolvePeers({ cidr: ['203.0.113.128/26', '203.0.113.0/25'] }, 'egress', ctx).sets;
  t.deepEqual(a, b);
});

test('100k CIDRs in one field: one set holding every CIDR', (t) => {
  const ctx = resolveContext(baseInventory(), config());
  const cidrs = Array.from({ length: 100_000 }, (_, i) => {
    const n = 0x14000000 + i * 8;
    return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/30`;
  });
  const sets = setsOf({ cidr: cidrs }, ctx);
  t.is(sets.length, 1);
  t.is(sets[0]!.v4.length, 100_000);
  t.regex(sets[0]!.label, /and 99997 more \(100000 CIDRs\)$/);
});

// --- property: merged sets == per-CIDR semantics ---------------------------------------------------

// Entries inside 192.0.2.0/24 (nodes, health, an external API server), 198.51.100.0/24 (pods) and
// 203.0.113.0/24 (world), so exclusions, overlaps and excepts all come up.
const bases = ['192.0.2.0', '198.51.100.0', '203.0.113.0'];
const v4Prefix = fc.tuple(fc.constantFrom(...bases), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 23, max: 32 })).map(([base, low, len]) => {
  const p = parsePrefix(`${base}/24`);
  const bits = len <= 24 ? p.bits : p.bits | BigInt(low);
  const mask = ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - len)) - 1n);
  return { family: 'ipv4' as const, bits: bits & mask, len };
});
const zeroOrNot = fc.oneof({ weight: 1, arbitrary: fc.constant<Prefix>({ family: 'ipv4', bits: 0n, len: 0 }) }, { weight: 6, arbitrary: v4Prefix });
const entry = fc.tuple(zeroOrNot, fc.array(v4Prefix, { maxLength: 3 })).map(([base, cuts]) => ({
  base,
  // Excepts must lie inside their cidr (validation refuses others): keep those that do.
  cuts: cuts.filter((c) => c.len >= base.len && addressInPrefix({ family: 'ipv4', bits: c.bits }, base)),
}));

testProp(
  'a merged CIDR field matches exactly the addresses some entry matches, under both CIDR match modes',
  [fc.array(entry, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.array(fc.integer({ min: 0, max: 3 * 256 - 1 }), { minLength: 20, maxLength: 20 })],
  (t, entries, nodesMode, probes) => {
    const cfg = config(nodesMode ? { policyCIDRMatchMode: 'nodes' } : {});
    const ctx = resolveContext(baseInventory(), cfg);
    const rule: CIDRRule[] = entries.map((e) => ({ cidr: formatPrefix(e.base), except: e.cuts.map(formatPrefix) }));
    const sets = setsOf({ cidrSet: rule }, ctx);
    const matchers = sets.map((s) => ({ m: new AddressMatcher([...s.v4, ...s.v6].map((x) => parsePrefix(x))), exclude: s.exclude }));
    const excl = {
      cluster: new AddressMatcher(ctx.pools.cluster),
      cluster_non_node: new AddressMatcher(ctx.pools.clusterNonNode),
    };
    for (const i of probes) {
      const addr = parseAddress(`${bases[i >> 8]!.split('.').slice(0, 3).join('.')}.${i & 255}`);
      const merged = matchers.some((x) => x.m.has(addr) && (x.exclude === undefined || !excl[x.exclude].has(addr)));
      const oracle = entries.some((e) => {
        if (!addressInPrefix(addr, e.base) || e.cuts.some((c) => addressInPrefix(addr, c))) return false;
        const exclusion = e.base.len === 0 || !nodesMode ? excl.cluster : excl.cluster_non_node;
        return !exclusion.has(addr);
      });
      t.is(merged, oracle, `${formatPrefix({ ...addr, len: 32 })}`);
    }
  },
);
