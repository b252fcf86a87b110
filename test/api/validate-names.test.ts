// Names, namespaces and selector labels of a policy: what Kubernetes and Cilium refuse is an
// error at file:line:col naming the policy and the field path; what they accept (source
// prefixes, Cilium's own label keys, a label named `constructor`) stays valid.
import test from 'ava';
import { stringify } from 'yaml';
import { formatProblem } from '../../src/api/problem.js';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { validatePolicy } from '../../src/api/validate.js';
import { defaultEngineConfig } from '../../src/inventory/types.js';
import { buildState } from '../../src/pipeline.js';
import { parseConfig } from '../../src/inventory/config.js';
import { dedent, errorsOf, hostPolicy, onePolicy, validateText } from './manifests.js';

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function policyJson(name: string, spec: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name, ...extra }, spec });
}

test('a NUL in the policy name is an error at metadata.name; the problem line is printable', (t) => {
  const text = dedent(`
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata:
      name: "evil\\0name"
    spec:
      nodeSelector: {}
      ingress: [{fromEntities: [world]}]
  `);
  const ps = errorsOf(validatePolicy(onePolicy(text, 'evil.yaml'), defaultEngineConfig));
  t.deepEqual(ps.map((p) => [p.code, p.field, p.pos.file, p.pos.line, p.pos.col]), [['metadata-name', 'metadata.name', 'evil.yaml', 4, 3]]);
  t.is(ps[0]?.policy, 'evil\u0000name');
  const line = formatProblem(ps[0]!);
  t.notRegex(line, CONTROL);
  t.regex(line, /^evil\.yaml:4:3: error: policy evil\\u0000name: metadata\.name: Invalid value: "evil\\u0000name": contains the control character U\+0000 at character 5; a lowercase RFC 1123 subdomain/);
});

test('other names Kubernetes refuses: upper case, too long, newline, bidi override, bad UTF-8', (t) => {
  for (const name of ['Upper', 'a'.repeat(254), 'two\nlines', 'ab\u202ecd', 'x\ufffd', 'with space']) {
    const ps = errorsOf(validatePolicy(onePolicy(policyJson(name, { nodeSelector: {}, ingress: [{}] })), defaultEngineConfig));
    t.deepEqual(ps.map((p) => p.code), ['metadata-name'], JSON.stringify(name));
  }
});

test('a CiliumNetworkPolicy namespace must be a DNS-1123 label', (t) => {
  const text = JSON.stringify({
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p', namespace: 'team\u0000a' },
    spec: { endpointSelector: {}, ingress: [{}] },
  });
  const ps = errorsOf(validatePolicy(onePolicy(text), defaultEngineConfig));
  t.deepEqual(ps.map((p) => [p.code, p.field]), [['metadata-namespace', 'metadata.namespace']]);
  t.regex(ps[0]?.message ?? '', /^Invalid value: "team\\u0000a": contains the control character U\+0000 .*RFC 1123 label/);
});

test('control characters in selector keys and values are errors at their field paths, in every selector', (t) => {
  const spec = {
    nodeSelector: { matchLabels: { 'role\u0000x': 'edge', zone: 'a\nb' }, matchExpressions: [{ key: 'k\u001b', operator: 'In', values: ['ok', 'v\u0000'] }] },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web\u0000' } }] }],
    egress: [{ toEndpoints: [{ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['\u2028'] }] }] }],
  };
  const ps = errorsOf(validatePolicy(onePolicy(policyJson('p', spec), 'p.json'), defaultEngineConfig));
  t.deepEqual(ps.map((p) => [p.code, p.field]).sort(), [
    ['selector-key', 'spec.nodeSelector.matchExpressions[0].key'],
    ['selector-key', 'spec.nodeSelector.matchLabels["role\\u0000x"]'],
    ['selector-value', 'spec.egress[0].toEndpoints[0].matchExpressions[0].values[0]'],
    ['selector-value', 'spec.ingress[0].fromEndpoints[0].matchLabels.app'],
    ['selector-value', 'spec.nodeSelector.matchExpressions[0].values[1]'],
    ['selector-value', 'spec.nodeSelector.matchLabels.zone'],
  ].sort());
  for (const p of ps) {
    t.is(p.policy, 'p');
    t.is(p.pos.file, 'p.json');
    t.true(p.pos.line >= 1 && p.pos.col >= 1);
    t.notRegex(formatProblem(p), CONTROL);
    t.regex(p.message, /^invalid label (key|value): Invalid value: ".*": contains /);
  }
});

test('selector key positions point at the key in YAML', (t) => {
  const ps = errorsOf(validateText(hostPolicy('ingress:\n- fromEndpoints:\n  - matchLabels:\n      "a\\tb": x\n')));
  t.deepEqual(ps.map((p) => [p.field, p.pos.line, p.pos.col]), [['spec.ingress[0].fromEndpoints[0].matchLabels["a\\tb"]', 10, 9]]);
});

test('what Cilium accepts in selectors stays valid: source prefixes, Cilium label keys, empty values', (t) => {
  const ps = validateText(hostPolicy(dedent(`
    ingress:
    - fromEndpoints:
      - matchLabels:
          k8s:io.kubernetes.pod.namespace: kube-system
          any:app: web
          io.cilium.k8s.policy.serviceaccount: sa
          k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name: team-a
          node-role.kubernetes.io/control-plane: ""
        matchExpressions:
        - {key: reserved:host, operator: Exists}
        - {key: k8s:app.kubernetes.io/name, operator: In, values: [a, B_1.x]}
  `), 'nodeSelector: {matchLabels: {"node:kubernetes.io/hostname": node-a, constructor: "yes"}}'));
  t.deepEqual(errorsOf(ps), []);
});

test('over-long and malformed selector labels are refused as by Cilium', (t) => {
  const ps = errorsOf(validateText(hostPolicy(`ingress:\n- fromEndpoints:\n  - matchLabels: {app: ${'v'.repeat(64)}, "k8s:a:b": x, "bad key": y}\n`)));
  t.deepEqual(ps.map((p) => p.message.replace(/: Invalid value.*?": /, ': ')).sort(), [
    "invalid label key: a valid label key only support ':' character as a source separator with non empty value",
    "invalid label key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')",
    'invalid label value: must be no more than 63 characters',
  ]);
});

test('matchLabels {__proto__: x} is an invalid key, not dropped into a wildcard selector', (t) => {
  for (const text of [
    hostPolicy('ingress: [{fromEntities: [world]}]', 'nodeSelector: {matchLabels: {__proto__: x}}'),
    policyJson('t', { nodeSelector: { matchLabels: JSON.parse('{"__proto__": "x"}') as unknown }, ingress: [{ fromEntities: ['world'] }] }),
  ]) {
    const doc = onePolicy(text);
    t.true(Object.hasOwn(doc.rules[0]?.nodeSelector?.matchLabels ?? {}, '__proto__'), 'kept as an own key');
    const ps = errorsOf(validatePolicy(doc, defaultEngineConfig));
    t.deepEqual(ps.map((p) => [p.code, p.field]), [['selector-key', 'spec.nodeSelector.matchLabels.__proto__']]);
  }
});

test('a node label named constructor selects exactly the nodes that carry it', (t) => {
  const config = parseConfig('nodeName: node-a\nmode: enforce\n', '/etc/nodewall/nodewall.yaml');
  const policies = (selector: string) => loadManifestText(stringify([
    { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'by-constructor' },
      spec: { nodeSelector: JSON.parse(selector) as unknown, ingress: [{ fromEntities: ['world'] }] } },
  ][0]), 'p.yaml');
  const nodes = (labels: Record<string, string>) => loadManifestText(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', labels } }), 'n.json');
  const selected = (selector: string, labels: Record<string, string>): string[] => {
    const p = policies(selector);
    const n = nodes(labels);
    const s = buildState({ config, nodeName: 'node-a', load: { policies: p.policies, objects: n.objects, problems: [...p.problems, ...n.problems] } });
    t.deepEqual(errorsOf(s.problems), []);
    return [...s.model.selectedPolicies];
  };
  t.deepEqual(selected('{"matchLabels": {"constructor": "yes"}}', { constructor: 'yes' }), ['by-constructor']);
  t.deepEqual(selected('{"matchLabels": {"constructor": "yes"}}', { other: 'yes' }), []);
  t.deepEqual(selected('{"matchExpressions": [{"key": "constructor", "operator": "Exists"}]}', {}), []);
  t.deepEqual(selected('{"matchExpressions": [{"key": "toString", "operator": "DoesNotExist"}]}', {}), ['by-constructor']);
  t.deepEqual(selected('{"matchExpressions": [{"key": "k8s:valueOf", "operator": "In", "values": ["1"]}]}', { valueOf: '1' }), ['by-constructor']);
});

test('cluster objects: a Node whose name or labels carry control characters is an error and skipped', (t) => {
  const r = loadManifestText(dedent(`
    kind: Node
    metadata: {name: "node\\0a"}
    ---
    kind: Node
    metadata:
      name: node-b
      labels: {"zone\\n": a}
    ---
    kind: Node
    metadata:
      name: node-c
      labels: {zone: "a\\u001b"}
    ---
    kind: Pod
    metadata: {name: p, namespace: "ns\\0"}
    ---
    kind: Node
    metadata: {name: node-d, labels: {constructor: "yes"}}
  `), 'o.yaml');
  t.deepEqual(r.objects.map((o) => o.metadata.name), ['node-d']);
  t.deepEqual(r.objects[0]?.metadata.labels, { constructor: 'yes' });
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, p.field, p.pos.line]), [
    ['error', 'decode/metadata', 'metadata.name', 2],
    ['error', 'decode/metadata', 'metadata.labels["zone\\n"]', 7],
    ['error', 'decode/metadata', 'metadata.labels.zone', 12],
    ['error', 'decode/metadata', 'metadata.namespace', 15],
  ]);
  for (const p of r.problems) {
    t.regex(p.message, /: skipped$/);
    t.notRegex(formatProblem(p), CONTROL);
  }
});
