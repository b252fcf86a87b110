// The element delta taken from the incremental model's set deltas (render-delta.ts) against the
// reference, a full render and a diff of every set (render.ts + set-delta.ts): over random sequences of
// pod events (and policy changes, which the fast path must leave to the reference), the kernel ends up
// holding exactly the same elements.

import test from 'ava';
import { fc } from '@fast-check/ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import type { KubeObject, PolicyDocument } from '../../src/api/types.js';
import { StateBuilder } from '../../src/pipeline.js';
import type { HostModel } from '../../src/policy/model.js';
import { elementDelta, noteApplied } from '../../src/nft/render-delta.js';
import { renderPlan, type RenderedRuleset } from '../../src/nft/render.js';
import { planApply, type PreviousState, type SetDelta } from '../../src/nft/set-delta.js';
import { CONFORMANCE_NODE, caseConfig, loadBaseCluster, loadConformanceCases } from '../helpers/conformance.js';

const cluster = loadBaseCluster();
const cases = loadConformanceCases().filter((c) => c.cluster === 'base');
/** Policies of many conformance cases at once: endpoint, node, entity and CIDR peers side by side. */
const policyGroups: PolicyDocument[][] = [];
for (let i = 0; i < cases.length; i += Math.ceil(cases.length / 6)) {
  const group: PolicyDocument[] = [];
  const seen = new Set<string>();
  for (const c of cases.slice(i, i + Math.ceil(cases.length / 6))) {
    for (const p of loadManifestText(c.manifests, `${c.file}:${c.line}`).policies) {
      if (seen.has(p.name)) continue;
      seen.add(p.name);
      group.push(p);
    }
  }
  policyGroups.push(group);
}
const config = caseConfig(cases[0]!);
const opts = { table: 'nodewall', mode: 'enforce' as const };

const labelSets = [{ app: 'web' }, { app: 'server', zgroup: 'testServer' }, { app: 'db' }, { 'k8s-app': 'kube-dns' }, { app: 'client', zgroup: 'testClient' }];
const namespaces = ['default', 'team-a', 'kube-system'];

/** Pod i with labels l and address a (198.51.100.160-223 and 2001:db8:100::a0-df: inside the pod CIDRs). */
function podObject(i: number, l: number, a: number, v6: boolean): KubeObject {
  return {
    kind: 'Pod',
    metadata: { name: `rnd-${i}`, namespace: namespaces[i % namespaces.length]!, labels: labelSets[l]! },
    spec: { nodeName: 'node-b' },
    status: { phase: 'Running', podIPs: [{ ip: `198.51.100.${160 + a}` }, ...(v6 ? [{ ip: `2001:db8:100::${(160 + a).toString(16)}` }] : [])] },
  };
}

const event = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('pod' as const), i: fc.nat(11), l: fc.nat(labelSets.length - 1), a: fc.nat(63), v6: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), i: fc.nat(11) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('policies' as const), g: fc.nat(policyGroups.length - 1) }) },
);

/** The sets of a ruleset as sorted element lists, by name. */
function elements(r: { readonly sets: ReadonlyMap<string, { readonly elements: readonly string[] }> }): Map<string, string> {
  return new Map([...r.sets].map(([n, s]) => [n, [...s.elements].sort().join(' ')]));
}

/** `prev`'s sets with the deltas applied, sorted. */
function applied(prev: PreviousState, deltas: readonly SetDelta[]): Map<string, string> {
  const out = new Map<string, Set<string>>([...prev.sets].map(([n, s]) => [n, new Set(s.elements)]));
  for (const d of deltas) {
    const s = out.get(d.set);
    if (s === undefined) throw new Error(`delta for unknown set ${d.set}`);
    for (const e of d.remove) if (!s.delete(e)) throw new Error(`${d.set}: removes ${e}, which it does not hold`);
    for (const e of d.add) {
      if (s.has(e)) throw new Error(`${d.set}: adds ${e}, which it holds already`);
      s.add(e);
    }
  }
  return new Map([...out].map(([n, s]) => [n, [...s].sort().join(' ')]));
}

const count = (r: RenderedRuleset): number => [...r.sets.values()].reduce((n, s) => n + s.elements.length, 0);

test('element deltas from the model equal a full render and diff, event after event', (t) => {
  let fast = 0;
  let fallback = 0;
  fc.assert(
    // `skip`: the model of this step is not applied (a refused pass, a second build in one pass): the next delta spans several steps.
    fc.property(fc.array(fc.tuple(event, fc.boolean()), { minLength: 1, maxLength: 25 }), fc.nat(policyGroups.length - 1), (events, g0) => {
      const builder = new StateBuilder();
      const pods = new Map<number, KubeObject>();
      let policies = policyGroups[g0]!;
      const build = (): HostModel => builder.build({ config, nodeName: CONFORMANCE_NODE, load: { policies: [...cluster.policies, ...policies], objects: [...cluster.objects, ...pods.values()], problems: [] } }).model;
      let model = build();
      let prev: RenderedRuleset = renderPlan(model, opts);
      noteApplied(prev, model, opts, count(prev));
      for (const [e, skip] of events) {
        if (e.kind === 'pod') pods.set(e.i, podObject(e.i, e.l, e.a, e.v6));
        else if (e.kind === 'delete') pods.delete(e.i);
        else policies = policyGroups[e.g]!;
        model = build();
        const reference = renderPlan(model, opts);
        const plan = planApply(prev, reference);
        const got = elementDelta(model, opts, prev, builder.modelDeltas);
        if (got === undefined) {
          fallback++;
          if (skip) continue;
          prev = reference;
          noteApplied(prev, model, opts, count(prev));
          continue;
        }
        fast++;
        if (skip) continue;
        // Same structure: the delta's marker flush checks exactly this.
        if (got.rendered.structureHash !== reference.structureHash || prev.structureHash !== reference.structureHash) throw new Error('structure differs');
        // The kernel after the fast delta holds what the reference ruleset holds, and what the reference delta gives.
        const want = elements(reference);
        const fromFast = applied(prev, got.deltas);
        if (JSON.stringify([...fromFast]) !== JSON.stringify([...want])) throw new Error(`fast delta: ${JSON.stringify(got.deltas)}`);
        if (plan.kind === 'delta' && JSON.stringify([...applied(prev, plan.deltas)]) !== JSON.stringify([...want])) throw new Error('reference delta differs');
        if ((plan.kind === 'noop') !== (got.deltas.length === 0)) throw new Error(`reference ${plan.kind}, fast ${got.deltas.length} deltas`);
        // The derived ruleset (next pass's previous state) holds the same elements, count and full script.
        if (JSON.stringify([...elements(got.rendered)]) !== JSON.stringify([...want])) throw new Error('derived sets differ');
        if (got.elements !== count(reference)) throw new Error(`element count ${got.elements}, want ${count(reference)}`);
        if (got.rendered.script !== reference.script) throw new Error('script differs');
        prev = got.rendered;
        noteApplied(prev, model, opts, got.elements);
      }
      return true;
    }),
    { numRuns: 60 },
  );
  t.true(fast > 0, 'the fast path was taken');
  t.true(fallback > 0, 'policy changes fell back to render + diff');
});

test('no element delta from a state rendered for another model, options or an unknown state', (t) => {
  const builder = new StateBuilder();
  const objects = [...cluster.objects];
  const input = (extra: KubeObject[]) => ({ config, nodeName: CONFORMANCE_NODE, load: { policies: [...cluster.policies, ...policyGroups[0]!], objects: [...objects, ...extra], problems: [] } });
  const m0 = builder.build(input([])).model;
  const r0 = renderPlan(m0, opts);
  const m1 = builder.build(input([podObject(1, 0, 1, false)])).model;
  t.not(builder.modelDeltas(m1), undefined);
  // Not noted as applied: unknown.
  t.is(elementDelta(m1, opts, r0, builder.modelDeltas), undefined);
  noteApplied(r0, m0, opts, count(r0));
  t.not(elementDelta(m1, opts, r0, builder.modelDeltas), undefined);
  // Other mode or table: the structure is another one.
  t.is(elementDelta(m1, { ...opts, mode: 'audit' }, r0, builder.modelDeltas), undefined);
  t.is(elementDelta(m1, { ...opts, table: 'other' }, r0, builder.modelDeltas), undefined);
  // A kernel read-back (no RenderedRuleset) is never trusted.
  t.is(elementDelta(m1, opts, { structureHash: r0.structureHash, sets: r0.sets }, builder.modelDeltas), undefined);
  // A model not reached from m0 by element changes (a fresh builder's): none.
  const other = new StateBuilder().build(input([podObject(1, 0, 1, false)])).model;
  t.is(elementDelta(other, opts, r0, builder.modelDeltas), undefined);
  // Two steps from m0: composed.
  const m2 = builder.build(input([podObject(1, 0, 2, false), podObject(2, 1, 3, true)])).model;
  const two = elementDelta(m2, opts, r0, builder.modelDeltas);
  t.not(two, undefined);
  t.deepEqual(elements(two!.rendered), elements(renderPlan(m2, opts)));
});
