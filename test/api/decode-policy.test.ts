import test from 'ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { validatePolicy } from '../../src/api/validate.js';
import { defaultEngineConfig } from '../../src/inventory/types.js';
import { dedent, errorsOf, hostPolicy, onePolicy } from './manifests.js';

test('nil vs empty: null and absent lists are undefined, [] stays []', (t) => {
  const doc = onePolicy(hostPolicy(`
    ingress:
    - toEndpoints:
      fromEndpoints:
      fromCIDR: []
      fromEntities: [world]
      toPorts:
      - ports: []
    - {}
    egress:
    egressDeny: []
  `).replace('toEndpoints:', 'fromNodes:'));
  const rule = doc.rules[0];
  if (rule === undefined) return t.fail();
  t.deepEqual(rule.nodeSelector, {});
  t.is(rule.egress, undefined);
  t.deepEqual(rule.egressDeny, []);
  t.is(rule.ingressDeny, undefined);
  const [a, b] = rule.ingress ?? [];
  t.is(a?.nodes, undefined);
  t.is(a?.endpoints, undefined);
  t.false(a !== undefined && 'endpoints' in a);
  t.deepEqual(a?.cidr, []);
  t.deepEqual(a?.entities, ['world']);
  t.deepEqual(a?.toPorts, [{ ports: [] }]);
  t.deepEqual(b, {});
  t.deepEqual(doc.decodeProblems, []);
});

test('nodeSelector with matchLabels: {} and a null nodeSelector', (t) => {
  t.deepEqual(onePolicy(hostPolicy('ingress: [{}]', 'nodeSelector: {matchLabels: {}}')).rules[0]?.nodeSelector, { matchLabels: {} });
  const doc = onePolicy(hostPolicy('ingress: [{}]', 'nodeSelector:'));
  t.is(doc.rules[0]?.nodeSelector, undefined);
  t.deepEqual(validatePolicy(doc, defaultEngineConfig).map((p) => p.message),
    ['rule must have one of EndpointSelector or NodeSelector']);
});

test('decoded shapes: ports, ICMP, CIDR sets, enableDefaultDeny, selectors', (t) => {
  const doc = onePolicy(hostPolicy(`
    enableDefaultDeny: {ingress: false}
    ingress:
    - fromCIDRSet:
      - cidr: 10.0.0.0/8
        except: [10.1.0.0/16]
      toPorts:
      - ports:
        - {port: "8000", endPort: 8080, protocol: TCP}
        - port: "53"
    - fromEndpoints:
      - matchLabels: {app: a}
        matchExpressions:
        - {key: tier, operator: In, values: [web]}
      icmps:
      - fields:
        - {type: 8}
        - {type: EchoRequest, family: IPv6}
  `));
  const rule = doc.rules[0];
  t.deepEqual(rule?.enableDefaultDeny, { ingress: false });
  t.deepEqual(rule?.ingress?.[0], {
    cidrSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }],
    toPorts: [{ ports: [{ port: '8000', endPort: 8080, protocol: 'TCP' }, { port: '53' }] }],
  });
  t.deepEqual(rule?.ingress?.[1], {
    endpoints: [{ matchLabels: { app: 'a' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] }],
    icmps: [{ fields: [{ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }] }],
  });
  t.is(rule?.path, 'spec');
});

test('specs list and spec together give rules "spec", "specs[0]", "specs[1]"', (t) => {
  const doc = onePolicy(dedent(`
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata: {name: both}
    spec:
      nodeSelector: {}
      ingress: [{}]
    specs:
    - nodeSelector: {}
      egress: [{}]
    - endpointSelector: {}
      egress: [{}]
  `));
  t.deepEqual(doc.rules.map((r) => r.path), ['spec', 'specs[0]', 'specs[1]']);
  t.deepEqual(doc.locate('specs[1].egress'), { file: 'test.yaml', line: 11, col: 3 });
});

test('L7 content decodes into PortRule.l7', (t) => {
  const doc = onePolicy(hostPolicy(`
    egress:
    - toEndpoints: [{}]
      toPorts:
      - ports: [{port: "53", protocol: UDP}]
        rules:
          dns:
          - matchPattern: "*.example.com"
          - matchName: example.org
      - ports: [{port: "443", protocol: TCP}]
        serverNames: [a.example]
        terminatingTLS: {secret: {name: s}}
        rules:
          http: [{method: GET}]
  `));
  const [dns, tls] = doc.rules[0]?.egress?.[0]?.toPorts ?? [];
  t.deepEqual(dns?.l7, { http: false, dns: true, kafka: false, other: [], dnsPatterns: ['*.example.com', 'example.org'] });
  t.deepEqual(tls?.l7, { http: true, dns: false, kafka: false, other: ['terminatingTLS', 'serverNames'], serverNames: ['a.example'] });
});

test('type problems carry field paths and positions', (t) => {
  const doc = onePolicy(hostPolicy(`
    ingress:
    - fromCIDR: "10.0.0.0/8"
      toPorts:
      - ports:
        - port: 80
          endPort: "90"
    - fromEntities: [world]
      fromCIRD: [10.0.0.0/8]
    - icmps:
      - fields:
        - {family: IPv4}
    egress: {}
  `));
  const ps = doc.decodeProblems ?? [];
  t.deepEqual(ps.map((p) => [p.field, `${p.pos.line}:${p.pos.col}`, p.severity]), [
    ['spec.ingress[0].fromCIDR', '8:5', 'error'],
    ['spec.ingress[0].toPorts[0].ports[0].port', '11:9', 'error'],
    ['spec.ingress[0].toPorts[0].ports[0].endPort', '12:9', 'error'],
    ['spec.ingress[1].fromCIRD', '14:5', 'error'],
    ['spec.ingress[2].icmps[0].fields[0]', '17:9', 'error'],
    ['spec.egress', '18:3', 'error'],
  ]);
  t.is(ps[0]?.message, 'must be a list, got a string ("10.0.0.0/8")');
  t.is(ps[1]?.message, 'port must be a string (quote it: "80"); the CRD rejects integers');
  t.is(ps[3]?.message, "unknown field fromCIRD in an ingress rule (did you mean fromCIDR?): kubectl --validate=strict rejects it and the API server would prune it, changing the rule's meaning");
  t.is(ps[4]?.message, 'type is required');
  t.is(ps[5]?.message, 'must be a list, got a map');
  // validatePolicy returns the decode problems, so the object counts as invalid.
  t.true(errorsOf(validatePolicy(doc, defaultEngineConfig)).length >= 6);
});

test('unknown fields in rules, port rules, deny port rules, selectors', (t) => {
  const doc = onePolicy(hostPolicy(`
    nodeSelecter: {}
    ingressDeny:
    - fromEntities: [world]
      authentication: {mode: required}
      toPorts:
      - ports: [{port: "22", proto: TCP}]
        rules: {http: [{}]}
    egress:
    - fromEntities: [world]
      toEndpoints:
      - matchLabel: {a: b}
  `));
  t.deepEqual((doc.decodeProblems ?? []).map((p) => p.field), [
    'spec.nodeSelecter',
    'spec.ingressDeny[0].authentication',
    'spec.ingressDeny[0].toPorts[0].ports[0].proto',
    'spec.ingressDeny[0].toPorts[0].rules',
    'spec.egress[0].fromEntities',
    'spec.egress[0].toEndpoints[0].matchLabel',
  ]);
  t.true((doc.decodeProblems ?? []).every((p) => p.code === 'decode/unknown-field' && p.severity === 'error'));
});

test('top-level fields beside spec are ignored with a lint warning', (t) => {
  const doc = onePolicy(`apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\ndescription: "x"\nmetadata: {name: d}\nspec: {nodeSelector: {}, ingress: [{}]}\nstatus: {}\n`);
  t.deepEqual((doc.decodeProblems ?? []).map((p) => [p.severity, p.code, p.field, p.pos.line, p.pos.col]),
    [['warning', 'lint/ignored-field', 'description', 3, 1]]);
});

test('an object with neither spec nor specs is an empty policy', (t) => {
  const doc = onePolicy('apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: e}\n');
  t.deepEqual(doc.rules, []);
  t.deepEqual(validatePolicy(doc, defaultEngineConfig).map((p) => [p.code, p.severity]), [['empty-policy', 'error']]);
});

test('hash: stable across formatting, changes with content', (t) => {
  const a = onePolicy('apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: h}\nspec: {nodeSelector: {}, ingress: [{}]}\n');
  const b = onePolicy('{"spec": {"ingress": [{}], "nodeSelector": {}}, "metadata": {"name": "h"},\n "kind": "CiliumClusterwideNetworkPolicy", "apiVersion": "cilium.io/v2"}');
  const c = onePolicy('apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: h}\nspec: {nodeSelector: {}, egress: [{}]}\n');
  t.is(a.hash, b.hash);
  t.not(a.hash, c.hash);
});

test('locate falls back to the nearest existing ancestor, then to the object', (t) => {
  const doc = onePolicy(hostPolicy('ingress:\n- fromEntities: [world]\n'), 'f.yaml');
  t.deepEqual(doc.locate('spec.ingress[0].fromEntities[0]'), { file: 'f.yaml', line: 8, col: 20 });
  t.deepEqual(doc.locate('spec.ingress[0].toPorts[3].ports[1].port'), { file: 'f.yaml', line: 8, col: 5 });
  t.deepEqual(doc.locate('nothing.here'), doc.pos);
  t.deepEqual(doc.locate(''), { file: 'f.yaml', line: 1, col: 1 });
});

test('a policy without metadata.name is an error; a cluster object without one is skipped', (t) => {
  const r = loadManifestText('apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nspec: {nodeSelector: {}, ingress: [{}]}\n---\nkind: Node\nmetadata: {}\n', 'n.yaml');
  t.deepEqual(errorsOf(r.policies[0]?.decodeProblems ?? []).map((p) => p.message), ['metadata.name is required']);
  t.is(r.objects.length, 0);
  t.deepEqual(r.problems.map((p) => [p.code, p.pos.line]), [['decode/required', 6]]);
});
