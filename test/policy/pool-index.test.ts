// The lint fast paths against the computations they replace (issue 9):
// - the pool index (binary search over merged pools) against a subtraction over the whole pool;
// - a CoverSet's overlaps against the same, after random adds and removes;
// - modelAtAddress: evaluate on the model cut down to one address decides every flow of that
//   address exactly as on the whole model (verdict, reason, matched entries, identities).

import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { AddressMatcher, formatAddress, formatPrefix, mergePrefixes, parseAddress, parsePrefix, type Prefix } from '../../src/policy/cidr.js';
import { CoverSet } from '../../src/policy/cover-set.js';
import { ipv4PrefixStart, modelAtAddress, sortedListHas } from '../../src/policy/model-at-address.js';
import { mergedListOverlaps, poolIndexOf } from '../../src/policy/pool-index.js';
import type { HostModel } from '../../src/policy/model.js';
import { addressPools } from '../../src/policy/resolve-peers.js';
import type { Flow } from '../../src/verdict/types.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { buildCaseState, loadConformanceCases } from '../helpers/conformance.js';
import { defaultProbes, overlapsBySubtraction, poolIndexDisagreement } from '../helpers/pool-index-reference.js';

// Prefixes crowded into two small ranges (one per family), so that lists merge, touch and nest.
const v4Prefix: fc.Arbitrary<Prefix> = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 24, max: 32 }))
  .map(([i, len]) => ({ family: 'ipv4' as const, bits: (0xc0000200n | BigInt(i)) & ~((1n << BigInt(32 - len)) - 1n), len }));
const v6Prefix: fc.Arbitrary<Prefix> = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 120, max: 128 }))
  .map(([i, len]) => ({ family: 'ipv6' as const, bits: ((0x20010db8n << 96n) | BigInt(i)) & ~((1n << BigInt(128 - len)) - 1n), len }));
const anyPrefix = fc.oneof(v4Prefix, v6Prefix, fc.constantFrom<Prefix>({ family: 'ipv4', bits: 0n, len: 0 }, { family: 'ipv6', bits: 0n, len: 0 }));

testProp('a merged list overlaps a prefix exactly when subtracting the list changes the prefix', [fc.array(anyPrefix, { maxLength: 40 }), fc.array(anyPrefix, { minLength: 1, maxLength: 20 })], (t, inputs, probes) => {
  const merged = mergePrefixes(inputs);
  for (const p of [...probes, ...defaultProbes]) t.is(mergedListOverlaps(merged, p), overlapsBySubtraction(p, merged));
});

testProp(
  "a CoverSet's overlaps equals the subtraction after every add and remove",
  [fc.array(fc.tuple(fc.boolean(), anyPrefix), { minLength: 1, maxLength: 40 }), fc.array(anyPrefix, { minLength: 1, maxLength: 10 })],
  (t, ops, probes) => {
    const c = new CoverSet();
    const live: Prefix[] = [];
    for (const [add, p] of ops) {
      const at = live.findIndex((q) => q.family === p.family && q.bits === p.bits && q.len === p.len);
      if (add || at < 0) {
        c.add(p);
        live.push(p);
      } else {
        c.remove(p);
        live.splice(at, 1);
      }
      for (const q of probes) t.is(c.overlaps(q), overlapsBySubtraction(q, live), `after ${add ? 'adding' : 'removing'}`);
    }
  },
);

testProp('sortedListHas answers as an AddressMatcher over the same model list', [fc.array(anyPrefix, { maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 20 })], (t, inputs, hosts) => {
  const merged = mergePrefixes(inputs);
  const m = new AddressMatcher(merged);
  for (const family of ['ipv4', 'ipv6'] as const) {
    const list = merged.filter((p) => p.family === family).map((p) => `${formatAddress(p.family, p.bits)}/${p.len}`);
    for (const h of hosts) {
      const addr = parseAddress(family === 'ipv4' ? `192.0.2.${h}` : `2001:db8::${h.toString(16)}`);
      t.is(sortedListHas(list, addr), m.has(addr));
    }
  }
});

// ipv4PrefixStart reads what the strict parser (Go's netip.ParsePrefix) reads, or declines (-1).
function strictStart(text: string): number | undefined {
  try {
    const p = parsePrefix(text);
    return p.family === 'ipv4' ? Number(p.bits) : undefined;
  } catch {
    return undefined;
  }
}

const anyV4Prefix: fc.Arbitrary<Prefix> = fc
  .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
  .map(([a, len]) => ({ family: 'ipv4' as const, bits: BigInt(a) & ~((1n << BigInt(32 - len)) - 1n) & 0xffffffffn, len }));

testProp('ipv4PrefixStart equals the strict parser on every canonical IPv4 prefix', [anyV4Prefix], (t, p) => {
  t.is(ipv4PrefixStart(formatPrefix(p)), Number(p.bits));
});

// Texts near the canonical form: leading zeros, out-of-range octets and lengths, host bits, missing or
// extra parts, other characters, IPv6. Whatever it reads, the strict parser reads the same.
const nearText = fc
  .tuple(
    fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '007', '', '1a', ' 1', '-1', '+1', '٣')), { minLength: 1, maxLength: 5 }),
    fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), fc.constantFrom('', '00', '08', '032', '1 ', 'x', '/24')),
    fc.constantFrom('.', '.', '.', ':'),
    fc.boolean(),
  )
  .map(([octets, len, sep, slash]) => `${octets.join(sep)}${slash ? '/' : ''}${len}`);

testProp('ipv4PrefixStart never reads a text the strict parser refuses or reads otherwise', [fc.oneof(nearText, fc.string({ maxLength: 24 }), anyV4Prefix.map((p) => `${formatPrefix(p).replace('/', '/0')}`))], (t, text) => {
  const fast = ipv4PrefixStart(text);
  if (fast >= 0) t.true(fast === strictStart(text), text);
  else t.pass();
});

test('ipv4PrefixStart: edges', (t) => {
  t.is(ipv4PrefixStart('0.0.0.0/0'), 0);
  t.is(ipv4PrefixStart('255.255.255.255/32'), 0xffffffff);
  t.is(ipv4PrefixStart('192.0.2.77/24'), 0xc0000200, 'host bits masked off, as the strict parser does');
  t.true(strictStart('192.0.2.77/24') === 0xc0000200);
  for (const bad of ['192.0.2.1', '192.0.2.1/', '192.0.2.1/33', '192.0.2.1/08', '192.0.2.01/32', '192.0.2.256/32', '192.0.2/24', '192.0.2.1.1/32', '192.0.2.1/32 ', '2001:db8::/32', '']) {
    t.is(ipv4PrefixStart(bad), -1, bad);
  }
});

testProp('sortedListHas on IPv4 lists of random whole-range prefixes answers as an AddressMatcher', [fc.array(anyV4Prefix, { maxLength: 60 }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 20 })], (t, inputs, hosts) => {
  const merged = mergePrefixes(inputs);
  const m = new AddressMatcher(merged);
  const list = merged.map(formatPrefix);
  for (const h of hosts) {
    const addr = { family: 'ipv4' as const, bits: BigInt(h) };
    t.is(sortedListHas(list, addr), m.has(addr));
  }
});

testProp(
  "a CoverSet's IPv4 overlaps (plain numbers) equals the subtraction over the whole IPv4 range",
  [fc.array(fc.tuple(fc.boolean(), anyV4Prefix), { minLength: 1, maxLength: 30 }), fc.array(anyV4Prefix, { minLength: 1, maxLength: 10 })],
  (t, ops, probes) => {
    const c = new CoverSet();
    const live: Prefix[] = [];
    const edges: Prefix[] = [
      { family: 'ipv4', bits: 0n, len: 0 },
      { family: 'ipv4', bits: 0n, len: 32 },
      { family: 'ipv4', bits: 0xffffffffn, len: 32 },
      { family: 'ipv4', bits: 0x80000000n, len: 1 },
    ];
    for (const [add, p] of ops) {
      const at = live.findIndex((q) => q.bits === p.bits && q.len === p.len);
      if (add || at < 0) {
        c.add(p);
        live.push(p);
      } else {
        c.remove(p);
        live.splice(at, 1);
      }
      for (const q of [...probes, ...edges]) t.is(c.overlaps(q), overlapsBySubtraction(q, live), `${formatPrefix(q)} after ${add ? 'adding' : 'removing'} ${formatPrefix(p)}`);
    }
  },
);

const states = loadConformanceCases().map((c) => ({ name: c.name, state: buildCaseState(c) }));

test('the conformance states give the pool index something to answer', (t) => {
  for (const { name, state } of states) {
    t.is(poolIndexDisagreement(poolIndexOf(addressPools({ ...state.inventory })), addressPools(state.inventory)), undefined, name);
  }
  t.true(states.length > 20);
});

/** Addresses worth asking about: first and last of every list, host addresses, API servers, plus a few outside. */
function addressesOf(model: HostModel, apiServers: readonly string[]): string[] {
  const out = new Set<string>(['203.0.113.9', '2001:db8:ffff::1', ...model.hostAddresses.map((a) => a.split('/')[0]!), ...apiServers.map((a) => a.split('/')[0]!)]);
  const lists = [...Object.values(model.sets), model.exclusions.cluster, model.exclusions.cluster_non_node];
  for (const l of lists) {
    for (const e of [...l.v4.slice(0, 2), ...l.v4.slice(-2), ...l.v6.slice(0, 2), ...l.v6.slice(-2)]) out.add(e.split('/')[0]!);
  }
  return [...out];
}

test('evaluate on the model cut down to one address decides every flow of that address as the whole model', (t) => {
  let compared = 0;
  for (const { name, state } of states) {
    for (const m of [state.model, { ...state.model, runMode: 'enforce' as const }]) {
      for (const addr of addressesOf(m, state.inventory.apiServerAddresses)) {
        const at = modelAtAddress(m, addr);
        for (const direction of ['ingress', 'egress'] as const) {
          const flows: Flow[] = [
            ...[22, 80, 443, 6443, 8080].map((port) => ({ direction, peer: addr, proto: 'tcp' as const, port })),
            { direction, peer: addr, proto: 'udp', port: 53 },
            { direction, peer: addr, proto: addr.includes(':') ? 'icmpv6' : 'icmp', icmpType: addr.includes(':') ? 128 : 8 },
          ];
          for (const f of flows) {
            t.deepEqual(evaluate(at, f), evaluate(m, f), `${name}: ${JSON.stringify(f)}`);
            compared++;
          }
        }
      }
    }
  }
  t.true(compared > 1000, `${compared} flows compared`);
});
