// Address churn never changes a set's declaration (issue 9): pod and API-server events that used to flip an
// identity set between a hash set and an interval set (empty -> one address -> neighbours the model merges
// into a prefix -> one address -> empty) go through the incremental model and applyModel into a real kernel
// (the lab's node namespace). Every step must be an element delta with the first apply's structure hash,
// and the kernel's table must equal a fresh full render of the same cluster loaded beside it.

import test from 'ava';
import type { KubeObject, PolicyDocument } from '../../src/api/types.js';
import { buildInventory } from '../../src/inventory/build-inventory.js';
import { parseConfig } from '../../src/inventory/config.js';
import type { Inventory } from '../../src/inventory/types.js';
import { applyModel } from '../../src/nft/apply.js';
import { renderPlan } from '../../src/nft/render.js';
import { buildHostModel } from '../../src/policy/build-model.js';
import { IncrementalModel } from '../../src/policy/incremental-model.js';
import { inventoryEvents } from '../../src/policy/inventory-events.js';
import type { HostModel } from '../../src/policy/model.js';
import { ccnp } from '../helpers/policy-builders.js';
import { Lab, nftPath, nodeV4 } from './lab.js';
import { canonReference, canonTable } from './table-canon.js';

const table = 'nodewall';
const refTable = 'nwref';
const config = parseConfig('mode: enforce\nenableNodeSelectorLabels: true\n', 'set-declaration.yaml');

// Web pods, the API server (an entity of single addresses) and cluster (an entity that can hold prefixes).
const policy: PolicyDocument = ccnp('churn', {
  nodeSelector: {},
  ingress: [{ endpoints: [{ matchLabels: { app: 'web' } }] }, { entities: ['kube-apiserver'] }],
  egress: [{ entities: ['cluster'] }],
});

interface Step {
  readonly what: string;
  readonly web: readonly string[];
  readonly api: readonly string[];
  /** A prefix the model must hold at this step: the case that used to make an interval set. */
  readonly merged?: { readonly set: 'web' | 'api'; readonly prefix: string };
}

const steps: readonly Step[] = [
  { what: 'one web pod', web: ['198.51.100.4'], api: [] },
  { what: 'a neighbour: the model merges them into a /31', web: ['198.51.100.4', '198.51.100.5', '2001:db8:100::4'], api: ['192.0.2.50'], merged: { set: 'web', prefix: '198.51.100.4/31' } },
  { what: 'four neighbours (a /30), two API server addresses (a /31)', web: ['198.51.100.4', '198.51.100.5', '198.51.100.6', '198.51.100.7', '2001:db8:100::4', '2001:db8:100::5'], api: ['192.0.2.50', '192.0.2.51'], merged: { set: 'api', prefix: '192.0.2.50/31' } },
  { what: 'back to one address each', web: ['198.51.100.5'], api: ['192.0.2.51'] },
  { what: 'empty again', web: [], api: [] },
  { what: 'a /30 straight from empty', web: ['198.51.100.8', '198.51.100.9', '198.51.100.10', '198.51.100.11'], api: ['192.0.2.50', '192.0.2.51'], merged: { set: 'web', prefix: '198.51.100.8/30' } },
];

function objects(web: readonly string[], api: readonly string[]): KubeObject[] {
  return [
    { kind: 'Namespace', metadata: { name: 'default', labels: {} } },
    { kind: 'Node', metadata: { name: 'node-a', labels: { role: 'worker' } }, spec: { podCIDRs: [] }, status: { addresses: [{ type: 'InternalIP', address: nodeV4 }] } },
    ...web.map((ip, i): KubeObject => ({
      kind: 'Pod',
      metadata: { name: `web-${i}`, namespace: 'default', labels: { app: 'web' } },
      spec: {},
      status: { phase: 'Running', podIPs: [{ ip }] },
    })),
    // Another pod outside the selector, so that the cluster sets are never empty.
    { kind: 'Pod', metadata: { name: 'other', namespace: 'default', labels: { app: 'db' } }, spec: {}, status: { phase: 'Running', podIPs: [{ ip: '198.51.100.40' }] } },
    { kind: 'Endpoints', metadata: { name: 'kubernetes', namespace: 'default' }, subsets: [{ addresses: api.map((ip) => ({ ip })) }] },
  ];
}

function inventoryOf(web: readonly string[], api: readonly string[]): Inventory {
  return buildInventory(objects(web, api), config, { nodeName: 'node-a' }).inventory;
}

function setNameOf(model: HostModel, label: string): string {
  const found = Object.values(model.sets).find((s) => s.label === label);
  if (found === undefined) throw new Error(`no identity set labelled ${label}`);
  return found.name;
}

test('pod and API-server churn into and out of merged prefixes: element deltas only, the kernel equals a fresh render', async (t) => {
  t.timeout(300_000);
  const lab = await Lab.create(t, 'setdecl');
  const opts = { nftPath, table, mode: 'enforce', netns: lab.nodeNs } as const;
  let inv = inventoryOf([], []);
  const inc = new IncrementalModel([policy], inv, config, 'enforce');
  const webSet = setNameOf(inc.model, 'endpoints:{app=web}');
  const apiSet = setNameOf(inc.model, 'entity:kube-apiserver');
  const first = await applyModel(inc.model, opts);
  t.is(first.kind, 'full');
  let state = first.state;

  for (const [i, step] of steps.entries()) {
    const what = `step ${i} (${step.what})`;
    const next = inventoryOf(step.web, step.api);
    const events = inventoryEvents(inv, next);
    if (events === undefined) throw new Error(`${what}: the inventory change is not a sequence of events`);
    t.true(events.length > 0 && events.every((e) => e.kind === 'pod' || e.kind === 'pod-deleted' || e.kind === 'api-server'), `${what}: pod and API-server events only`);
    inv = next;
    const model = inc.apply(events).model;
    if (step.merged !== undefined) {
      const set = model.sets[step.merged.set === 'web' ? webSet : apiSet];
      t.true(set?.v4.includes(step.merged.prefix), `${what}: the model holds ${step.merged.prefix}, which used to make an interval set`);
    }

    const r = await applyModel(model, { ...opts, previous: state });
    t.is(r.kind, 'delta', `${what}: ${r.reason}`);
    t.deepEqual(r.chains, [], `${what}: no chain replaced`);
    t.is(r.structureHash, first.structureHash, `${what}: the structure hash is unchanged`);
    state = r.state;

    // The same cluster built from scratch, loaded beside it: the same sets, declarations and elements.
    const fresh = buildHostModel([policy], inv, config, 'enforce');
    t.is(renderPlan(fresh, { table, mode: 'enforce' }).structureHash, first.structureHash, `${what}: a fresh render has the first structure`);
    const built = await canonTable(lab.nodeNs, table);
    const ref = await canonReference(lab, renderPlan(fresh, { table: refTable, mode: 'enforce' }).script, refTable);
    t.deepEqual(built.sets, ref.sets, `${what}: sets and their elements`);
    t.deepEqual(built.chains, ref.chains, `${what}: chains`);
    t.deepEqual(built.rules, ref.rules, `${what}: rules`);
    // The pod set stays a hash set whatever it holds; an address of a merged prefix is one of its elements.
    const pods = built.sets.find((s) => s.includes(`"name":"${webSet}_v4"`));
    t.truthy(pods, `${what}: ${webSet}_v4 is declared`);
    t.notRegex(pods ?? '', /"flags"/, `${what}: ${webSet}_v4 is declared without flags`);
  }

  // Packets: the third address of the last /30 is let in, an address next to it is not.
  t.is(await lab.probeSure({ direction: 'ingress', peer: '198.51.100.10', proto: 'tcp', port: 22 }, 'allow'), 'allow');
  t.is(await lab.probe({ direction: 'ingress', peer: '198.51.100.12', proto: 'tcp', port: 22 }), 'deny');
});
