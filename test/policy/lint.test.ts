import test from 'ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import type { Problem } from '../../src/api/problem.js';
import type { EngineConfig } from '../../src/inventory/types.js';
import { lintPolicies } from '../../src/policy/lint.js';
import { baseInventory, config } from '../helpers/policy-builders.js';

function lint(yaml: string, cfg: Partial<EngineConfig> = {}): Problem[] {
  const r = loadManifestText(yaml, 'p.yaml');
  if (r.policies.length === 0) throw new Error(`no policy decoded: ${JSON.stringify(r.problems)}`);
  return lintPolicies(r.policies, baseInventory(), config(cfg));
}
const codes = (ps: readonly Problem[]): string[] => ps.map((p) => p.code).sort();
const byCode = (ps: readonly Problem[], code: string): Problem[] => ps.filter((p) => p.code === `lint/${code}`);

const head = (name: string) => `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: ${name}
`;

test('a clean policy gives no warnings', (t) => {
  const ps = lint(`${head('ok')}spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
  egress:
  - toEntities: [kube-apiserver]
    toPorts:
    - ports: [{ port: "6443", protocol: TCP }]
`);
  t.deepEqual(ps, []);
});

test('nodeSelector on a filtered label: warning at the key, saying why and how to fix', (t) => {
  const ps = lint(`${head('os')}spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/os: linux
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
`);
  const f = byCode(ps, 'filtered-label');
  t.is(f.length, 1);
  t.is(f[0]!.severity, 'warning');
  t.is(f[0]!.policy, 'os');
  t.is(f[0]!.field, 'spec.nodeSelector.matchLabels["kubernetes.io/os"]');
  t.is(f[0]!.pos.line, 8);
  t.regex(f[0]!.message, /dropped by Cilium's identity-label filter/);
  t.regex(f[0]!.message, /matches no node/);
  t.regex(f[0]!.message, /kubectl label node/);
  t.is(byCode(ps, 'selects-no-node').length, 1);
});

test('filtered label in matchExpressions; none filter keeps it quiet', (t) => {
  const y = `${head('zone')}spec:
  nodeSelector:
    matchExpressions:
    - { key: topology.kubernetes.io/zone, operator: In, values: [z1] }
    - { key: kubernetes.io/hostname, operator: DoesNotExist }
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
`;
  const f = byCode(lint(y), 'filtered-label');
  t.deepEqual(f.map((p) => p.field), ['spec.nodeSelector.matchExpressions[0].key', 'spec.nodeSelector.matchExpressions[1].key']);
  t.regex(f[1]!.message, /always true/);
  t.deepEqual(byCode(lint(y, { labelFilter: 'none' }), 'filtered-label'), []);
});

test('a policy selecting no known node', (t) => {
  const ps = lint(`${head('nobody')}spec:
  nodeSelector:
    matchLabels: { type: gpu }
  ingress:
  - fromEntities: [world]
`);
  const f = byCode(ps, 'selects-no-node');
  t.is(f.length, 1);
  t.regex(f[0]!.message, /node-a, node-b, node-c/);
});

test('empty peer list', (t) => {
  const ps = lint(`${head('empty')}spec:
  nodeSelector: {}
  ingress:
  - fromEntities: []
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
`);
  const f = byCode(ps, 'empty-peer-list');
  t.is(f.length, 1);
  t.is(f[0]!.field, 'spec.ingress[0].fromEntities');
  t.regex(f[0]!.message, /select nothing/);
});

test('toEndpoints: left null next to toPorts (block style, first key)', (t) => {
  const ps = lint(`${head('echo')}spec:
  nodeSelector: {}
  egress:
  - toEndpoints:
    toPorts:
    - ports: [{ port: "80", protocol: TCP }]
  - toEntities: [kube-apiserver]
`);
  const f = byCode(ps, 'null-peer');
  t.is(f.length, 1);
  t.regex(f[0]!.message, /ANY peer/);
  t.is(f[0]!.pos.line, 8);
});

test('null peer field that is not the first key is named', (t) => {
  const ps = lint(`${head('echo2')}spec:
  nodeSelector: {}
  ingress:
  - toPorts:
    - ports: [{ port: "22", protocol: TCP }]
    fromEndpoints:
`);
  const f = byCode(ps, 'null-peer');
  t.is(f.length, 1);
  t.is(f[0]!.field, 'spec.ingress[0].fromEndpoints');
  t.regex(f[0]!.message, /^fromEndpoints is written without a value/);
});

test('a null peer field in a JSON policy is flagged too', (t) => {
  const json = JSON.stringify({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumClusterwideNetworkPolicy',
    metadata: { name: 'json-null' },
    spec: { nodeSelector: {}, egress: [{ toEndpoints: null, toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
  }, null, 2);
  const r = loadManifestText(json, 'p.json');
  const f = byCode(lintPolicies(r.policies, baseInventory(), config({})), 'null-peer');
  t.is(f.length, 1);
  t.is(f[0]!.field, 'spec.egress[0].toEndpoints');
  t.is(f[0]!.pos.file, 'p.json');
});

test('a port-only rule without null fields is not flagged (block and flow style)', (t) => {
  const ps = lint(`${head('ports')}spec:
  nodeSelector: {}
  ingress:
  - toPorts:
    - ports: [{ port: "22", protocol: TCP }]
  - { toPorts: [{ ports: [{ port: "80", protocol: TCP }] }] }
`);
  t.deepEqual(byCode(ps, 'null-peer'), []);
});

test('ingress: [{}] only switches on default deny', (t) => {
  const ps = lint(`${head('deny-all')}spec:
  nodeSelector: {}
  ingress:
  - {}
`);
  const f = byCode(ps, 'no-peer-no-port');
  t.is(f.length, 1);
  t.is(f[0]!.field, 'spec.ingress[0]');
  t.regex(f[0]!.message, /fromEntities: \[all\]/);
  t.is(byCode(ps, 'ssh-lockout').length, 1);
});

test('enableDefaultDeny false: redundant allows unless another rule turns default deny on', (t) => {
  const y = `${head('redundant')}spec:
  nodeSelector: {}
  enableDefaultDeny: { ingress: false }
  ingress:
  - fromEntities: [world]
  ingressDeny:
  - fromCIDR: [203.0.113.0/24]
`;
  const f = byCode(lint(y), 'redundant-allow');
  t.is(f.length, 1);
  t.is(f[0]!.field, 'spec.ingress');
  const other = `${y}---
${head('other')}spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
`;
  t.deepEqual(byCode(lint(other), 'redundant-allow'), []);
});

test('fromCIDR over node and pod addresses', (t) => {
  const y = `${head('cidr')}spec:
  nodeSelector: {}
  ingress:
  - fromCIDR: [192.0.2.0/24, 203.0.113.0/24]
  - fromCIDRSet:
    - cidr: 198.51.100.0/25
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
`;
  const f = byCode(lint(y), 'cidr-covers-cluster');
  t.deepEqual(f.map((p) => p.field), ['spec.ingress[0].fromCIDR[0]', 'spec.ingress[1].fromCIDRSet[0].cidr']);
  t.regex(f[0]!.message, /node addresses/);
  t.regex(f[0]!.message, /policyCIDRMatchMode: nodes/);
  t.regex(f[1]!.message, /pod addresses/);
  t.regex(f[1]!.message, /fromEndpoints/);
  const nodes = byCode(lint(y, { policyCIDRMatchMode: 'nodes' }), 'cidr-covers-cluster');
  t.is(nodes.length, 2, 'health addresses stay unmatched even in nodes mode');
  t.notRegex(nodes[0]!.message, /node addresses/);
});

test('ingress default deny without SSH is a lockout risk', (t) => {
  const ps = lint(`${head('lock')}spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [remote-node]
    toPorts:
    - ports: [{ port: "10250", protocol: TCP }]
`);
  const f = byCode(ps, 'ssh-lockout');
  t.is(f.length, 1);
  t.is(f[0]!.policy, 'lock');
  t.regex(f[0]!.message, /22\/TCP/);
  t.regex(f[0]!.message, /locks you out/);
});

test('egress default deny that blocks the kube-apiserver', (t) => {
  const ps = lint(`${head('egress')}spec:
  nodeSelector: {}
  egress:
  - toEntities: [world]
    toPorts:
    - ports: [{ port: "443", protocol: TCP }]
`);
  // world covers the external apiserver 192.0.2.50 on 443, so not every apiserver address is blocked
  t.deepEqual(byCode(ps, 'apiserver-blocked'), []);
  const blocked = lint(`${head('egress2')}spec:
  nodeSelector: {}
  egress:
  - toEntities: [world]
    toPorts:
    - ports: [{ port: "53", protocol: UDP }]
`);
  const f = byCode(blocked, 'apiserver-blocked');
  t.is(f.length, 1);
  t.regex(f[0]!.message, /kube-apiserver/);
  t.regex(f[0]!.message, /toEntities: \[kube-apiserver\]/);
});

test('every lint code is prefixed lint/ and every problem is a warning', (t) => {
  const ps = lint(`${head('many')}spec:
  nodeSelector:
    matchLabels: { kubernetes.io/hostname: node-a }
  ingress:
  - {}
`);
  t.true(ps.length > 0);
  for (const p of ps) {
    t.is(p.severity, 'warning');
    t.regex(p.code, /^lint\//);
  }
  t.deepEqual(codes(ps), ['lint/filtered-label', 'lint/no-peer-no-port', 'lint/selects-no-node']);
});

test('null peer in a deny rule denies the port from everyone', (t) => {
  const ps = lint(`${head('deny-null')}spec:
  nodeSelector: {}
  ingressDeny:
  - fromCIDR:
    toPorts:
    - ports: [{ port: "23", protocol: TCP }]
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
`);
  const f = byCode(ps, 'null-peer');
  t.is(f.length, 1);
  t.regex(f[0]!.message, /denies its ports from ANY peer/);
});

test('fromNodes on a filtered node label', (t) => {
  const ps = lint(`${head('nodes')}spec:
  nodeSelector: {}
  ingress:
  - fromNodes:
    - matchLabels: { kubernetes.io/hostname: node-b }
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
`, { enableNodeSelectorLabels: true });
  const f = byCode(ps, 'filtered-label');
  t.is(f.length, 1);
  t.is(f[0]!.field, 'spec.ingress[0].fromNodes[0]');
  t.regex(f[0]!.message, /selects no node/);
});

test('a policy linted again against other nodes, pools or config gets warnings for those (nothing stale is kept)', (t) => {
  const r = loadManifestText(`${head('zone-x')}spec:
  nodeSelector:
    matchLabels: { zone: x }
  ingress:
  - fromCIDR: [198.51.100.0/24]
`, 'p.yaml');
  const inv = baseInventory();
  const withZone = { ...inv, remoteNodes: inv.remoteNodes.map((n, i) => (i === 0 ? { ...n, labels: { ...n.labels, zone: 'x' } } : n)) };
  const noNode = (ps: readonly Problem[]): number => byCode(ps, 'selects-no-node').length;
  t.is(noNode(lintPolicies(r.policies, inv, config())), 1);
  t.is(noNode(lintPolicies(r.policies, withZone, config())), 0);
  t.is(noNode(lintPolicies(r.policies, inv, config())), 1);
  // Same nodes, other pools: the pod CIDR the rule names is no longer a pod range.
  const podWarnings = (ps: readonly Problem[]): number => ps.filter((p) => p.message.includes('pod addresses')).length;
  const before = podWarnings(lintPolicies(r.policies, withZone, config()));
  const noPods = { ...withZone, pods: [], clusterPodCIDRs: [], self: { ...withZone.self, podCIDRs: [] }, remoteNodes: withZone.remoteNodes.map((n) => ({ ...n, podCIDRs: [] })) };
  t.true(before > 0);
  t.is(podWarnings(lintPolicies(r.policies, noPods, config())), 0);
  // Same inventory object, other config: a filtered label selects no node, unfiltered it does.
  const h = loadManifestText(`${head('by-hostname')}spec:
  nodeSelector:
    matchLabels: { kubernetes.io/hostname: node-b }
  ingress:
  - fromEntities: [world]
`, 'h.yaml');
  t.is(noNode(lintPolicies(h.policies, inv, config())), 1);
  t.is(noNode(lintPolicies(h.policies, inv, config({ labelFilter: 'none' }))), 0);
  t.is(noNode(lintPolicies(h.policies, inv, config())), 1);
});
