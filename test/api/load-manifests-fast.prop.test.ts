// Differential test of the loader's fast path (fast-yaml.ts, fast-json.ts,
// split-documents.ts): for random manifests of the object kinds, hostile ones
// included, loadManifestText gives exactly what the full position-tracking
// parser gives (`{ fast: false }`): the same objects with the same positions,
// the same policies (same positions for every field), the same problems, the
// same skip count. Fixed seeds, bounded runs.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { stringify } from 'yaml';
import { isDeepStrictEqual } from 'node:util';
import { loadManifestText, type LoadResult } from '../../src/api/load-manifests.js';
import { decodeFastYamlDocument, resolvePlainScalar } from '../../src/api/fast-yaml.js';
import { decodeFastJson } from '../../src/api/fast-json.js';
import { generateCluster } from '../../bench/synthetic.js';
import { comparableLoad } from '../helpers/load-comparable.js';

const FILE = '/srv/manifests/cluster.yaml';

const locatePaths = ['', 'metadata', 'metadata.name', 'spec', 'spec.nodeSelector', 'spec.ingress', 'spec.ingress[0]', 'spec.ingress[0].toPorts[0].ports[0].port', 'specs[1].egress', 'nope.deeper'];

const comparable = (r: LoadResult): unknown => comparableLoad(r, locatePaths);

function same(text: string): { equal: boolean; fast: unknown; slow: unknown } {
  const fast = comparable(loadManifestText(text, FILE));
  const slow = comparable(loadManifestText(text, FILE, { fast: false }));
  return { equal: isDeepStrictEqual(fast, slow), fast, slow };
}

function assertSame(t: { true: (v: boolean, m?: string) => void }, text: string): void {
  const r = same(text);
  t.true(r.equal, `fast and full parser differ on:\n${text}\nfast: ${JSON.stringify(r.fast)}\nslow: ${JSON.stringify(r.slow)}`);
}

// ---- random objects ------------------------------------------------------------------------

const plainish = fc.constantFrom(
  'web', 'node-1', 'kube-system', '10.0.0.1', '2001:db8::1', 'k8s:io.kubernetes.pod.namespace', 'a#b', 'a #b', 'a: b', 'a:', ':a', '-a', '- a',
  '?a', '? a', 'true', 'True', 'TRUE', 'yes', 'no', 'on', 'null', 'Null', '~', '', ' ', '0', '-0', '+1', '012', '0o17', '0x1F', '0xg', '1.5', '1.', '.5',
  '1e3', '1E-3', '.inf', '-.Inf', '.nan', '.NaN', 'NaN', '12345678901234567890', '1_000', '2024-01-01', '12:30', '@x', '`x', '!x', '&x', '*x', '|', '>',
  '%x', "it's", 'say "hi"', '[a]', '{a}', 'a,b', '#x', 'x #', '${A:=1}', '${B}', 'tab\there', 'cr\rhere', 'nl\nhere', 'ünïcödé', '\u2028', '\ufeff',
  '\u0085', 'a  b', ' lead', 'trail ', '---', '...', '<<', '__proto__', 'constructor', 'toString', 'x'.repeat(1100),
);
const anyString = fc.oneof(plainish, fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }));
const scalar = fc.oneof(anyString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(2 ** 60));
const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('app', 'tier', 'name', 'k8s:io.cilium.k8s.policy.cluster', 'node-role.kubernetes.io/control-plane', 'team', 'x') }, { weight: 1, arbitrary: anyString });
const tree = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('list'), tie('map')),
  list: fc.array(tie('node'), { maxLength: 3 }),
  map: fc.dictionary(key, tie('node'), { maxKeys: 3 }),
})).node;
const labels = fc.oneof(
  { weight: 5, arbitrary: fc.dictionary(fc.constantFrom('app', 'tier', 'pool', 'node-role.kubernetes.io/worker', 'k8s-app'), fc.constantFrom('web', 'db', 'p1', '', 'a.b-c')) },
  { weight: 1, arbitrary: fc.dictionary(key, scalar, { maxKeys: 3 }) },
  { weight: 1, arbitrary: scalar },
);
const name = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('pod-1', 'node-7', 'default', 'a.b.c', 'x') }, { weight: 1, arbitrary: scalar });
const objectKind = fc.constantFrom('Node', 'Pod', 'CiliumEndpoint', 'Namespace', 'EndpointSlice', 'CiliumNode', 'Endpoints', 'Service', 'ConfigMap');
const metadata = fc.record({ name, namespace: fc.oneof(fc.constantFrom('default', 'prod', 'Bad_NS'), scalar), labels }, { requiredKeys: [] });
const kubeObject = fc.record({
  apiVersion: fc.constantFrom('v1', 'cilium.io/v2', 'discovery.k8s.io/v1'),
  kind: objectKind,
  metadata,
  spec: tree,
  status: fc.record({ podIPs: fc.array(fc.record({ ip: fc.constantFrom('100.65.0.1', '2001:db8:1::1') }), { maxLength: 2 }), phase: fc.constant('Running') }),
  data: fc.dictionary(key, fc.oneof(anyString, fc.constant('apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: from-cm\nspec:\n  nodeSelector: {}\n'))),
}, { requiredKeys: ['kind', 'metadata'] });
const policy = fc.record({
  apiVersion: fc.constantFrom('cilium.io/v2', 'cilium.io/v1'),
  kind: fc.constant('CiliumClusterwideNetworkPolicy'),
  metadata: fc.record({ name: fc.constantFrom('host-a', 'host-b') }),
  spec: fc.record({
    nodeSelector: fc.oneof(fc.constant({}), fc.record({ matchLabels: fc.dictionary(key, scalar, { maxKeys: 2 }) })),
    ingress: fc.constant([{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }]),
    egress: fc.array(fc.record({ toCIDR: fc.array(fc.constantFrom('192.0.2.0/24', '2001:db8::/33', 'nope', '10.0.0.1/40'), { maxLength: 2 }), toPorts: tree }, { requiredKeys: [] }), { maxLength: 2 }),
    bogus: tree,
  }, { requiredKeys: ['nodeSelector', 'ingress'] }),
});
const list = fc.record({
  apiVersion: fc.constant('v1'),
  kind: fc.constantFrom('List', 'PodList', 'NodeList'),
  items: fc.array(fc.oneof({ weight: 5, arbitrary: kubeObject }, { weight: 1, arbitrary: policy }, { weight: 1, arbitrary: scalar }), { maxLength: 4 }),
});
const manifest = fc.oneof({ weight: 6, arbitrary: kubeObject }, { weight: 2, arbitrary: list }, { weight: 1, arbitrary: policy }, { weight: 1, arbitrary: tree });

// ---- rendering: yaml's own styles, kubectl's style, and line-level damage ------------------------

const style = fc.record({
  indent: fc.constantFrom(2, 4),
  indentSeq: fc.boolean(),
  flowLevel: fc.constantFrom(undefined, 1, 2, 3),
  commentEvery: fc.constantFrom(0, 2, 3),
  trailingSpace: fc.boolean(),
});

function render(doc: unknown, s: { indent: number; indentSeq: boolean; flowLevel: number | undefined; commentEvery: number; trailingSpace: boolean }): string {
  const collectionStyle = s.flowLevel === undefined ? 'block' : 'any';
  let text = stringify(doc, { indent: s.indent, indentSeq: s.indentSeq, collectionStyle, lineWidth: 0, ...(s.flowLevel === undefined ? {} : { flowCollectionPadding: false }) });
  const lines = text.split('\n');
  if (s.commentEvery > 0 || s.trailingSpace) {
    text = lines.map((l, i) => {
      let out = l;
      if (s.trailingSpace && i % 2 === 0 && l !== '') out += '  ';
      if (s.commentEvery > 0 && i % s.commentEvery === 1) out += l.trim() === '' ? '# note' : ' # note';
      return out;
    }).join('\n');
  }
  return text;
}

const damage = fc.constantFrom(
  (l: string) => l, (l: string) => l, (l: string) => l,
  (l: string) => `${l}\n${l}`, // duplicate key
  (l: string) => l.replace(/: /, ': &a '), (l: string) => l.replace(/: .*/, ': *a'), (l: string) => l.replace(/^(\s*)(-\s)?/, '$1$2<<: *a\n$1$2'),
  (l: string) => l.replace(/: /, ': !!str '), (l: string) => l.replace(/: /, ': !custom '), (l: string) => ` ${l}`, (l: string) => l.replace(/^ /, ''),
  (l: string) => l.replace(/^ {2}/, '\t'), (l: string) => `${l}\r`, (l: string) => `${l} # c`, (l: string) => `${l}#c`, (l: string) => `---\n${l}`,
  (l: string) => `...\n${l}`, (l: string) => `%YAML 1.2\n---\n${l}`, (l: string) => `\ufeff${l}`, (l: string) => l.replace(/: (.*)/, ': |\n    $1'),
  (l: string) => l.replace(/: (.*)/, ': "$1'), (l: string) => l.replace(/: (.*)/, ': \'$1\''), (l: string) => l.replace(/: (.*)/, ': "a\\tb"'),
  (l: string) => l.replace(/: (.*)/, ':\n  continued $1'), (l: string) => l.replace(/: (.*)/, ': [$1, x]'), (l: string) => l.replace(/: (.*)/, ': {}'),
  (l: string) => l.replace(/: (.*)/, ': ${N:=7}'), (l: string) => l.replace(/^(\s*)/, '$1? '), (l: string) => l.replace(/^(\s*)-/, '$1- -'), () => '',
);

const damagedDoc = fc.tuple(manifest, style, fc.array(fc.tuple(fc.nat(), damage), { maxLength: 2 })).map(([doc, s, edits]) => {
  const lines = render(doc, s).split('\n');
  for (const [at, edit] of edits) {
    const i = lines.length === 0 ? 0 : at % lines.length;
    lines[i] = edit(lines[i] ?? '');
  }
  return lines.join('\n');
});

const separator = fc.constantFrom('---\n', '--- # next\n', '---\n\n# between\n', '---   \n', '\n---\n');
const stream = fc.tuple(fc.array(fc.tuple(damagedDoc, separator), { minLength: 1, maxLength: 4 }), fc.boolean()).map(([docs, lead]) =>
  (lead ? '---\n' : '') + docs.map(([d, sep], i) => (i === 0 ? d : sep + d)).join(''));

testProp('fast path = full parser: multi-document YAML streams of objects, lists and policies, undamaged', [fc.array(fc.tuple(manifest, style), { minLength: 1, maxLength: 4 })], (t, docs) => {
  assertSame(t, docs.map(([d, s]) => render(d, s)).join('---\n'));
}, { numRuns: 300, seed: 0x9f01 });

testProp('fast path = full parser: damaged streams (anchors, aliases, merge keys, duplicate keys, tags, tabs, CR, markers, bad indentation)', [stream], (t, text) => {
  assertSame(t, text);
}, { numRuns: 600, seed: 0x9f02 });

const flowDoc = fc.tuple(fc.array(fc.oneof(plainish, fc.string({ maxLength: 6 }), fc.constantFrom('-1', '1.5', '  x', 'a b', 'x ')), { maxLength: 4 }), fc.constantFrom(', ', ',', ' , '))
  .map(([items, sep]) => `kind: Pod\nmetadata:\n  name: p\n  labels: {}\nspec:\n  xs: [${items.join(sep)}]\n  list:\n  - [${items.join(sep)}]  # c\n`);

testProp('fast path = full parser: one-line flow sequences of (hostile) scalars', [flowDoc], (t, text) => {
  assertSame(t, text);
}, { numRuns: 500, seed: 0x9f04 });

const jsonText = fc.tuple(fc.oneof(list, kubeObject, policy, tree), fc.constantFrom(0, 1, 2, '\t', ' \n '))
  .map(([doc, indent]) => (typeof indent === 'string' && indent.includes('\n') ? JSON.stringify(doc, null, 2).replace(/\n/g, '\n\n') : JSON.stringify(doc, null, indent)));
const jsonDamage = fc.constantFrom(
  (s: string) => s, (s: string) => s,
  (s: string) => s.replace(/"name":/, '"name": "dup", "name":'), (s: string) => s.replace(/\{/, '{"__proto__": {"x": 1}, '),
  (s: string) => s.replace(/"kind"/, '"\\u006bind"'), (s: string) => s.replace(/"items"/, '"\\u0069tems"'), (s: string) => s.replace(/:/, '\n:'),
  (s: string) => s.replace(/"web"/, '"\\u0024{A:=1}"'), (s: string) => s.replace(/\{/, '{"n": 123456789012345678901, '), (s: string) => s.replace(/\{/, '{"n": -0, "f": 1.50, "e": 1e400, '),
  (s: string) => s.replace(/\n/g, '\r\n'), (s: string) => `${s}\n${s}`, (s: string) => `  \n${s}\n`, (s: string) => s.replace(/"v1"/, '"v\\u0000"'),
  (s: string) => s.replace(/"v1"/, '"\u2028"'), (s: string) => s.replace(/\}$/, ''), () => `${'['.repeat(80)}${']'.repeat(80)}`,
);

testProp('fast path = full parser: JSON files (Lists, objects, policies, hostile keys and numbers)', [jsonText, jsonDamage], (t, text, edit) => {
  assertSame(t, edit(text));
}, { numRuns: 400, seed: 0x9f03 });

// ---- the fast path is actually taken -----------------------------------------------------------

test('the synthetic benchmark cluster goes through the fast path, with the full parser\'s result', (t) => {
  const c = generateCluster({ policies: 20, nodes: 10, pods: 60 });
  assertSame(t, c.clusterYaml);
  assertSame(t, c.policiesYaml);
  assertSame(t, `${c.clusterYaml}---\n${c.policiesYaml}`);
  const firstPod = c.clusterYaml.indexOf('kind: Pod') - 'apiVersion: v1\n'.length;
  const line = c.clusterYaml.slice(0, firstPod).split('\n').length;
  const doc = decodeFastYamlDocument(c.clusterYaml, firstPod, c.clusterYaml.indexOf('---', firstPod), line);
  t.truthy(doc, 'a synthetic pod document is inside the fast subset');
  t.deepEqual(doc?.rootPos, { line, col: 1 });
});

test('a kubectl-style List in YAML and in JSON goes through the fast path with item positions', (t) => {
  const pods = [0, 1, 2].map((i) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'default', labels: { app: 'web' } }, status: { podIP: `100.65.0.${i}` } }));
  const yamlText = stringify({ apiVersion: 'v1', kind: 'List', items: pods }, { indentSeq: false });
  const y = decodeFastYamlDocument(yamlText, 0, yamlText.length, 1);
  const dashLines = yamlText.split('\n').flatMap((l, i) => (l.startsWith('- ') ? [{ line: i + 1, col: 3 }] : []));
  t.is(dashLines.length, 3);
  t.deepEqual(y?.itemPos, dashLines);
  assertSame(t, yamlText);
  const jsonText = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods }, null, 2);
  const j = decodeFastJson(jsonText);
  t.is(j !== undefined && 'itemPos' in j ? j.itemPos?.length : undefined, 3);
  assertSame(t, jsonText);
  const r = loadManifestText(jsonText, FILE);
  const braceLines = jsonText.split('\n').flatMap((l, i) => (l === '    {' ? [{ file: FILE, line: i + 1, col: 5 }] : []));
  t.is(braceLines.length, 3);
  t.deepEqual(r.objects.map((o) => o.pos), braceLines);
});

test('the fast decoders decline what they cannot read exactly', (t) => {
  const declined = ['a: &x 1\nb: *x\n', 'a: 1\na: 2\n', '<<: {a: 1}\n', 'a: !!str 1\n', 'a: |\n  x\n', 'a: "x\\ty"\n', 'a:\n\t- 1\n', 'a: 1\r\n', 'a: [x: 1]\n', 'a: [x, [y]]\n', 'a: [x,]\n', 'a: [ ]\n', 'a: ["x"]\n', 'a: [&x y]\n', 'a: [x, 2001:db8::/32]\n', 'a: {b: 1}\n',
    'a: ${X:=1}\n', '1: x\n', 'true: x\n', '__proto__: x\n', 'a: b\n  c\n', 'a: b: c\n', '- - a\n', 'a\n'];
  for (const text of declined) t.is(decodeFastYamlDocument(text, 0, text.length, 1), undefined, JSON.stringify(text));
  t.deepEqual(decodeFastYamlDocument('a: [world, 10.0.0.0/8 , 5, true]\n', 0, 33, 1)?.value, { a: ['world', '10.0.0.0/8', 5, true] });
  for (const text of ['{"a": 1, "a": 2}', '{"__proto__": 1}', '{"a": "${X:=1}"}', '{"n": 12345678901234567}', '[1] [2]', '{"a": "\u2028"}']) {
    t.is(decodeFastJson(text), undefined, text);
  }
});

test('plain scalars resolve as yaml\'s core schema does', (t) => {
  const cases: [string, unknown][] = [['~', null], ['null', null], ['NULL', null], ['nUll', 'nUll'], ['True', true], ['FALSE', false], ['yes', 'yes'], ['0o17', 15], ['017', 17],
    ['-0', -0], ['+12', 12], ['0x1F', 31], ['0X1F', '0X1F'], ['1.5', 1.5], ['1.', 1], ['.5', 0.5], ['1e3', 1000], ['-.inf', -Infinity], ['.NaN', NaN], ['1_0', '1_0'], ['web', 'web']];
  for (const [s, v] of cases) t.true(Object.is(resolvePlainScalar(s), v), s);
});

test('positions after a syntax error that spans lines stay exact (both paths)', (t) => {
  // The first document is broken: yaml reads its block scalar as one error token over six lines.
  const text = '1152921504606847000\n# note\nkind: Node\nmetadata:\n  {}\ndata:\n  "": |\n    a: 1\n    b: 2\n    c: 3\n    d: 4\n    e: 5\n    f: 6\n' +
    '---\napiVersion: v1\nkind: List\nitems: []\n---\nkind: Node\nmetadata:\n  {}\n';
  for (const fast of [true, false]) {
    const r = loadManifestText(text, FILE, { fast });
    const missing = r.problems.find((p) => p.code === 'decode/required');
    t.deepEqual(missing?.pos, { file: FILE, line: 20, col: 1 }, `fast: ${fast}`);
  }
});

test('only LF ends a line: a lone CR or U+2028 before --- is no document start', (t) => {
  for (const text of ['[]\n\r', '\r[]', 'a: 1\r---\nb: 2\n', 'kind: Pod\nmetadata:\n  name: x\u2028---\nkind: Pod\nmetadata:\n  name: y\n']) assertSame(t, text);
});

test('an unclosed quote runs on over the next documents, as in the full parser', (t) => {
  const text = 'kind: "Node\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: b\n';
  assertSame(t, text);
  const r = loadManifestText(text, FILE);
  t.deepEqual(r.objects, []);
  t.true(r.problems.some((p) => p.code === 'yaml/missing-char'));
});
