import test from 'ava';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { loadManifestPaths } from '../../src/inventory/load-manifest-files.js';
import { validatePolicy } from '../../src/api/validate.js';
import { defaultEngineConfig } from '../../src/inventory/types.js';
import { corpusDir, corpusFile, corpusFiles } from './corpus.js';
import { dedent, errorsOf, hostPolicy, onePolicy } from './manifests.js';

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the corpus is there', (t) => {
  t.is(corpusFiles().length, 17);
});

for (const name of corpusFiles()) {
  test(`corpus ${name} loads without load problems`, async (t) => {
    const r = await loadManifestPaths([corpusFile(name)]);
    t.true(r.policies.length >= 1);
    t.deepEqual(errorsOf(r.problems), []);
    for (const p of r.policies) {
      t.is(p.pos.file, corpusFile(name));
      t.regex(p.hash, /^[0-9a-f]{16}$/);
      t.true(p.rules.length >= 1);
    }
  });
}

test('whole corpus directory: 18 policies, ClusterResourceSet skipped, sorted by file', async (t) => {
  const r = await loadManifestPaths([corpusDir]);
  t.is(r.policies.length, 18);
  t.is(r.objects.length, 0);
  t.is(r.skipped, 1);
  const files = r.policies.map((p) => p.pos.file);
  t.deepEqual(files, [...files].sort());
  t.is(r.policies.find((p) => p.name === 'host-policy')?.rules.length, 4);
});

test('linode ConfigMap: embedded policies with positions in the outer file', async (t) => {
  const file = corpusFile('linode-capl-cilium-policies-configmap.yaml');
  const r = await loadManifestPaths([file]);
  t.deepEqual(r.policies.map((p) => p.name), ['default-cluster-policy', 'default-external-policy']);
  const [pod, host] = r.policies;
  if (pod === undefined || host === undefined) return t.fail();
  t.deepEqual(pod.pos, { file, line: 7, col: 5 });
  t.deepEqual(host.pos, { file, line: 21, col: 5 });
  t.deepEqual(pod.rules[0]?.endpointSelector, {});
  t.deepEqual(host.rules[0]?.nodeSelector, {});
  // `- ${VPC_NETWORK_CIDR:=10.0.0.0/8}` on line 32, `port: "${APISERVER_PORT:=6443}"` on line 37
  t.deepEqual(host.locate('spec.ingress[1].fromCIDR[0]'), { file, line: 32, col: 15 });
  t.deepEqual(host.locate('spec.ingress[2].toPorts[0].ports[0].port'), { file, line: 37, col: 17 });
  t.deepEqual(host.locate('spec.ingress[2].fromEntities'), { file, line: 33, col: 11 });
  t.deepEqual(host.rules[0]?.ingress?.[1]?.cidr, ['10.0.0.0/8']);
  t.deepEqual(host.rules[0]?.ingress?.[2]?.toPorts?.[0]?.ports, [{ port: '6443' }]);
  const warnings = r.problems.map((p) => [p.code, p.policy, `${p.pos.line}:${p.pos.col}`, p.message]);
  t.deepEqual(warnings.map((w) => w.slice(0, 3)), [
    ['template/default-used', 'default-cluster-policy', '18:15'],
    ['template/default-used', 'default-external-policy', '32:15'],
    ['template/default-used', 'default-external-policy', '37:24'],
  ]);
  t.regex(String(warnings[2]?.[3]), /\$\{APISERVER_PORT:=6443\}.*default "6443".*not the environment/);
  t.true(r.problems.every((p) => p.severity === 'warning'));
});

test('an error inside a ConfigMap-embedded manifest points into the outer file', (t) => {
  const original = readFileSync(corpusFile('linode-capl-cilium-policies-configmap.yaml'), 'utf8');
  const broken = original.replace('- port: "${APISERVER_PORT:=6443}"', '- port: 6443\n                protocl: TCP');
  t.not(broken, original);
  const r = loadManifestText(broken, 'cm.yaml');
  const host = r.policies[1];
  if (host === undefined) return t.fail();
  const ps = validatePolicy(host, defaultEngineConfig);
  t.deepEqual(ps.map((p) => [p.field, `${p.pos.file}:${p.pos.line}:${p.pos.col}`]), [
    ['spec.ingress[2].toPorts[0].ports[0].port', 'cm.yaml:37:17'],
    ['spec.ingress[2].toPorts[0].ports[0].protocl', 'cm.yaml:38:17'],
  ]);
  t.is(ps[0]?.message, 'port must be a string (quote it: "6443"); the CRD rejects integers');
  t.regex(ps[1]?.message ?? '', /^unknown field protocl .*did you mean protocol\?/);
});

test('YAML syntax error in an embedded manifest is reported at the outer position', (t) => {
  const text = dedent(`
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: x
    data:
      p.yaml: |
        kind: CiliumClusterwideNetworkPolicy
        metadata: {name: a
        spec: {}
  `);
  const r = loadManifestText(text, 'cm.yaml');
  t.is(r.policies.length, 0);
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, `${p.pos.file}:${p.pos.line}:${p.pos.col}`]),
    [['error', 'yaml/bad-indent', 'cm.yaml:9:5']]);
});

test('a ConfigMap value holding JSON policies is loaded too (positions: the value start)', (t) => {
  const policy = JSON.stringify({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'j' },
    spec: { nodeSelector: {}, ingress: [{ fromEntities: ['wrold'] }] } });
  const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  other: "not a policy"\n  p.json: ${JSON.stringify(policy)}\n`;
  const r = loadManifestText(text, 'cm.yaml');
  t.deepEqual(r.policies.map((p) => [p.name, p.pos.line, p.pos.col]), [['j', 6, 11]]);
  t.deepEqual(validatePolicy(r.policies[0]!, defaultEngineConfig).map((p) => [p.message, p.pos.line, p.pos.col]),
    [['unsupported entity: wrold', 6, 11]]);
  t.is(r.skipped, 0);
  // A ConfigMap without embedded policies is just skipped.
  t.is(loadManifestText('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata: {a: b}\n', 'c.yaml').skipped, 1);
});

test('an alias bomb is an error problem for its document only', (t) => {
  const bomb = [
    'a: &a [x, x, x, x, x, x, x, x, x, x]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'kind: CiliumClusterwideNetworkPolicy',
    '---',
    'apiVersion: v1',
    'kind: Node',
    'metadata: {name: n}',
  ].join('\n');
  const r = loadManifestText(bomb, 'b.yaml');
  t.deepEqual(r.objects.map((o) => o.metadata.name), ['n']);
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, p.pos.line]), [['error', 'load/document', 1]]);
});

test('multi-document stream: policies, cluster objects, skipped kinds', (t) => {
  const text = dedent(`
    apiVersion: v1
    kind: Node
    metadata:
      name: node-a
      labels: {a: b}
    status:
      addresses: [{type: InternalIP, address: 192.0.2.1}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: s}
    ---
    ---
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: n, namespace: ns1}
    spec: {endpointSelector: {}, ingress: [{}]}
    ---
    apiVersion: cilium.io/v2alpha1
    kind: CiliumClusterwideNetworkPolicy
    metadata: {name: old}
  `);
  const r = loadManifestText(text, 'm.yaml');
  t.deepEqual(r.objects.map((o) => [o.kind, o.metadata.name, o.pos?.line]), [['Node', 'node-a', 1]]);
  t.deepEqual(r.objects[0]?.metadata.labels, { a: 'b' });
  t.deepEqual(r.policies.map((p) => [p.kind, p.name, p.namespace, p.pos.line]), [['CiliumNetworkPolicy', 'n', 'ns1', 14]]);
  t.is(r.skipped, 2);
  t.deepEqual(r.problems.map((p) => [p.code, p.pos.line]), [['load/api-version', 19]]);
});

test('kind: List and typed *List wrappers keep item positions', (t) => {
  const text = dedent(`
    apiVersion: v1
    kind: List
    items:
    - apiVersion: cilium.io/v2
      kind: CiliumClusterwideNetworkPolicy
      metadata: {name: in-list}
      spec: {nodeSelector: {}, ingress: [{fromEntities: [wrold]}]}
    - apiVersion: v1
      kind: Pod
      metadata: {name: p, namespace: default}
    ---
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicyList
    items:
    - metadata: {name: typed}
      spec: {nodeSelector: {}, egress: [{}]}
  `);
  const r = loadManifestText(text, 'l.yaml');
  t.deepEqual(r.policies.map((p) => [p.name, p.kind, p.pos.line, p.pos.col]),
    [['in-list', 'CiliumClusterwideNetworkPolicy', 4, 3], ['typed', 'CiliumClusterwideNetworkPolicy', 15, 3]]);
  t.deepEqual(r.objects.map((o) => [o.kind, o.metadata.name, o.pos?.line, o.pos?.col]), [['Pod', 'p', 8, 3]]);
  const ps = validatePolicy(r.policies[0]!, defaultEngineConfig);
  t.deepEqual(ps.map((p) => [p.message, p.pos.line, p.pos.col]), [['unsupported entity: wrold', 7, 54]]);
});

test('JSON input with positions', (t) => {
  const json = JSON.stringify({
    apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'j' },
    spec: { nodeSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 22, protocol: 'TCP' }] }] }] },
  }, null, '\t');
  const doc = onePolicy(json, 'p.json');
  const [p] = doc.decodeProblems ?? [];
  t.is(p?.field, 'spec.ingress[0].toPorts[0].ports[0].port');
  const line = json.split('\n').findIndex((l) => l.includes('"port": 22')) + 1;
  t.deepEqual(p?.pos, { file: 'p.json', line, col: json.split('\n')[line - 1]!.indexOf('"port"') + 1 });
});

test('duplicate keys are a syntax error; other documents of the file still load', (t) => {
  const text = dedent(`
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata: {name: a}
    spec:
      nodeSelector: {}
      ingress: [{}]
      ingress: [{fromEntities: [world]}]
    ---
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata: {name: b}
    spec: {nodeSelector: {}, ingress: [{}]}
  `);
  const r = loadManifestText(text, 'd.yaml');
  t.deepEqual(r.policies.map((p) => p.name), ['b']);
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, `${p.pos.file}:${p.pos.line}:${p.pos.col}`]),
    [['error', 'yaml/duplicate-key', 'd.yaml:7:3']]);
  t.regex(r.problems[0]?.message ?? '', /unique/);
});

test('unreadable paths are error problems, never throws', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'ok.yaml'), hostPolicy('ingress: [{}]'));
  symlinkSync(join(dir, 'missing.yaml'), join(dir, 'dangling.yaml'));
  const r = await loadManifestPaths([join(dir, 'nope.yaml'), dir]);
  t.deepEqual(r.policies.map((p) => p.pos.file), [join(dir, 'ok.yaml')]);
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, p.pos.file, p.pos.line, p.pos.col]), [
    ['error', 'load/unreadable', join(dir, 'nope.yaml'), 1, 1],
    ['error', 'load/unreadable', join(dir, 'dangling.yaml'), 1, 1],
  ]);
  t.regex(r.problems[0]?.message ?? '', /ENOENT/);
});

test('directories: recursive, sorted, only .yaml/.yml/.json, hidden entries skipped', async (t) => {
  const dir = tempDir(t);
  const named = (n: string): string => hostPolicy('ingress: [{}]').replace('name: t', `name: ${n}`);
  mkdirSync(join(dir, 'b-sub', 'deeper'), { recursive: true });
  mkdirSync(join(dir, '..data'));
  writeFileSync(join(dir, 'c.yml'), named('c'));
  writeFileSync(join(dir, 'a.json'), JSON.stringify({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'a' }, spec: { nodeSelector: {}, ingress: [{}] } }));
  writeFileSync(join(dir, 'b-sub', 'deeper', 'x.yaml'), named('x'));
  writeFileSync(join(dir, 'notes.txt'), named('txt'));
  writeFileSync(join(dir, '..data', 'dup.yaml'), named('dup'));
  writeFileSync(join(dir, '.hidden.yaml'), named('hidden'));
  const r = await loadManifestPaths([dir, join(dir, 'c.yml')]);
  t.deepEqual(r.policies.map((p) => p.name), ['a', 'x', 'c']);
  t.deepEqual(r.problems, []);
  // An explicitly named file is read whatever its extension.
  const explicit = await loadManifestPaths([join(dir, 'notes.txt')]);
  t.deepEqual(explicit.policies.map((p) => p.name), ['txt']);
});

test('templates: only :=/:- placeholders expand; plain scalars are re-read; bare ${VAR} stays', (t) => {
  const doc = onePolicy(hostPolicy(`
    ingress:
    - fromCIDR: ["\${A:-192.0.2.0/24}", "\${B}"]
      toPorts:
      - ports:
        - port: \${P:=80}
  `), 'tpl.yaml');
  const r = loadManifestText(hostPolicy(`
    ingress:
    - fromCIDR: ["\${A:-192.0.2.0/24}", "\${B}"]
      toPorts:
      - ports:
        - port: \${P:=80}
  `), 'tpl.yaml');
  t.deepEqual(doc.rules[0]?.ingress?.[0]?.cidr, ['192.0.2.0/24', '${B}']);
  t.deepEqual(r.problems.map((p) => [p.code, p.pos.line, p.pos.col]), [
    ['template/default-used', 8, 17],
    ['template/default-used', 11, 15],
  ]);
  const errors = errorsOf(validatePolicy(doc, defaultEngineConfig));
  t.deepEqual(errors.map((p) => p.field), ['spec.ingress[0].toPorts[0].ports[0].port', 'spec.ingress[0].fromCIDR[1]']);
  t.regex(errors[1]?.message ?? '', /unable to parse CIDR: .*\$\{B\}/);
});

test('files without placeholders are not touched', (t) => {
  const r = loadManifestText(hostPolicy('ingress: [{fromEndpoints: [{matchLabels: {v: "$HOME"}}]}]'), 'x.yaml');
  t.deepEqual(r.problems, []);
  t.deepEqual(r.policies[0]?.rules[0]?.ingress?.[0]?.endpoints, [{ matchLabels: { v: '$HOME' } }]);
});

test('cluster objects: labels must be strings, null labels are absent', (t) => {
  const r = loadManifestText(dedent(`
    kind: Node
    metadata:
      name: a
      labels:
        zone: 1
    ---
    kind: Node
    metadata: {name: b, labels: null, namespace: null}
    ---
    kind: Pod
    metadata: {name: c, namespace: ns, labels: {app: x}}
  `), 'o.yaml');
  t.deepEqual(r.objects.map((o) => [o.metadata.name, o.metadata.labels, o.metadata.namespace]),
    [['b', undefined, undefined], ['c', { app: 'x' }, 'ns']]);
  t.deepEqual(r.problems.map((p) => [p.code, p.field, p.pos.line, p.pos.col]), [['decode/type', 'metadata.labels.zone', 5, 5]]);
  t.regex(r.problems[0]?.message ?? '', /label zone must be a string \(quote it\), got a number \(1\)/);
});
