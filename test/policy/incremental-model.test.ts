// The incremental model against the reference: random sequences of cluster events (pods, nodes,
// namespaces, CCNPs, API server addresses added, changed and deleted) go through buildInventory,
// inventoryEvents/policyEvents and IncrementalModel.apply; after every step the model must equal
// buildHostModel of the same state, the rendered ruleset must equal the reference's, and the
// reported element deltas must turn the previous sets into the new ones.

import { deepStrictEqual } from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import type { KubeObject, LabelSelector, PeerRule, PolicyDocument, Requirement } from '../../src/api/types.js';
import { buildInventory } from '../../src/inventory/build-inventory.js';
import { parseConfig } from '../../src/inventory/config.js';
import type { Inventory, NodewallConfig } from '../../src/inventory/types.js';
import { renderPlan } from '../../src/nft/render.js';
import { buildHostModel } from '../../src/policy/build-model.js';
import { IncrementalModel, IncrementalModelError, type ModelUpdate } from '../../src/policy/incremental-model.js';
import { inventoryEvents, policyEvents } from '../../src/policy/inventory-events.js';
import type { HostModel } from '../../src/policy/model.js';
import { addressPools } from '../../src/policy/resolve-peers.js';
import { poolIndexDisagreement } from '../helpers/pool-index-reference.js';
import { buildCaseState, loadConformanceCases } from '../helpers/conformance.js';
import { ccnp, type RuleSpec } from '../helpers/policy-builders.js';

const SELF = 'node-a';
const namespaces = ['default', 'prod', 'kube-system'] as const;
const nodeNames = [SELF, 'node-b', 'node-c', 'node-d'] as const;

// ---- cluster objects ----

const labelsArb = (vocab: Readonly<Record<string, readonly string[]>>): fc.Arbitrary<Record<string, string>> =>
  fc.record(Object.fromEntries(Object.entries(vocab).map(([k, vs]) => [k, fc.constantFrom(...vs)])), { requiredKeys: [] }) as fc.Arbitrary<Record<string, string>>;

const podLabelVocab = { app: ['web', 'db', 'dns'], tier: ['fe', 'be'], 'k8s-app': ['kube-dns'], 'pod-template-hash': ['abc', 'def'] };
const nsLabelVocab = { team: ['a', 'b'], env: ['x', 'y'] };
const nodeLabelVocab = { zone: ['z1', 'z2'], 'node-role.kubernetes.io/control-plane': [''], pool: ['p1', 'p2'] };

// Pod addresses from a /27 and its v6 twin: neighbours merge into blocks; a few collide with node addresses.
const podV4 = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 31 }).map((i) => `198.51.100.${i}`) }, { weight: 1, arbitrary: fc.constantFrom('192.0.2.2', '192.0.2.3') });
const podV6 = fc.integer({ min: 0, max: 15 }).map((i) => `2001:db8:100::${i.toString(16)}`);

interface PodSpec {
  readonly ns: string;
  readonly labels: Record<string, string>;
  readonly v4: string[];
  readonly v6: string[];
  readonly hostNetwork: boolean;
  readonly sa: string | undefined;
}
const podArb: fc.Arbitrary<PodSpec> = fc.record({
  ns: fc.constantFrom(...namespaces),
  labels: labelsArb(podLabelVocab),
  v4: fc.array(podV4, { maxLength: 2 }),
  v6: fc.array(podV6, { maxLength: 1 }),
  hostNetwork: fc.integer({ min: 0, max: 9 }).map((i) => i === 0),
  sa: fc.option(fc.constantFrom('sa1', 'sa2'), { nil: undefined }),
});

interface NodeSpec {
  readonly labels: Record<string, string>;
  readonly v4: string[];
  readonly podCIDR: string | undefined;
  readonly health: string | undefined;
}
const nodeArb: fc.Arbitrary<NodeSpec> = fc.record({
  labels: labelsArb(nodeLabelVocab),
  v4: fc.array(fc.integer({ min: 2, max: 15 }).map((i) => `192.0.2.${i}`), { maxLength: 2 }),
  podCIDR: fc.option(fc.constantFrom('198.51.100.0/28', '198.51.100.16/29', '2001:db8:100::/124'), { nil: undefined }),
  health: fc.option(fc.integer({ min: 100, max: 103 }).map((i) => `192.0.2.${i}`), { nil: undefined }),
});

// ---- policies ----

const keyArb = fc.constantFrom('app', 'k8s:app', 'tier', 'k8s-app', 'io.kubernetes.pod.namespace', 'k8s:io.cilium.k8s.namespace.labels.team', 'pod-template-hash');
const requirementArb: fc.Arbitrary<Requirement> = fc.oneof(
  fc.record({ key: keyArb, operator: fc.constantFrom('In', 'NotIn'), values: fc.array(fc.constantFrom('web', 'db', 'fe', 'kube-dns', 'prod', 'a', 'abc'), { minLength: 1, maxLength: 2 }) }),
  fc.record({ key: keyArb, operator: fc.constantFrom('Exists', 'DoesNotExist') }),
  fc.constant({ key: 'reserved:remote-node', operator: 'Exists' }),
  fc.constant({ key: 'reserved:host', operator: 'Exists' }),
);
const selectorArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.record({ matchLabels: labelsArb({ app: ['web', 'db'], tier: ['fe'], 'io.kubernetes.pod.namespace': ['prod', 'kube-system'] }) }),
  fc.record({ matchExpressions: fc.array(requirementArb, { minLength: 1, maxLength: 2 }) }),
  fc.constant({}),
);
const nodeSelectorPeerArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.record({ matchLabels: labelsArb({ zone: ['z1', 'z2'], pool: ['p1'] }) }),
  fc.constant({ matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' as const }] }),
);
const peerArb: fc.Arbitrary<PeerRule> = fc.oneof(
  fc.record({ endpoints: fc.array(selectorArb, { minLength: 1, maxLength: 2 }) }),
  fc.record({ nodes: fc.array(nodeSelectorPeerArb, { minLength: 1, maxLength: 1 }) }),
  fc.record({ entities: fc.array(fc.constantFrom('remote-node', 'health', 'cluster', 'kube-apiserver', 'world', 'host', 'ingress'), { minLength: 1, maxLength: 2 }) }),
  fc.record({ cidr: fc.constantFrom(['203.0.113.0/24'], ['192.0.2.0/28', '198.51.100.0/24']) }),
);
const ruleArb: fc.Arbitrary<RuleSpec> = fc.record({
  nodeSelector: fc.constantFrom<LabelSelector>({}, { matchLabels: { role: 'worker' } }, { matchLabels: { role: 'control-plane' } }),
  ingress: fc.array(peerArb, { maxLength: 2 }),
  egressDeny: fc.array(peerArb, { maxLength: 1 }),
});

/** Valid CCNPs of the conformance cases: realistic selectors, entities and CIDR rules. */
function conformancePolicies(): PolicyDocument[] {
  const out = new Map<string, PolicyDocument>();
  for (const c of loadConformanceCases()) {
    if (c.cluster !== 'base' || Object.keys(c.config).length > 0) continue;
    for (const p of buildCaseState(c).valid) if (!out.has(p.name)) out.set(p.name, p);
  }
  return [...out.values()];
}

// ---- the state and the events ----

type Op =
  | { op: 'pod'; i: number; spec: PodSpec }
  | { op: 'pod-delete'; i: number }
  | { op: 'node'; i: number; spec: NodeSpec }
  | { op: 'node-delete'; i: number }
  | { op: 'namespace'; i: number; labels: Record<string, string> }
  | { op: 'policy'; i: number; rules: RuleSpec[] }
  | { op: 'conformance-policy'; i: number; on: boolean }
  | { op: 'api'; addresses: string[] }
  | { op: 'self-labels'; labels: Record<string, string> };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('pod' as const), i: fc.integer({ min: 0, max: 9 }), spec: podArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('pod-delete' as const), i: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('node' as const), i: fc.integer({ min: 1, max: 3 }), spec: nodeArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('node-delete' as const), i: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('namespace' as const), i: fc.integer({ min: 0, max: 2 }), labels: labelsArb(nsLabelVocab) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('policy' as const), i: fc.integer({ min: 0, max: 3 }), rules: fc.array(ruleArb, { minLength: 0, maxLength: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('conformance-policy' as const), i: fc.nat(), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('api' as const), addresses: fc.array(fc.constantFrom('192.0.2.2', '192.0.2.50', '192.0.2.51'), { maxLength: 2 }) }) },
  // This node relabelled, nothing else about it changed.
  { weight: 1, arbitrary: fc.record({ op: fc.constant('self-labels' as const), labels: labelsArb(nodeLabelVocab) }) },
);

class World {
  readonly pods = new Map<number, PodSpec>();
  readonly nodes = new Map<number, NodeSpec>();
  readonly ns = new Map<number, Record<string, string>>();
  readonly policies = new Map<string, PolicyDocument>();
  api: string[] = ['192.0.2.2'];
  private version = 0;

  private readonly pool: readonly PolicyDocument[];

  constructor(pool: readonly PolicyDocument[]) {
    this.pool = pool;
    this.nodes.set(0, { labels: { role: 'worker' }, v4: ['192.0.2.1'], podCIDR: '198.51.100.0/29', health: '192.0.2.100' });
  }

  apply(o: Op): void {
    switch (o.op) {
      case 'pod': this.pods.set(o.i, o.spec); break;
      case 'pod-delete': this.pods.delete(o.i); break;
      case 'node': this.nodes.set(o.i, o.spec); break;
      case 'node-delete': this.nodes.delete(o.i); break;
      case 'namespace': this.ns.set(o.i, o.labels); break;
      case 'api': this.api = o.addresses; break;
      case 'self-labels': {
        const self = this.nodes.get(0);
        if (self !== undefined) this.nodes.set(0, { ...self, labels: o.labels });
        break;
      }
      case 'policy': {
        const name = `gen-${o.i}`;
        if (o.rules.length === 0) this.policies.delete(name);
        else {
          const doc = ccnp(name, o.rules.length === 1 ? (o.rules[0] as RuleSpec) : o.rules);
          this.policies.set(name, { ...doc, hash: `${name}-${++this.version}` });
        }
        break;
      }
      case 'conformance-policy': {
        const p = this.pool[o.i % this.pool.length];
        if (p === undefined) break;
        if (o.on) this.policies.set(p.name, p);
        else this.policies.delete(p.name);
        break;
      }
    }
  }

  objects(): KubeObject[] {
    const out: KubeObject[] = [];
    namespaces.forEach((name, i) => out.push({ kind: 'Namespace', metadata: { name, labels: this.ns.get(i) ?? {} } }));
    for (const [i, n] of this.nodes) {
      const name = nodeNames[i] ?? `node-${i}`;
      const labels = i === 0 ? { ...n.labels, role: 'worker' } : n.labels;
      out.push({
        kind: 'Node',
        metadata: { name, labels },
        spec: { podCIDRs: n.podCIDR === undefined ? [] : [n.podCIDR] },
        status: { addresses: n.v4.map((address) => ({ type: 'InternalIP', address })) },
      });
      if (n.health !== undefined) out.push({ kind: 'CiliumNode', metadata: { name }, spec: { health: { ipv4: n.health } } });
    }
    for (const [i, p] of this.pods) {
      out.push({
        kind: 'Pod',
        metadata: { name: `pod-${i}`, namespace: p.ns, labels: p.labels },
        spec: { hostNetwork: p.hostNetwork, ...(p.sa === undefined ? {} : { serviceAccountName: p.sa }) },
        status: { phase: 'Running', podIPs: [...p.v4, ...p.v6].map((ip) => ({ ip })) },
      });
    }
    out.push({ kind: 'Endpoints', metadata: { name: 'kubernetes', namespace: 'default' }, subsets: [{ addresses: this.api.map((ip) => ({ ip })) }] });
    return out;
  }

  valid(): PolicyDocument[] {
    return [...this.policies.values()];
  }
}

const config: NodewallConfig = parseConfig(
  'mode: enforce\nenableNodeSelectorLabels: true\nclusterPodCIDRs: ["198.51.100.128/25"]\n',
  'incremental.yaml',
);

// The other verdict-changing settings: CIDR peers match node addresses, no label filter, always enforced, audit.
const otherConfig: NodewallConfig = parseConfig(
  'mode: audit\nenableNodeSelectorLabels: true\npolicyCIDRMatchMode: nodes\nlabelFilter: none\npolicyEnforcement: always\nenableNonDefaultDenyPolicies: false\n',
  'incremental-other.yaml',
);

function inventoryOf(w: World, cfg: NodewallConfig = config): Inventory {
  return buildInventory(w.objects(), cfg, { nodeName: SELF }).inventory;
}

function reference(w: World, inv: Inventory, cfg: NodewallConfig = config): HostModel {
  return buildHostModel(w.valid(), inv, cfg, cfg.mode);
}

/** The previous model's sets with the update's deltas applied, for every set in both models. */
function deltasExplain(before: HostModel, update: ModelUpdate): string | undefined {
  const after = update.model;
  for (const [name, set] of Object.entries(after.sets)) {
    const old = before.sets[name];
    if (old === undefined) continue;
    for (const [family, key] of [['ipv4', 'v4'], ['ipv6', 'v6']] as const) {
      const d = update.setDeltas.find((x) => x.set === name && !x.exclusion && x.family === family);
      const got = new Set(old[key]);
      for (const r of d?.remove ?? []) got.delete(r);
      for (const a of d?.add ?? []) got.add(a);
      if ([...got].sort().join() !== [...set[key]].sort().join()) return `set ${name} ${family}: deltas give ${[...got].join(' ')}, model has ${set[key].join(' ')}`;
    }
  }
  for (const [name, ex] of [['cluster', 'cluster'], ['cluster_non_node', 'cluster_non_node']] as const) {
    for (const [family, key] of [['ipv4', 'v4'], ['ipv6', 'v6']] as const) {
      const d = update.setDeltas.find((x) => x.set === name && x.exclusion && x.family === family);
      const got = new Set(before.exclusions[ex][key]);
      for (const r of d?.remove ?? []) got.delete(r);
      for (const a of d?.add ?? []) got.add(a);
      if ([...got].sort().join() !== [...after.exclusions[ex][key]].sort().join()) return `exclusion ${name} ${family}: deltas disagree`;
    }
  }
  return undefined;
}

const pool = conformancePolicies();

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

test('the conformance cases give the generator a pool of realistic policies', (t) => {
  t.true(pool.length >= 20, `only ${pool.length} conformance policies`);
});

function differential(cfg: NodewallConfig, seed: number, numRuns: number): { steps: number; deltaSteps: number; policySteps: number; selfSteps: number } {
  let steps = 0;
  let deltaSteps = 0;
  let policySteps = 0;
  let selfSteps = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
      const w = new World(pool);
      let inv = inventoryOf(w, cfg);
      let valid = w.valid();
      let inc = new IncrementalModel(valid, inv, cfg, cfg.mode);
      deepStrictEqual(inc.model, reference(w, inv, cfg));
      for (const o of ops) {
        w.apply(o);
        const nextInv = inventoryOf(w, cfg);
        const nextValid = w.valid();
        const events = inventoryEvents(inv, nextInv);
        const before = inc.model;
        let update: ModelUpdate | undefined;
        if (events === undefined) {
          inc = new IncrementalModel(nextValid, nextInv, cfg, cfg.mode);
        } else {
          if (events.some((e) => e.kind === 'self-labels')) selfSteps++;
          update = inc.apply([...events, ...policyEvents(valid, nextValid)]);
          check(update.model === inc.model, 'update.model is the model');
        }
        inv = nextInv;
        valid = nextValid;
        const want = reference(w, inv, cfg);
        deepStrictEqual(inc.model, want, `model after ${JSON.stringify(o)}`);
        // A fresh inventory object: addressPools caches per object.
        deepStrictEqual(inc.addressPools(), addressPools({ ...inv }), `address pools after ${JSON.stringify(o)}`);
        // The live pool index (what lint asks) answers as the reference pools do.
        const wrongOverlap = poolIndexDisagreement(inc.poolIndex().index, addressPools({ ...inv }));
        check(wrongOverlap === undefined, `pool index: ${wrongOverlap} after ${JSON.stringify(o)}`);
        check(!inc.degraded, 'not degraded');
        const opts = { table: 'nodewall', mode: cfg.mode };
        deepStrictEqual(renderPlan(inc.model, opts).script, renderPlan(want, opts).script, `ruleset after ${JSON.stringify(o)}`);
        if (update !== undefined) {
          if (update.structureChanged) policySteps++;
          else {
            deltaSteps++;
            // Without a structure change entries and set names are the same: the deltas are all that changed.
            check(inc.model.ingress === before.ingress && inc.model.egress === before.egress, 'element-only step keeps the entries');
            deepStrictEqual(Object.keys(inc.model.sets), Object.keys(before.sets), 'element-only step keeps the set names');
          }
          const bad = deltasExplain(before, update);
          check(bad === undefined, `${bad} after ${JSON.stringify(o)}`);
        }
        steps++;
      }
    }),
    { seed, numRuns, includeErrorInReport: true },
  );
  return { steps, deltaSteps, policySteps, selfSteps };
}

test('after every event the incremental model, its ruleset and its deltas equal a full build of the same state', (t) => {
  const r = differential(config, 20261206, 150);
  // The sequences exercised both kinds of step.
  t.true(r.deltaSteps > 100 && r.policySteps > 100, `delta steps ${r.deltaSteps}, policy steps ${r.policySteps}, of ${r.steps}`);
  // This node relabelled (its labels only) is an incremental step too.
  t.true(r.selfSteps > 20, `${r.selfSteps} steps relabelled this node`);
});

test('the same with CIDR match mode nodes, no label filter, enforcement always, no non-default-deny policies, audit mode', (t) => {
  const r = differential(otherConfig, 9, 60);
  t.true(r.deltaSteps > 30 && r.policySteps > 30, `delta steps ${r.deltaSteps}, policy steps ${r.policySteps}, of ${r.steps}`);
});



test('an event for this node itself is refused with a typed error: the caller builds anew', (t) => {
  const w = new World(pool);
  const inv = inventoryOf(w);
  const inc = new IncrementalModel(w.valid(), inv, config, config.mode);
  const err = t.throws(() => inc.applyEvent({ kind: 'node', node: inv.self }));
  t.true(err instanceof IncrementalModelError);
  // Its labels alone: an event of their own; anything else about it: build anew.
  t.deepEqual(inventoryEvents(inv, { ...inv, self: { ...inv.self, labels: { ...inv.self.labels, zone: 'z9' } } }), [{ kind: 'self-labels', labels: { ...inv.self.labels, zone: 'z9' } }]);
  t.is(inventoryEvents(inv, { ...inv, self: { ...inv.self, addresses: [...inv.self.addresses, '192.0.2.77'] } }), undefined);
});

test("this node's labels moving it into and out of policies' node selectors: entries follow, equal to a full build", (t) => {
  const w = new World(pool);
  w.apply({ op: 'policy', i: 0, rules: [{ nodeSelector: { matchLabels: { zone: 'z2' } }, ingress: [{ endpoints: [{ matchLabels: { app: 'web' } }] }] }] });
  w.apply({ op: 'pod', i: 1, spec: { ns: 'prod', labels: { app: 'web' }, v4: ['198.51.100.9'], v6: [], hostNetwork: false, sa: undefined } });
  let inv = inventoryOf(w);
  const inc = new IncrementalModel(w.valid(), inv, config, config.mode);
  for (const zone of ['z2', 'z1', 'z2']) {
    const next = { ...inv, self: { ...inv.self, labels: { ...inv.self.labels, zone } } };
    const events = inventoryEvents(inv, next);
    t.deepEqual(events?.map((e) => e.kind), ['self-labels']);
    const update = inc.apply(events ?? []);
    inv = next;
    t.deepEqual(update.model, buildHostModel(w.valid(), inv, config, config.mode), `zone ${zone}`);
    t.true(update.structureChanged);
    t.is(update.model.ingress.entries.some((e) => e.policy === w.valid()[0]?.name), zone === 'z2', `zone ${zone}`);
  }
});

test('a pod event changes only the sets selecting the pod and hands out new arrays for them', (t) => {
  const w = new World(pool);
  w.apply({ op: 'policy', i: 0, rules: [{ nodeSelector: {}, ingress: [{ endpoints: [{ matchLabels: { app: 'web' } }] }, { endpoints: [{ matchLabels: { app: 'db' } }] }] }] });
  w.apply({ op: 'pod', i: 1, spec: { ns: 'prod', labels: { app: 'db' }, v4: ['198.51.100.9'], v6: [], hostNetwork: false, sa: undefined } });
  let inv = inventoryOf(w);
  const inc = new IncrementalModel(w.valid(), inv, config, config.mode);
  const before = inc.model;
  w.apply({ op: 'pod', i: 2, spec: { ns: 'prod', labels: { app: 'web' }, v4: ['198.51.100.3'], v6: [], hostNetwork: false, sa: undefined } });
  const next = inventoryOf(w);
  const update = inc.apply(inventoryEvents(inv, next) ?? []);
  inv = next;
  t.false(update.structureChanged);
  const webSet = Object.values(update.model.sets).find((s) => s.label === 'endpoints:{app=web}');
  const dbSet = Object.values(update.model.sets).find((s) => s.label === 'endpoints:{app=db}');
  t.deepEqual(webSet?.v4, ['198.51.100.3/32']);
  t.deepEqual(before.sets[webSet?.name ?? '']?.v4, []);
  t.is(update.model.sets[dbSet?.name ?? ''], before.sets[dbSet?.name ?? ''], 'an unaffected set is the same object');
  t.deepEqual(
    update.setDeltas.map((d) => `${d.set} ${d.family} +${d.add.join(',')} -${d.remove.join(',')}`),
    [`${webSet?.name} ipv4 +198.51.100.3/32 -`],
  );
  t.deepEqual(update.model, reference(w, inv));
});

test("the pod index gives the same answers when the inventory's pods are not a PodList's array (checked and sorted, not taken as sorted)", (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 5, maxLength: 25 }), fc.array(opArb, { minLength: 1, maxLength: 15 }), (setup, ops) => {
      const w = new World(pool);
      for (const o of setup) w.apply(o);
      let inv = inventoryOf(w);
      const trusted = new IncrementalModel(w.valid(), inv, config, config.mode);
      // A reversed copy: out of order, and not an array PodList handed out.
      const checked = new IncrementalModel(w.valid(), { ...inv, pods: [...inv.pods].reverse() }, config, config.mode);
      deepStrictEqual(checked.model, trusted.model);
      for (const o of ops) {
        w.apply(o);
        const next = inventoryOf(w);
        const changes = inventoryEvents(inv, next);
        if (changes === undefined) return true; // a change the model does not take (built anew)
        const events = [...changes, ...policyEvents(trusted.policyDocuments(), w.valid())];
        inv = next;
        try {
          deepStrictEqual(checked.apply(events).model, trusted.apply(events).model);
        } catch (e) {
          if (e instanceof IncrementalModelError) return true;
          throw e;
        }
      }
      deepStrictEqual([...checked.inventory().pods].sort(byKey), [...trusted.inventory().pods].sort(byKey));
      return true;
    }),
    { numRuns: 60 },
  );
  t.pass();
});

const byKey = (a: { namespace: string; name: string }, b: { namespace: string; name: string }): number => {
  const x = `${a.namespace}/${a.name}`;
  const y = `${b.namespace}/${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
};
