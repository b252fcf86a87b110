// Replays every conformance case (test/fixtures/conformance) through the
// pipeline and checks each flow's verdict against the one written from the
// Cilium semantics reference.

import test from 'ava';
import {
  COVERAGE_TAGS,
  flowLabel,
  loadConformanceCases,
  buildCaseState,
  mismatches,
  rejectedPolicies,
  runCaseOn,
  type ConformanceCase,
} from '../helpers/conformance.js';

const cases: ConformanceCase[] = loadConformanceCases();

const ENTITIES = [
  'host', 'remote-node', 'kube-apiserver', 'health', 'ingress', 'init',
  'unmanaged', 'world', 'cluster', 'cluster-mesh', 'all', 'none',
];

for (const c of cases) {
  test(c.name, (t) => {
    const state = buildCaseState(c);
    // Exactly the policies the case means to be invalid are rejected: a typo in a case's YAML
    // must not pass silently as "policy ignored".
    t.deepEqual(rejectedPolicies(state), [...c.rejects].sort(), `case "${c.name}": rejected policies`);
    const results = runCaseOn(state, c);
    t.is(results.length, c.flows.length);
    const failures: string[] = [];
    for (const r of results) {
      const diff = mismatches(r);
      if (diff.length === 0) continue;
      failures.push(
        [
          `${c.file}:${r.line}: ${flowLabel(r.flow)}: ${diff.join('; ')}`,
          `  expected ${JSON.stringify(r.expected)}`,
          `  actual   ${JSON.stringify({ verdict: r.actual.verdict, enforced: r.actual.enforced, decidedBy: r.actual.decidedBy, matched: r.actual.matched, peerIdentities: r.actual.peerIdentities })}`,
          ...r.explanation.split('\n').map((l) => `  | ${l}`),
        ].join('\n'),
      );
    }
    t.deepEqual(failures, [], `case "${c.name}" (${c.ref}, ${c.file}:${c.line}):\n${failures.join('\n')}`);
  });
}

test('the conformance suite has enough flows, in both directions', (t) => {
  const flows = cases.flatMap((c) => c.flows);
  t.true(cases.length >= 100, `${cases.length} cases`);
  t.true(flows.length >= 150, `${flows.length} flows`);
  t.true(flows.filter((f) => f.flow.direction === 'egress').length >= 50);
  t.true(flows.filter((f) => f.expected.verdict === 'allow').length >= 50);
  t.true(flows.filter((f) => f.expected.verdict === 'deny').length >= 50);
});

test('every coverage tag is covered by at least one case', (t) => {
  const used = new Set(cases.flatMap((c) => c.covers));
  t.deepEqual(COVERAGE_TAGS.filter((tag) => !used.has(tag)), []);
});

test('cases tagged ccnp-invalid-whole name the policy they expect to be rejected', (t) => {
  for (const c of cases.filter((x) => x.covers.includes('ccnp-invalid-whole'))) t.true(c.rejects.length > 0, c.name);
});

test('every entity of the CRD enum appears in some case manifest', (t) => {
  const text = cases.map((c) => c.manifests).join('\n');
  const missing = ENTITIES.filter((e) => !new RegExp(`(from|to)Entities:\\s*\\[[^\\]]*\\b${e}\\b(?!-)`).test(text));
  t.deepEqual(missing, []);
});

// Peers the kernel lab has to emulate: base cluster addresses (cluster.yaml), node-d of the Envoy
// ingress cases (192.0.2.4, health .104, ingress .124), and world peers from the two world ranges.
const CLUSTER_PEERS = new Set([
  '192.0.2.1', '192.0.2.2', '192.0.2.3', '2001:db8::1', '2001:db8::2', '2001:db8::3',
  '192.0.2.101', '192.0.2.102', '192.0.2.103', '192.0.2.50',
  '198.51.100.10', '198.51.100.20', '198.51.100.70', '198.51.100.71', '198.51.100.130', '198.51.100.131', '198.51.100.140',
  '2001:db8:100::10', '2001:db8:100::20', '2001:db8:100::1:70', '2001:db8:100::1:71', '2001:db8:100::2:30', '2001:db8:100::2:40',
  '192.0.2.4', '192.0.2.104', '192.0.2.124',
]);
const WORLD_PEER = /^(203\.0\.113\.\d{1,3}|2001:db8:ffff:[0-9a-f:]*)$/;

test('every case cites a section of the reference; peers are cluster addresses or world-range addresses', (t) => {
  for (const c of cases) {
    t.regex(c.ref, /^§\d+(\.\d+)?$/, c.name);
    for (const f of c.flows) t.true(CLUSTER_PEERS.has(f.flow.peer) || WORLD_PEER.test(f.flow.peer), `${c.name}: peer ${f.flow.peer}`);
  }
});
