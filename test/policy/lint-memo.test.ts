// lintPolicies keeps memos between calls (per policy list, per document, per API server address):
// with them it must give exactly what a fresh lint gives, and a change of any input they depend on
// must show in the result.

import test from 'ava';
import { fc } from '@fast-check/ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import type { Problem } from '../../src/api/problem.js';
import type { PolicyDocument } from '../../src/api/types.js';
import type { EngineConfig, Inventory } from '../../src/inventory/types.js';
import { buildHostModel } from '../../src/policy/build-model.js';
import { clearLintMemo, lintPolicies } from '../../src/policy/lint.js';
import type { HostModel } from '../../src/policy/model.js';
import { baseInventory, config, pod } from '../helpers/policy-builders.js';

const head = (name: string) => `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: ${name}
`;

/** Policies that each give some warning under some inventory or config. */
const yaml = [
  `${head('ssh')}spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [remote-node]
    toPorts:
    - ports: [{ port: "10250", protocol: TCP }]
`,
  `${head('dns-only')}spec:
  nodeSelector: {}
  egress:
  - toEntities: [world]
    toPorts:
    - ports: [{ port: "53", protocol: UDP }]
`,
  `${head('to-api')}spec:
  nodeSelector: {}
  egress:
  - toCIDR: [192.0.2.50/32]
    toPorts:
    - ports: [{ port: "443", protocol: TCP }]
`,
  `${head('to-pods')}spec:
  nodeSelector: {}
  egress:
  - toEndpoints: [{ matchLabels: { app: api } }]
    toPorts:
    - ports: [{ port: "443", protocol: TCP }]
`,
  `${head('cidr-wide')}spec:
  nodeSelector: {}
  ingress:
  - fromCIDR: [198.51.100.0/24]
`,
  `${head('cidr-narrow')}spec:
  nodeSelector: {}
  ingress:
  - fromCIDR: [203.0.113.0/28]
`,
  `${head('zone-x')}spec:
  nodeSelector:
    matchLabels: { zone: x }
  ingress:
  - fromEntities: [world]
`,
  `${head('not-dd')}spec:
  nodeSelector: {}
  enableDefaultDeny: { ingress: false }
  ingress:
  - fromEntities: [world]
`,
];
const docs: readonly PolicyDocument[] = yaml.map((y, i) => {
  const r = loadManifestText(y, `p${i}.yaml`);
  if (r.policies.length !== 1) throw new Error(`policy ${i}: ${JSON.stringify(r.problems)}`);
  return r.policies[0]!;
});

const base = baseInventory();
/** Inventories a pod event, a node label or the API server addresses tell apart. */
const inventories: readonly Inventory[] = [
  base,
  // A pod (app: api) at an address inside cidr-narrow's prefix; it is also a to-pods peer.
  { ...base, pods: [...base.pods, pod('default', 'api-1', { app: 'api' }, ['203.0.113.5'])] },
  // The API server address is a pod's now (to-pods allows 443 to it).
  { ...base, pods: [...base.pods, pod('default', 'api-2', { app: 'api' }, ['192.0.2.50'])], apiServerAddresses: ['192.0.2.50'] },
  // A node labelled zone: x (zone-x selects it).
  { ...base, remoteNodes: base.remoteNodes.map((n, i) => (i === 0 ? { ...n, labels: { ...n.labels, zone: 'x' } } : n)) },
  { ...base, apiServerAddresses: [] },
];
const configs: readonly EngineConfig[] = [config(), config({ enableNonDefaultDenyPolicies: false }), config({ policyCIDRMatchMode: 'nodes' })];

const step = fc.record({
  policies: fc.subarray(docs.map((_, i) => i)),
  inventory: fc.nat(inventories.length - 1),
  config: fc.nat(configs.length - 1),
  withModel: fc.boolean(),
});

const run = (s: { policies: number[]; inventory: number; config: number; withModel: boolean }): Problem[] => {
  const policies = s.policies.map((i) => docs[i]!);
  const inv = inventories[s.inventory]!;
  const cfg = configs[s.config]!;
  const model = s.withModel ? buildHostModel(policies, inv, cfg, 'enforce') : undefined;
  return lintPolicies(policies, inv, cfg, model);
};

test('lint with its memos equals a fresh lint over random sequences of policies, inventories and configs', (t) => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), (steps) => {
      clearLintMemo();
      for (const s of steps) {
        const memoised = run(s);
        clearLintMemo();
        const fresh = run(s);
        if (JSON.stringify(memoised) !== JSON.stringify(fresh)) return false;
        // Next step: with memos from this one (and a repeat of this step hits all of them).
        const again = run(s);
        if (JSON.stringify(again) !== JSON.stringify(fresh)) return false;
      }
      return true;
    }),
    { numRuns: 150 },
  );
  t.pass();
});

const count = (ps: readonly Problem[], code: string): number => ps.filter((p) => p.code === `lint/${code}`).length;

test('the API server verdict memo: same entries, a set losing or gaining the address flips the warning', (t) => {
  clearLintMemo();
  const policies = [docs[1]!, docs[2]!];
  const inv: Inventory = { ...base, apiServerAddresses: ['192.0.2.50'] };
  const cfg = config();
  const allowed = buildHostModel(policies, inv, cfg, 'enforce');
  t.is(count(lintPolicies(policies, inv, cfg, allowed), 'apiserver-blocked'), 0);
  // The same model with the address taken out of every set (as a pod event would change elements): entries are the same objects.
  const sets: Record<string, HostModel['sets'][string]> = {};
  for (const [name, s] of Object.entries(allowed.sets)) sets[name] = { ...s, v4: s.v4.filter((e) => !e.startsWith('192.0.2.50')) };
  const without: HostModel = { ...allowed, sets };
  t.is(without.egress, allowed.egress);
  t.is(count(lintPolicies(policies, inv, cfg, without), 'apiserver-blocked'), 1);
  t.is(count(lintPolicies(policies, inv, cfg, allowed), 'apiserver-blocked'), 0);
  // Other entries (a policy change), same sets: decided anew.
  const dnsOnly = buildHostModel([docs[1]!], inv, cfg, 'enforce');
  t.is(count(lintPolicies([docs[1]!], inv, cfg, dnsOnly), 'apiserver-blocked'), 1);
});

test('the policy-list memo: a pod entering a CIDR peer, a node label and the config still change the warnings', (t) => {
  clearLintMemo();
  const policies = [docs[5]!, docs[6]!, docs[7]!];
  const cidr = (ps: readonly Problem[]): number => ps.filter((p) => p.code === 'lint/cidr-covers-cluster').length;
  t.is(cidr(lintPolicies(policies, inventories[0]!, configs[0]!)), 0);
  t.is(cidr(lintPolicies(policies, inventories[1]!, configs[0]!)), 1);
  t.is(cidr(lintPolicies(policies, inventories[0]!, configs[0]!)), 0);
  t.is(count(lintPolicies(policies, inventories[0]!, configs[0]!), 'selects-no-node'), 1);
  t.is(count(lintPolicies(policies, inventories[3]!, configs[0]!), 'selects-no-node'), 0);
  // redundant-allow depends on every policy: cidr-narrow turns ingress default deny on for all nodes.
  const two = [docs[6]!, docs[7]!];
  t.is(count(lintPolicies(policies, inventories[0]!, configs[0]!), 'redundant-allow'), 0);
  t.is(count(lintPolicies(two, inventories[0]!, configs[0]!), 'redundant-allow'), 1);
  t.is(count(lintPolicies(two, inventories[0]!, configs[1]!), 'redundant-allow'), 0);
  // The same documents in a new array (each agent pass makes one): the memo answers the same.
  t.is(count(lintPolicies([...two], inventories[0]!, configs[0]!), 'redundant-allow'), 1);
  t.is(count(lintPolicies([...policies], inventories[0]!, configs[0]!), 'redundant-allow'), 0);
});
