// The precompiled evaluator against the straightforward one it replaced (test/helpers/
// evaluate-reference.ts): on random models and flows, and on every conformance case's model with
// its flows and random ones, the Verdict must be deep-equal (same verdict, reason, matched entries in
// order, identities, decidedBy), by both membership paths: the per-set scan a model starts with and
// the interval index it gets after enough flows.

import { parseFailsafeEntry } from '../../src/policy/failsafe.js';
import test from 'ava';
import fc from 'fast-check';
import { parseAddress } from '../../src/policy/cidr.js';
import type { DirectionPolicy, Entry, ExclusionName, HostModel, IdentitySet, L4Match } from '../../src/policy/model.js';
import { compiledModel } from '../../src/verdict/compiled-model.js';
import { evaluate, excludedIdentities, FlowError, peerIdentities } from '../../src/verdict/evaluate.js';
import type { Flow, Verdict } from '../../src/verdict/types.js';
import { loadConformanceCases, buildCaseState } from '../helpers/conformance.js';
import { referenceEvaluate, referenceExcludedIdentities, referencePeerIdentities } from '../helpers/evaluate-reference.js';
import * as b from '../helpers/model-builders.js';

// ---- random models: overlapping prefixes and hosts of two small windows per family ----

const v4Prefixes = ['203.0.113.0/24', '203.0.113.0/28', '203.0.113.16/28', '203.0.113.8/29', '203.0.113.128/25', '198.51.100.0/24', '0.0.0.0/0', '192.0.2.0/30', '203.0.113.37/27', '203.0.113.200/31'];
const v4Hosts = [0, 1, 2, 7, 8, 15, 16, 17, 127, 128, 200, 255].map((h) => `203.0.113.${h}/32`);
const v6Prefixes = ['2001:db8::/32', '2001:db8:ffff::/48', '2001:db8:ffff::/124', '2001:db8:ffff::10/124', '::/0', '::ffff:0:0/96', '2001:db8:ffff::25/124'];
const v6Hosts = ['2001:db8:ffff::1/128', '2001:db8:ffff::f/128', '2001:db8:ffff::10/128', '2001:db8:ffff::ffff/128', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'];

const v4List = fc.subarray([...v4Prefixes, ...v4Hosts], { maxLength: 6 });
const v6List = fc.subarray([...v6Prefixes, ...v6Hosts], { maxLength: 4 });

const setNames = ['world', 'cidr_a', 'cidr_b', 'endpoints_c', 'nodes_d', 'host'];

const identityArb = (name: string): fc.Arbitrary<IdentitySet> =>
  fc.record({ v4: v4List, v6: v6List, exclude: fc.constantFrom<ExclusionName | undefined>(undefined, 'cluster', 'cluster_non_node') }).map(({ v4, v6, exclude }) => ({
    name, label: `random:${name}`, kind: 'cidr', v4, v6, ...(exclude === undefined ? {} : { exclude }),
  }));

const rangesArb = fc.array(
  fc.oneof(
    fc.constantFrom<readonly [number, number]>([0, 65535], [22, 22], [80, 90], [85, 85], [1000, 2000], [65535, 65535], [0, 0], [443, 443]),
    fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 200 })).map(([lo, w]): readonly [number, number] => [lo, Math.min(65535, lo + w)]),
  ),
  { minLength: 1, maxLength: 3 },
);
const l4Arb: fc.Arbitrary<L4Match> = fc.oneof(
  fc.constant<L4Match>({ kind: 'all' }),
  fc.record({ proto: fc.constantFrom('tcp' as const, 'udp' as const, 'sctp' as const), ranges: rangesArb }).map((p): L4Match => ({ kind: 'ports', ...p })),
  fc.record({ family: fc.constantFrom('ipv4' as const, 'ipv6' as const), types: fc.subarray([0, 3, 8, 11, 128, 129, 135], { minLength: 1 }) }).map((p): L4Match => ({ kind: 'icmp', ...p })),
  fc.constantFrom(47, 112, 6, 200).map((proto): L4Match => ({ kind: 'proto', proto, name: `p${proto}` })),
);

const entryArb = (dir: string, i: number): fc.Arbitrary<Entry> =>
  fc.record({
    action: fc.constantFrom('allow' as const, 'deny' as const),
    // 'missing' names no set of the model: such an entry never matches.
    peer: fc.constantFrom<string | null>(null, ...setNames, 'missing'),
    l4: fc.array(l4Arb, { maxLength: 3 }),
  }).map((e) => ({ ...e, policy: `rand-${i % 4}`, rule: `spec.${dir}[${i}]` }));

const directionArb = (dir: string): fc.Arbitrary<DirectionPolicy> =>
  fc.record({
    enforced: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    defaultDeny: fc.boolean(),
    // Random order: the contract lists denies first, but the verdict must not depend on it.
    entries: fc.integer({ min: 0, max: 12 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => entryArb(dir, i)))),
    reason: fc.constantFrom('random reason.', 'another reason.'),
  });

const modelArb: fc.Arbitrary<HostModel> = fc
  .record({
    sets: fc.subarray(setNames).chain((names) => fc.tuple(...names.map(identityArb))),
    ingress: directionArb('ingress'),
    egress: directionArb('egress'),
    cluster4: v4List,
    cluster6: v6List,
    nonNode4: v4List,
    datapath: fc.record({ allowICMPFragNeeded: fc.boolean(), extendedProtocols: fc.boolean() }),
    hostAddresses: fc.subarray(['192.0.2.1', '2001:db8::1', '203.0.113.7', '2001:db8:ffff::1']),
    // Config failsafes (usually none): accepted after the datapath, before anything policy decides.
    failIn: fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.subarray(['tcp/22', 'tcp/6443 from 203.0.113.0/28', 'udp/53-60', 'sctp/9000 from 2001:db8:ffff::/64']) }),
    failOut: fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.subarray(['udp/53 to 203.0.113.53', 'tcp/80-90', 'tcp/443 to 2001:db8::/32']) }),
  })
  .map((m) => ({
    ...b.model({
      sets: m.sets,
      ingress: m.ingress,
      egress: m.egress,
      exclusions: { cluster: { v4: m.cluster4, v6: m.cluster6 }, cluster_non_node: { v4: m.nonNode4, v6: [] } },
      datapath: m.datapath,
    }),
    hostAddresses: m.hostAddresses,
    failsafe: { ingress: m.failIn.map((t) => parseFailsafeEntry(t, 'ingress')), egress: m.failOut.map((t) => parseFailsafeEntry(t, 'egress')) },
  }));

const peerArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 255 }).map((h) => `203.0.113.${h}`) },
  { weight: 2, arbitrary: fc.constantFrom('198.51.100.5', '192.0.2.1', '192.0.2.3', '127.0.0.1', '127.9.9.9', '0.0.0.0', '255.255.255.255', '10.1.2.3') },
  { weight: 3, arbitrary: fc.constantFrom('2001:db8:ffff::1', '2001:db8:ffff::f', '2001:db8:ffff::10', '2001:db8:ffff::1f', '2001:db8::1', '::1', '::', '::ffff:203.0.113.1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:DB8:FFFF::1', '2001:db8:1::5') },
  // Not canonical or not addresses: the fast IPv4 path must hand these to the full parser (same errors).
  { weight: 1, arbitrary: fc.constantFrom('203.0.113.01', '203.0.113', '203.0.113.1.', '256.1.1.1', '1.2.3.4/32', ' 1.2.3.4', 'fe80::1%eth0', 'host', '', '1..2.3', '203.0.113.255 ') },
);

/** Flows; ports also at the model's range boundaries (lo - 1, lo, hi, hi + 1), where an index is off by one if anywhere. */
const flowArbFor = (portsOfModel: readonly number[]): fc.Arbitrary<Flow> =>
  fc.record(
    {
      direction: fc.constantFrom('ingress' as const, 'egress' as const),
      peer: peerArb,
      proto: fc.constantFrom<Flow['proto']>('tcp', 'udp', 'sctp', 'icmp', 'icmpv6', 6, 17, 1, 58, 132, 47, 112, 200, 0),
      port: fc.oneof(
        fc.constantFrom(0, 22, 80, 85, 90, 91, 443, 1000, 2000, 2001, 65535, 65536, -1, 80.5, Number.NaN),
        fc.integer({ min: 0, max: 65535 }),
        ...(portsOfModel.length === 0 ? [] : [fc.constantFrom(...portsOfModel)]),
      ),
      icmpType: fc.constantFrom(0, 3, 8, 11, 128, 129, 135, 2, 200),
      icmpCode: fc.constantFrom(0, 4),
    },
    { requiredKeys: ['direction', 'peer', 'proto'] },
  );
const flowArb = flowArbFor([]);

function rangeBoundaries(model: HostModel): number[] {
  const out = new Set<number>();
  for (const e of [...model.ingress.entries, ...model.egress.entries]) {
    for (const m of e.l4) if (m.kind === 'ports') for (const [lo, hi] of m.ranges) for (const p of [lo - 1, lo, hi, hi + 1]) out.add(p);
  }
  return [...out];
}

const modelAndFlowsArb = modelArb.chain((model) => fc.tuple(fc.constant(model), fc.array(flowArbFor(rangeBoundaries(model)), { minLength: 1, maxLength: 40 })));

type Outcome = { readonly verdict: Verdict } | { readonly error: string };

function outcome(f: () => Verdict, errorClass: string): Outcome {
  try {
    return { verdict: f() };
  } catch (err) {
    if (!(err instanceof Error) || err.name !== errorClass) throw err;
    return { error: `${err.name}: ${err.message} / ${err.cause instanceof Error ? err.cause.message : String(err.cause)}` };
  }
}

/** Both membership paths against the reference, for every flow: `scanned` is compiled fresh, `indexed` gets its index first. */
function compare(model: HostModel, flows: readonly Flow[]): string | undefined {
  const scanned: HostModel = { ...model };
  const indexed: HostModel = { ...model };
  compiledModel(indexed).buildIndex();
  for (const f of flows) {
    const want = outcome(() => referenceEvaluate(model, f), 'FlowError');
    for (const [path, m] of [['scan', scanned], ['index', indexed]] as const) {
      const got = outcome(() => evaluate(m, f), 'FlowError');
      const a = JSON.stringify(got);
      const e = JSON.stringify(want);
      if (a !== e) return `${path}: flow ${JSON.stringify(f)}\n got ${a}\nwant ${e}`;
    }
  }
  return undefined;
}

test('random models and flows: the same Verdict as the reference evaluator, scanned and indexed', (t) => {
  fc.assert(
    fc.property(modelAndFlowsArb, ([model, flows]) => {
      const diff = compare(model, flows);
      if (diff !== undefined) throw new Error(diff);
    }),
    { numRuns: 1000, seed: 20261206 },
  );
  t.pass();
});

test('the scan path hands over to the interval index after enough flows, answers unchanged', (t) => {
  // Many ranges, few sets: the index comes only after many flows; every verdict on the way must agree.
  const hosts = Array.from({ length: 200 }, (_, i) => `203.0.113.${i}/32`).filter((_, i) => i % 3 !== 0);
  const model = b.model({
    sets: [b.identity('world', ['0.0.0.0/0'], ['::/0'], { exclude: 'cluster' }), b.identity('endpoints_x', hosts)],
    exclusions: { cluster: { v4: hosts.slice(0, 40), v6: [] }, cluster_non_node: { v4: [], v6: [] } },
    ingress: b.enforced([b.deny('endpoints_x', [b.tcp(23)], 'spec.ingressDeny[0]'), b.allow('world', [b.tcp([20, 30])]), b.allow('endpoints_x', [b.anyL4])]),
  });
  const flows: Flow[] = Array.from({ length: 2000 }, (_, i) => ({ direction: 'ingress', peer: `203.0.113.${(i * 7) % 256}`, proto: 'tcp', port: 20 + (i % 12) }));
  for (const f of flows) t.deepEqual(evaluate(model, f), referenceEvaluate(model, f));
});

test('conformance cases: every case flow and random flows give the reference Verdict; identities and exclusions too', (t) => {
  let checked = 0;
  const extra = fc.sample(flowArb, { seed: 7, numRuns: 60 });
  for (const c of loadConformanceCases()) {
    const model = buildCaseState(c).model;
    const flows = [...c.flows.map((f) => f.flow), ...extra];
    const diff = compare(model, flows);
    t.is(diff, undefined, `${c.file}:${c.line} ${c.name}`);
    for (const f of flows) {
      let addr;
      try {
        addr = parseAddress(f.peer);
      } catch {
        continue;
      }
      t.deepEqual(peerIdentities(model, addr), referencePeerIdentities(model, addr), `${c.name}: identities of ${f.peer}`);
      t.deepEqual(excludedIdentities(model, addr), referenceExcludedIdentities(model, addr), `${c.name}: excluded identities of ${f.peer}`);
    }
    checked += flows.length;
  }
  t.true(checked > 500, `${checked} flows`);
});

test('a peer that is not an IP address is a FlowError naming it, as before', (t) => {
  const model = b.model();
  for (const peer of ['host', '203.0.113.01', '', '1.2.3.4/32']) {
    const err = t.throws(() => evaluate(model, { direction: 'ingress', peer, proto: 'tcp', port: 22 }), { instanceOf: FlowError });
    t.is(err?.message, `flow peer "${peer}" is not an IP address`);
  }
});
