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

test('every case cites a section of the reference and flows use documentation addresses', (t) => {
  const doc = /^(192\.0\.2\.\d+|198\.51\.100\.\d+|203\.0\.113\.\d+|2001:db8:[0-9a-f:]*)$/;
  for (const c of cases) {
    t.regex(c.ref, /^§\d+(\.\d+)?$/, c.name);
    for (const f of c.flows) t.regex(f.flow.peer, doc, `${c.name}: ${f.flow.peer}`);
  }
});
