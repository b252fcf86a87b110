import test, { type ExecutionContext } from 'ava';
import { loadManifestPaths } from '../../src/inventory/load-manifest-files.js';
import { validatePolicy } from '../../src/api/validate.js';
import { isServiceName } from '../../src/api/validate-l4.js';
import type { Problem } from '../../src/api/problem.js';
import { defaultEngineConfig, type EngineConfig } from '../../src/inventory/types.js';
import { corpusFile, corpusFiles } from './corpus.js';
import { dedent, errorsOf, hostPolicy, messages, validateText, warningsOf } from './manifests.js';

// ---------------------------------------------------------------- corpus

const INVALID_BY_DEFAULT = new Set([
  'cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml',
  'cilium-allow-extended-protocols.yaml',
]);

for (const name of corpusFiles()) {
  test(`corpus ${name}: ${INVALID_BY_DEFAULT.has(name) ? 'rejected' : 'accepted'} with default flags`, async (t) => {
    const r = await loadManifestPaths([corpusFile(name)]);
    const errors = r.policies.flatMap((p) => errorsOf(validatePolicy(p, defaultEngineConfig)));
    if (INVALID_BY_DEFAULT.has(name)) t.not(errors.length, 0);
    else t.deepEqual(errors, []);
  });
}

test('corpus: placeholder CIDR is rejected with Cilium\'s message and position', async (t) => {
  const file = corpusFile('cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml');
  const [doc] = (await loadManifestPaths([file])).policies;
  const ps = validatePolicy(doc!, defaultEngineConfig);
  t.deepEqual(ps.map((p) => [p.severity, p.field, `${p.pos.line}:${p.pos.col}`, p.policy]), [
    ['error', 'spec.ingress[0].fromCIDR[0]', '14:9', 'host-ingress-from-cidr-to-ports'],
  ]);
  t.is(ps[0]?.message,
    'unable to parse CIDR: netip.ParsePrefix("NODE_WITHOUT_CILIUM_IP/32"): ParseAddr("NODE_WITHOUT_CILIUM_IP"): unable to parse IP');
});

test('corpus: VRRP without a port needs enable-extended-ip-protocols (§2.3)', async (t) => {
  const file = corpusFile('cilium-allow-extended-protocols.yaml');
  const [doc] = (await loadManifestPaths([file])).policies;
  const off = validatePolicy(doc!, defaultEngineConfig);
  t.deepEqual(off.map((p) => [p.severity, p.message, p.field, `${p.pos.line}:${p.pos.col}`]), [
    ['error', 'port must be specified', 'spec.egress[0].toPorts[0].ports[5].port', '23:9'],
  ]);
  t.deepEqual(validatePolicy(doc!, { ...defaultEngineConfig, enableExtendedIPProtocols: true }), []);
});

test('corpus: top-level description gives only a lint warning', async (t) => {
  const [doc] = (await loadManifestPaths([corpusFile('cilium-lock-down-gke.yaml')])).policies;
  t.deepEqual(validatePolicy(doc!, defaultEngineConfig).map((p) => [p.severity, p.code, p.pos.line]),
    [['warning', 'lint/ignored-field', 3]]);
});

test('corpus: the pod rule in the linode ConfigMap is accepted and not reported', async (t) => {
  const r = await loadManifestPaths([corpusFile('linode-capl-cilium-policies-configmap.yaml')]);
  t.deepEqual(r.policies.map((p) => validatePolicy(p, defaultEngineConfig)), [[], []]);
});

// ---------------------------------------------------------------- helpers

function expectError(t: ExecutionContext, text: string, message: string | RegExp, field?: string,
  cfg: Partial<EngineConfig> = {}): Problem | undefined {
  const errors = errorsOf(validateText(text, cfg));
  const hit = errors.find((p) => (typeof message === 'string' ? p.message === message : message.test(p.message)));
  t.truthy(hit, `expected error ${String(message)}, got ${JSON.stringify(messages(errors))}`);
  if (field !== undefined) t.is(hit?.field, field);
  return hit;
}

function expectValid(t: ExecutionContext, text: string, cfg: Partial<EngineConfig> = {}): Problem[] {
  const ps = validateText(text, cfg);
  t.deepEqual(messages(errorsOf(ps)), []);
  return ps;
}

const cfgOf = (over: Partial<EngineConfig>): Partial<EngineConfig> => over;

// ---------------------------------------------------------------- §2.1 rule level

test('§2.1 a rule needs a non-empty ingress/ingressDeny/egress/egressDeny', (t) => {
  expectError(t, hostPolicy('ingress: []\negressDeny: []'),
    'rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny', 'spec');
  expectError(t, hostPolicy('description: nothing'), 'rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny');
  expectValid(t, hostPolicy('ingress: []\negressDeny: [{}]'));
});

test('§2.1 a rule needs a selector', (t) => {
  expectError(t, hostPolicy('ingress: [{}]', 'description: x'), 'rule must have one of EndpointSelector or NodeSelector', 'spec');
  expectValid(t, hostPolicy('ingress: [{}]', 'endpointSelector: {}'));
});

test('§2.1 a rule cannot have both selectors', (t) => {
  expectError(t, hostPolicy('endpointSelector: {}\ningress: [{}]'), 'rule cannot have both EndpointSelector and NodeSelector');
});

test('§2.1 selector requirements are checked (node, endpoint and peer selectors)', (t) => {
  expectError(t, hostPolicy('ingress: [{}]', 'nodeSelector: {matchExpressions: [{key: a, operator: Equals, values: [x]}]}'),
    '"Equals" is not a valid label selector operator', 'spec.nodeSelector.matchExpressions[0].operator');
  expectError(t, hostPolicy('ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: In}]}]}]'),
    "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
    'spec.ingress[0].fromEndpoints[0].matchExpressions[0]');
  expectError(t, hostPolicy('ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: NotIn, values: []}]}]}]'),
    "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty");
  expectError(t, hostPolicy('egress: [{toNodes: [{matchExpressions: [{key: a, operator: Exists, values: [x, y]}]}]}]'),
    'values: Invalid value: []string{"x", "y"}: values set must be empty for exists and does not exist',
    'spec.egress[0].toNodes[0].matchExpressions[0].values', cfgOf({ enableNodeSelectorLabels: true }));
  expectError(t, hostPolicy('ingress: [{fromCIDRSet: [{cidrGroupSelector: {matchExpressions: [{key: a, operator: in, values: [x]}]}}]}]'),
    '"in" is not a valid label selector operator');
  expectValid(t, hostPolicy('ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: NotIn, values: [x]}, {key: b, operator: DoesNotExist}]}]}]',
    'nodeSelector: {matchExpressions: [{key: a, operator: Exists}]}'));
});

test('§2.1 a CiliumNetworkPolicy may not use nodeSelector', (t) => {
  const cnp = (sel: string): string =>
    `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: n, namespace: x}\nspec: {${sel}: {}, ingress: [{}]}\n`;
  expectError(t, cnp('nodeSelector'), /^Invalid CiliumNetworkPolicy spec: rule cannot have NodeSelector/, 'spec.nodeSelector');
  expectValid(t, cnp('endpointSelector'));
});

test('§1.1 an invalid pod rule in a CCNP rejects the whole object; valid pod rules get no problems', (t) => {
  const specs = (podIngress: string): string => dedent(`
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata: {name: mixed}
    specs:
    - nodeSelector: {}
      ingress: [{fromEntities: [world]}]
    - endpointSelector: {}
      ingress: [${podIngress}]
  `);
  expectError(t, specs('{fromEntities: [world], fromCIDR: [10.0.0.0/8]}'),
    'combining FromCIDR and FromEntities is not supported yet', 'specs[1].ingress[0].fromEntities');
  // Pod rules may use HTTP and toFQDNs-like content without nodewall warnings.
  t.deepEqual(validateText(specs('{toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]}')), []);
});

// ---------------------------------------------------------------- §2.2 peers

test('§2.2 at most one peer kind per ingress rule; empty lists do not count', (t) => {
  expectError(t, hostPolicy('ingress: [{fromEntities: [world], fromCIDR: [10.0.0.0/8]}]'),
    'combining FromCIDR and FromEntities is not supported yet');
  expectError(t, hostPolicy('ingressDeny: [{fromEndpoints: [{}], fromCIDRSet: [{cidr: 10.0.0.0/8}]}]'),
    'combining FromEndpoints and FromCIDRSet is not supported yet');
  expectValid(t, hostPolicy('ingress: [{fromEntities: [world], fromCIDR: []}]'));
});

test('§2.2 at most one peer kind per egress rule (toFQDNs counts in allow rules)', (t) => {
  expectError(t, hostPolicy('egress: [{toCIDR: [10.0.0.0/8], toEndpoints: [{}]}]'),
    'combining ToEndpoints and ToCIDR is not supported yet', 'spec.egress[0].toCIDR');
  expectError(t, hostPolicy('egress: [{toEntities: [world], toFQDNs: [{matchName: a.example}]}]'),
    'combining ToEntities and ToFQDNs is not supported yet');
  expectValid(t, hostPolicy('egress: [{toEntities: [world], toEndpoints: []}]'));
});

test('§2.2 entity names', (t) => {
  expectError(t, hostPolicy('ingress: [{fromEntities: [world, hosts]}]'), 'unsupported entity: hosts', 'spec.ingress[0].fromEntities[1]');
  expectValid(t, hostPolicy(
    'ingress: [{fromEntities: [all, world, cluster, cluster-mesh, host, init, ingress, unmanaged, remote-node, health, none, kube-apiserver]}]'));
});

test('§2.2 fromNodes/toNodes need enable-node-selector-labels', (t) => {
  const text = hostPolicy('ingress: [{fromNodes: [{matchLabels: {role: db}}]}]');
  expectError(t, text, 'FromNodes/ToNodes rules can only be applied when the "enable-node-selector-labels" flag is set',
    'spec.ingress[0].fromNodes');
  expectError(t, hostPolicy('egress: [{toNodes: [{}]}]'), /enable-node-selector-labels/);
  expectValid(t, text, { enableNodeSelectorLabels: true });
  expectValid(t, hostPolicy('ingress: [{fromNodes: []}]'));
});

test('§2.2 CIDR strings: empty, unparsable, bare IP', (t) => {
  expectError(t, hostPolicy('ingress: [{fromCIDR: [""]}]'), 'IP must be specified', 'spec.ingress[0].fromCIDR[0]');
  expectError(t, hostPolicy('egress: [{toCIDR: [10.0.0.1]}]'),
    'unable to parse CIDR: netip.ParsePrefix("10.0.0.1"): no \'/\'');
  expectError(t, hostPolicy('egress: [{toCIDR: [10.0.0.0/33]}]'), /prefix length out of range/);
  expectError(t, hostPolicy('egress: [{toCIDR: [010.0.0.0/8]}]'), /leading zero/);
  expectError(t, hostPolicy('egress: [{toCIDR: ["fe80::1%eth0/64"]}]'), /IPv6 zones cannot be present in a prefix/);
  expectValid(t, hostPolicy('egress: [{toCIDR: [10.1.2.3/8, "2001:db8::/32", "::ffff:192.0.2.0/120", 0.0.0.0/0, "::/0"]}]'));
});

test('§2.2 non-contiguous masks are refused', (t) => {
  expectError(t, hostPolicy('ingress: [{fromCIDR: [10.0.0.0/255.0.0.0]}]'), /unable to parse CIDR: .*bad bits after slash/);
});

test('§2.2 CIDRRule needs exactly one of cidr, cidrGroupRef, cidrGroupSelector', (t) => {
  expectError(t, hostPolicy('ingress: [{fromCIDRSet: [{except: [10.0.0.0/16]}]}]'),
    'one of cidr, cidrGroupRef, or cidrGroupSelector is required', 'spec.ingress[0].fromCIDRSet[0]');
  expectError(t, hostPolicy('ingress: [{fromCIDRSet: [{cidr: 10.0.0.0/8, cidrGroupRef: g}]}]'),
    'more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set');
  expectValid(t, hostPolicy('ingress: [{fromCIDRSet: [{cidrGroupRef: g}, {cidrGroupSelector: {matchLabels: {a: b}}}]}]'));
});

test('§2.2 CIDRRule cidr must parse (bare IP refused)', (t) => {
  expectError(t, hostPolicy('ingress: [{fromCIDRSet: [{cidr: 10.0.0.1}]}]'),
    'unable to parse CIDRRule "10.0.0.1": netip.ParsePrefix("10.0.0.1"): no \'/\'', 'spec.ingress[0].fromCIDRSet[0].cidr');
  expectValid(t, hostPolicy('ingress: [{fromCIDRSet: [{cidr: 10.0.0.1/32}]}]'));
});

test('§2.2 except must lie inside cidr, same family, not shorter; and must parse', (t) => {
  const rule = (cidr: string, except: string): string => hostPolicy(`ingress: [{fromCIDRSet: [{cidr: "${cidr}", except: ["${except}"]}]}]`);
  expectError(t, rule('10.0.0.0/8', '192.168.0.0/16'), 'allow CIDR prefix 10.0.0.0/8 does not contain exclude CIDR prefix 192.168.0.0/16',
    'spec.ingress[0].fromCIDRSet[0].except[0]');
  expectError(t, rule('10.0.0.0/16', '10.0.0.0/8'), /does not contain exclude CIDR prefix 10.0.0.0\/8/);
  expectError(t, rule('0.0.0.0/0', '::/0'), /does not contain/);
  expectError(t, rule('10.0.0.0/8', '10.1.0.0'), 'netip.ParsePrefix("10.1.0.0"): no \'/\'');
  expectValid(t, rule('10.0.0.0/8', '10.1.0.0/16'));
  expectValid(t, rule('10.0.0.0/8', '10.0.0.0/8'));
  expectValid(t, rule('2001:db8::/32', '2001:db8:1::/48'));
});

test('§2.2/§4.5 fromRequires/toRequires are refused', (t) => {
  expectError(t, hostPolicy('ingress: [{fromRequires: [{matchLabels: {a: b}}]}]'), /^fromRequires was removed in Cilium 1\.19/,
    'spec.ingress[0].fromRequires');
  expectError(t, hostPolicy('egress: [{toRequires: [{}]}]'), /^toRequires was removed/);
  expectValid(t, hostPolicy('egress: [{toRequires: []}]'));
});

// ---------------------------------------------------------------- §2.3 L4

const portsRule = (ports: string, dir = 'ingress'): string => hostPolicy(`${dir}:\n- toPorts:\n  - ports: [${ports}]`);

test('§2.3 at most 40 ports per ports list', (t) => {
  const many = (n: number): string => Array.from({ length: n }, (_, i) => `{port: "${1000 + i}"}`).join(', ');
  expectError(t, portsRule(many(41)), 'too many ports, the max is 40', 'spec.ingress[0].toPorts[0].ports');
  expectError(t, hostPolicy(`egressDeny:\n- toPorts:\n  - ports: [${many(41)}]`), 'too many ports, the max is 40');
  expectValid(t, portsRule(many(40)));
});

test('§2.3 port must be specified unless enable-extended-ip-protocols', (t) => {
  expectError(t, portsRule('{protocol: TCP}'), 'port must be specified', 'spec.ingress[0].toPorts[0].ports[0].port');
  expectError(t, portsRule('{port: "", protocol: UDP}'), 'port must be specified');
  expectValid(t, portsRule('{protocol: GRE}'), { enableExtendedIPProtocols: true });
  expectValid(t, portsRule('{protocol: TCP}'), { enableExtendedIPProtocols: true });
});

test('§2.3 extended protocols take no port other than 0', (t) => {
  expectError(t, portsRule('{port: "80", protocol: ESP}'), 'port must be empty or 0', undefined, { enableExtendedIPProtocols: true });
  expectError(t, portsRule('{port: "00", protocol: VRRP}'), 'port must be empty or 0');
  expectValid(t, portsRule('{port: "0", protocol: IGMP}'));
});

test('§2.3 numeric ports must fit 16 bits', (t) => {
  expectError(t, portsRule('{port: "65536"}'), 'unable to parse port: strconv.ParseUint: parsing "65536": value out of range');
  expectError(t, portsRule('{port: "99999", protocol: TCP}'), /^unable to parse port/);
  expectError(t, portsRule('{port: "089"}'), 'unable to parse port: strconv.ParseUint: parsing "089": invalid syntax');
  expectError(t, portsRule('{port: "-1"}'), /does not match the CRD pattern/);
  expectValid(t, portsRule('{port: "65535"}, {port: "0"}, {port: "1"}'));
});

test('§2.3 protocol must be one of the CRD enum (upper-case)', (t) => {
  expectError(t, portsRule('{port: "1", protocol: ICMP}'),
    'invalid protocol "ICMP", must be { tcp | udp | sctp | vrrp | igmp | gre | ipip | ipv6 | esp | ah | any }',
    'spec.ingress[0].toPorts[0].ports[0].protocol');
  expectError(t, portsRule('{port: "22", protocol: tcp}'), /^protocol "tcp" must be upper-case \(TCP\)/);
  expectValid(t, portsRule('{port: "22", protocol: TCP}, {port: "53", protocol: UDP}, {port: "9", protocol: SCTP}, {port: "1", protocol: ANY}'));
});

test('§2.3 icmps and toPorts may not share a rule', (t) => {
  const msg = 'the ICMPs block may only be present without ToPorts. Define a separate rule to use ToPorts';
  expectError(t, hostPolicy('egressDeny:\n- toPorts: [{ports: [{port: "1"}]}]\n  icmps: [{fields: [{type: 8}]}]'), msg,
    'spec.egressDeny[0].icmps');
  expectValid(t, hostPolicy('ingress:\n- toPorts: [{ports: [{port: "1"}]}]\n- icmps: [{fields: [{type: 8}]}]'));
  expectValid(t, hostPolicy('ingress:\n- toPorts: []\n  icmps: [{fields: [{type: 8}]}]'));
});

test('§2.3 icmps need enable-icmp-rules', (t) => {
  const text = hostPolicy('ingress: [{icmps: [{fields: [{type: 8}]}]}]');
  expectError(t, text, 'ICMP rules can only be applied when the "enable-icmp-rules" flag is set', undefined, { enableICMPRules: false });
  expectValid(t, text);
});

test('§2.3 at most 40 ICMP fields', (t) => {
  const many = (n: number): string => Array.from({ length: n }, (_, i) => `{type: ${i}}`).join(', ');
  expectError(t, hostPolicy(`ingress: [{icmps: [{fields: [${many(41)}]}]}]`), 'too many types, the max is 40',
    'spec.ingress[0].icmps[0].fields');
  expectValid(t, hostPolicy(`ingress: [{icmps: [{fields: [${many(40)}]}]}]`));
});

test('§2.3 ICMP family must be IPv4 or IPv6', (t) => {
  expectError(t, hostPolicy('ingress: [{icmps: [{fields: [{type: 8, family: ipv4}]}]}]'), 'wrong family: ipv4',
    'spec.ingress[0].icmps[0].fields[0].family');
  expectValid(t, hostPolicy('ingress: [{icmps: [{fields: [{type: 8, family: IPv4}, {type: 128, family: IPv6}, {type: 0}]}]}]'));
});

test('§2.3 ICMP type names are looked up in their family', (t) => {
  expectError(t, hostPolicy('ingress: [{icmps: [{fields: [{type: PacketTooBig}]}]}]'), 'ICMP type PacketTooBig not found in IPv4',
    'spec.ingress[0].icmps[0].fields[0].type');
  expectError(t, hostPolicy('ingress: [{icmps: [{fields: [{type: Echo, family: IPv6}]}]}]'), 'ICMP type Echo not found in IPv6');
  expectError(t, hostPolicy('ingress: [{icmps: [{fields: [{type: echoRequest}]}]}]'), 'ICMP type echoRequest not found in IPv4');
  expectError(t, hostPolicy('ingress: [{icmps: [{fields: [{type: "256"}]}]}]'), /does not match the CRD pattern/);
  expectValid(t, hostPolicy('ingress: [{icmps: [{fields: [{type: PacketTooBig, family: IPv6}, {type: Echo}, {type: "8"}]}]}]'));
});

test('§2.3 not validated by Cilium: warnings that say what happens', (t) => {
  const range = expectValid(t, portsRule('{port: "90", endPort: 80, protocol: TCP}'));
  t.deepEqual(range.map((p) => [p.severity, p.code, p.field]),
    [['warning', 'lint/end-port-below-port', 'spec.ingress[0].toPorts[0].ports[0].endPort']]);
  t.regex(range[0]?.message ?? '', /single port 90/);
  t.deepEqual(expectValid(t, portsRule('{port: "0", endPort: 80, protocol: TCP}, {port: "80", endPort: 80}, {port: "80", endPort: 90}')), []);

  const octal = expectValid(t, portsRule('{port: "010", protocol: TCP}, {port: "07"}'));
  t.deepEqual(octal.map((p) => [p.code, p.message]),
    [['lint/octal-port', 'port "010" has a leading zero, so Cilium reads it as octal: port 8, not 10']]);

  const icmp = expectValid(t, hostPolicy('ingress: [{icmps: [{fields: [{type: 300}, {type: 255}]}]}]'));
  t.deepEqual(icmp.map((p) => [p.code, p.field]), [['lint/icmp-type-range', 'spec.ingress[0].icmps[0].fields[0].type']]);
});

// ---------------------------------------------------------------- §2.4 L7

const l7Rule = (dir: string, peer: string, ports: string, rules: string, selector = 'nodeSelector: {}'): string =>
  hostPolicy(`${dir}:\n- ${peer}\n  toPorts:\n  - ports: [${ports}]\n    ${rules}`, selector);

test('§2.4 no HTTP or DNS rules on host ingress', (t) => {
  expectError(t, l7Rule('ingress', 'fromEntities: [world]', '{port: "80", protocol: TCP}', 'rules: {http: [{method: GET}]}'),
    'L7 policy is not supported on host ingress yet', 'spec.ingress[0].toPorts[0].rules');
  expectError(t, l7Rule('ingress', 'fromEntities: [world]', '{port: "53", protocol: UDP}', 'rules: {dns: [{matchName: a}]}'),
    'L7 policy is not supported on host ingress yet');
  expectError(t, l7Rule('ingress', 'fromEntities: [world]', '{port: "80", protocol: TCP}', 'rules: {l7proto: x, l7: [{a: b}]}'),
    'L7 policy is not supported on host ingress yet');
  expectValid(t, l7Rule('ingress', 'fromEntities: [world]', '{port: "80", protocol: TCP}', 'rules: {http: [{method: GET}]}',
    'endpointSelector: {}'));
});

test('§2.4 l7 needs l7proto; one L7 rule type per port rule', (t) => {
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: TCP}', 'rules: {l7: [{a: b}]}', 'endpointSelector: {}'),
    "'l7' may only be specified when a 'l7proto' is also specified");
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: TCP}', 'rules: {http: [{}], kafka: [{topic: t}]}',
    'endpointSelector: {}'), 'multiple L7 protocol rule types specified in single rule');
  expectValid(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: TCP}', 'rules: {l7proto: x, l7: [{a: b}]}',
    'endpointSelector: {}'));
});

test('§2.4 no HTTP rules on host egress', (t) => {
  expectError(t, l7Rule('egress', 'toEntities: [world]', '{port: "80", protocol: TCP}', 'rules: {http: [{method: GET}]}'),
    'L7 protocol HTTP is not supported on host egress yet');
});

test('§2.4 no DNS rules on any ingress', (t) => {
  expectError(t, l7Rule('ingress', 'fromEntities: [world]', '{port: "53", protocol: UDP}', 'rules: {dns: [{matchName: a}]}',
    'endpointSelector: {}'), 'DNS rules are not allowed on ingress');
});

test('§2.4 DNS rules need explicit ports and no ranges; accepted on host egress with a warning', (t) => {
  expectError(t, hostPolicy('egress:\n- toEntities: [world]\n  toPorts:\n  - rules: {dns: [{matchName: a}]}'),
    'port 53 must be specified for DNS rules', 'spec.egress[0].toPorts[0]');
  expectError(t, l7Rule('egress', 'toEntities: [world]', '{port: "53", endPort: 54, protocol: UDP}', 'rules: {dns: [{matchName: a}]}'),
    'DNS rules do not support port ranges');
  expectValid(t, l7Rule('egress', 'toEntities: [world]', '{port: "53", endPort: 53, protocol: UDP}', 'rules: {dns: [{matchName: a}]}'));
  const ok = expectValid(t, l7Rule('egress', 'toCIDR: [192.0.2.53/32]', '{port: "53", protocol: ANY}',
    'rules: {dns: [{matchPattern: "*.example.com"}]}'));
  t.deepEqual(ok.map((p) => [p.severity, p.code, p.field]), [['warning', 'unsupported/dns-rules', 'spec.egress[0].toPorts[0].rules']]);
  t.is(ok[0]?.message, 'DNS rules are not applied by nodewall (no DNS proxy): the L4 part is honoured, so this entry allows all DNS ' +
    'queries on 53/ANY to these peers; Cilium would allow only names matching "*.example.com"');
});

test('§2.4 L7 rules only on TCP (except DNS), never with port 0', (t) => {
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: UDP}', 'rules: {http: [{}]}', 'endpointSelector: {}'),
    'L7 rules can only apply to TCP (not UDP) except for DNS rules');
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: ANY}', 'rules: {http: [{}]}', 'endpointSelector: {}'),
    'L7 rules can only apply to TCP (not ANY) except for DNS rules');
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80"}', 'rules: {http: [{}]}', 'endpointSelector: {}'),
    /^L7 rules can only apply to TCP \(not \) except for DNS rules/);
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "0", protocol: TCP}', 'rules: {http: [{}]}', 'endpointSelector: {}'),
    'L7 rules can not be used when a port is 0');
  expectValid(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: TCP}', 'rules: {http: [{}]}', 'endpointSelector: {}'));
});

test('§2.4 listener: not on ingress, not with L7 rules', (t) => {
  expectError(t, l7Rule('ingress', 'fromEndpoints: [{}]', '{port: "80", protocol: TCP}', 'listener: {envoyConfig: {name: x}, name: l}',
    'endpointSelector: {}'), /^Listener is not allowed on ingress/);
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: TCP}',
    'listener: {envoyConfig: {name: x}, name: l}\n    rules: {http: [{}]}', 'endpointSelector: {}'), /^Listener is not allowed with L7 rules/);
  expectValid(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "80", protocol: TCP}', 'listener: {envoyConfig: {name: x}, name: l}',
    'endpointSelector: {}'));
});

test('§2.4 serverNames: no empty names; with L7 rules only under TLS termination', (t) => {
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "443", protocol: TCP}', 'serverNames: [a.example, ""]',
    'endpointSelector: {}'), 'empty server name is not allowed', 'spec.egress[0].toPorts[0].serverNames[1]');
  expectError(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "443", protocol: TCP}', 'serverNames: [a.example]\n    rules: {http: [{}]}',
    'endpointSelector: {}'), 'ServerNames are not allowed with L7 rules without TLS termination');
  expectValid(t, l7Rule('egress', 'toEndpoints: [{}]', '{port: "443", protocol: TCP}',
    'serverNames: [a.example]\n    terminatingTLS: {secret: {name: s}}\n    rules: {http: [{}]}', 'endpointSelector: {}'));
});

// ---------------------------------------------------------------- §2.5 CRD-only

test('§2.5 world-ipv4 / world-ipv6 are refused by the CRD, with what to write instead', (t) => {
  const e = expectError(t, hostPolicy('ingress: [{fromEntities: [world-ipv4]}]'), /^entity world-ipv4 is not in the CRD's entity enum/,
    'spec.ingress[0].fromEntities[0]');
  t.regex(e?.message ?? '', /0\.0\.0\.0\/0/);
  expectError(t, hostPolicy('egress: [{toEntities: [world-ipv6]}]'), /write the CIDR ::\/0/);
  expectValid(t, hostPolicy('egress: [{toCIDR: [0.0.0.0/0]}]'));
});

test('§2.5 ExtendedEchoReply by name is refused by the CRD; the number works', (t) => {
  expectError(t, hostPolicy('ingress: [{icmps: [{fields: [{type: ExtendedEchoReply}]}]}]'),
    /^ICMP type name ExtendedEchoReply is rejected by the API server .*write the number 43 instead$/);
  expectError(t, hostPolicy('ingress: [{icmps: [{fields: [{type: ExtendedEchoReply, family: IPv6}]}]}]'), /write the number 161/);
  expectValid(t, hostPolicy('ingress: [{icmps: [{fields: [{type: 43}, {type: ExtendedEchoRequest}]}]}]'));
});

test('§2.5 log.value is at most 32 printable characters', (t) => {
  expectError(t, hostPolicy(`log: {value: "${'x'.repeat(33)}"}\ningress: [{}]`), /^log\.value must be at most 32/, 'spec.log.value');
  expectValid(t, hostPolicy(`log: {value: "${'x'.repeat(32)}"}\ningress: [{}]`));
});

// ---------------------------------------------------------------- nodewall warnings (§4.5, §7)

function warningsFor(t: ExecutionContext, text: string): Problem[] {
  const ps = expectValid(t, text);
  t.deepEqual(ps, warningsOf(ps));
  return ps;
}

test('toFQDNs: allows nothing here, names the traffic that will be dropped', (t) => {
  const [w, ...rest] = warningsFor(t, hostPolicy('egress:\n- toFQDNs: [{matchName: api.example.com}]\n  toPorts: [{ports: [{port: "443", protocol: TCP}]}]'));
  t.deepEqual(rest, []);
  t.is(w?.code, 'unsupported/fqdns');
  t.is(w?.field, 'spec.egress[0].toFQDNs');
  t.regex(w?.message ?? '', /allows nothing here; traffic Cilium would allow to the addresses of api\.example\.com on 443\/TCP will be DROPPED/);
});

test('toServices: allow rules drop, deny rules allow', (t) => {
  const [allow] = warningsFor(t, hostPolicy('egress: [{toServices: [{k8sService: {serviceName: db, namespace: prod}}]}]'));
  t.is(allow?.code, 'unsupported/services');
  t.regex(allow?.message ?? '', /allows nothing here; traffic Cilium would allow to the backends of .*db.* will be DROPPED/);
  const [deny] = warningsFor(t, hostPolicy('egressDeny: [{toServices: [{k8sService: {serviceName: db, namespace: prod}}]}]'));
  t.regex(deny?.message ?? '', /denies nothing here; traffic Cilium would deny to the backends of .* will be ALLOWED/);
});

test('toGroups / fromGroups', (t) => {
  const [e] = warningsFor(t, hostPolicy('egress: [{toGroups: [{aws: {securityGroupsIds: [sg-1]}}]}]'));
  t.is(e?.code, 'unsupported/groups');
  t.regex(e?.message ?? '', /^toGroups .*allows nothing here.*DROPPED/);
  const [i] = warningsFor(t, hostPolicy('ingressDeny: [{fromGroups: [{aws: {securityGroupsIds: [sg-1]}}]}]'));
  t.regex(i?.message ?? '', /^fromGroups .*denies nothing here; traffic Cilium would deny from .* will be ALLOWED/);
});

test('cidrGroupRef / cidrGroupSelector', (t) => {
  const ws = warningsFor(t, hostPolicy('ingress: [{fromCIDRSet: [{cidrGroupRef: office}, {cidrGroupSelector: {}}, {cidr: 10.0.0.0/8}]}]'));
  t.deepEqual(ws.map((w) => [w.code, w.field]), [
    ['unsupported/cidr-group', 'spec.ingress[0].fromCIDRSet[0]'],
    ['unsupported/cidr-group', 'spec.ingress[0].fromCIDRSet[1]'],
  ]);
  t.regex(ws[0]?.message ?? '', /cidrGroupRef office.*allows nothing here; traffic Cilium would allow from the CIDRs of the CiliumCIDRGroup office will be DROPPED/);
});

test('named ports: host ingress allows nothing; host egress differs from Cilium', (t) => {
  const [i] = warningsFor(t, portsRule('{port: "http", protocol: TCP}'));
  t.is(i?.code, 'unsupported/named-port');
  t.regex(i?.message ?? '', /cannot be resolved for the host endpoint.*allows nothing/);
  const [e] = warningsFor(t, portsRule('{port: "dns-tcp"}', 'egress'));
  t.regex(e?.message ?? '', /allows nothing here; traffic Cilium would allow to peer ports named dns-tcp will be DROPPED/);
  t.true(isServiceName('http') && isServiceName('0x50') && !isServiceName('8080') && !isServiceName('a--b'));
});

test('authentication and TLS inspection on host rules are flagged', (t) => {
  const [a] = warningsFor(t, hostPolicy('ingress: [{fromEntities: [world], authentication: {mode: required}}]'));
  t.is(a?.code, 'unsupported/authentication');
  const [tls] = warningsFor(t, l7Rule('egress', 'toEntities: [world]', '{port: "443", protocol: TCP}', 'serverNames: [a.example]'));
  t.is(tls?.code, 'unsupported/tls');
});
