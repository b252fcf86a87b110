// Fuzzing the two parsers that read operator input: the manifest loader (+ validation) and the
// config parser. Complements robustness.prop.test.ts (YAML-ish characters, rule shapes) with raw
// bytes, YAML token soup (anchors, tags, merge keys, directives), random JSON/YAML trees with
// hostile keys and strings, huge numbers and deep nesting.
//
// Properties: nothing throws out of loadManifestText / validatePolicy; parseConfig and
// parseAgentConfig return or throw InputError, nothing else; every problem carries the file it
// was given and a position (line >= 1, col >= 1); and whatever validates holds no control
// character in a name, namespace or selector label (so none can reach nft or a terminal).
// Fixed seeds and bounded runs: a few seconds in all.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { stringify } from 'yaml';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { validatePolicy } from '../../src/api/validate.js';
import { InputError, formatProblem, type Problem } from '../../src/api/problem.js';
import type { LabelSelector, PolicyDocument } from '../../src/api/types.js';
import { parseConfig } from '../../src/inventory/config.js';
import { parseAgentConfig } from '../../src/agent/read-config.js';
import { defaultEngineConfig } from '../../src/inventory/types.js';

const FILE = '/srv/policies/fuzz.yaml';
const CONFIG = '/etc/nodewall/nodewall.yaml';
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function placed(p: Problem, file: string): boolean {
  return p.pos.file === file && Number.isInteger(p.pos.line) && p.pos.line >= 1 && Number.isInteger(p.pos.col) && p.pos.col >= 1 && p.message !== '';
}

function selectors(doc: PolicyDocument): LabelSelector[] {
  const out: LabelSelector[] = [];
  for (const r of doc.rules) {
    if (r.endpointSelector !== undefined) out.push(r.endpointSelector);
    if (r.nodeSelector !== undefined) out.push(r.nodeSelector);
    for (const list of [r.ingress, r.ingressDeny, r.egress, r.egressDeny]) {
      for (const pr of list ?? []) out.push(...(pr.endpoints ?? []), ...(pr.nodes ?? []));
    }
  }
  return out;
}

/** The loader's and the validator's contract on one text. */
function checkManifest(t: { true: (v: boolean, m?: string) => void }, text: string): void {
  const r = loadManifestText(text, FILE);
  for (const p of r.problems) t.true(placed(p, FILE), formatProblem(p));
  for (const o of r.objects) {
    t.true(!UNPRINTABLE.test(o.metadata.name), 'object name');
    for (const [k, v] of Object.entries(o.metadata.labels ?? {})) t.true(!UNPRINTABLE.test(k) && !UNPRINTABLE.test(String(v)), 'object label');
  }
  for (const doc of r.policies) {
    const ps = validatePolicy(doc, defaultEngineConfig);
    for (const p of ps) t.true(placed(p, FILE), formatProblem(p));
    for (const p of ps) t.true(!/[\u0000-\u001f]/.test(formatProblem(p)), 'printable problem line');
    if (ps.some((p) => p.severity === 'error')) continue;
    // Valid: nothing unprintable can be in it.
    t.true(!UNPRINTABLE.test(doc.name) && !UNPRINTABLE.test(doc.namespace ?? ''), `valid name ${JSON.stringify(doc.name)}`);
    for (const s of selectors(doc)) {
      for (const [k, v] of Object.entries(s.matchLabels ?? {})) t.true(!UNPRINTABLE.test(k) && !UNPRINTABLE.test(v), 'valid matchLabels');
      for (const e of s.matchExpressions ?? []) t.true(!UNPRINTABLE.test(e.key) && !(e.values ?? []).some((v) => UNPRINTABLE.test(v)), 'valid expression');
    }
  }
  // Reaching here means nothing threw (an empty input has nothing else to check).
  t.true(true, 'no throw');
}

/** The config parser's contract on one text. */
function checkConfig(t: { true: (v: boolean, m?: string) => void; fail: (m?: string) => void }, text: string): void {
  for (const parse of [(x: string) => parseConfig(x, CONFIG), (x: string) => parseAgentConfig(x, CONFIG).config]) {
    try {
      const c = parse(text);
      t.true(c.nodeName === undefined || !UNPRINTABLE.test(c.nodeName), 'nodeName');
      t.true(!UNPRINTABLE.test(c.clusterName), 'clusterName');
      for (const [k, v] of Object.entries(c.nodeLabels)) t.true(!UNPRINTABLE.test(k) && !UNPRINTABLE.test(v), 'nodeLabels');
      t.true(Object.getPrototypeOf(c) === Object.prototype && !Object.hasOwn(c, '__proto__') && !Object.hasOwn(c, 'constructor'), 'plain result');
    } catch (e) {
      if (!(e instanceof InputError)) {
        t.fail(`not an InputError: ${String(e)}`);
        return;
      }
      t.true(e.problems.length > 0, 'an InputError lists its problems');
      for (const p of e.problems) t.true(placed(p, CONFIG), formatProblem(p));
    }
  }
}

// ------------------------------------------------------------------ building blocks

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'valueOf', 'toString', 'isPrototypeOf', '__defineGetter__'];
const CONTROL_STRINGS = ['\u0000', 'a\u0000b', '\n', '\r\n', '\u001b[31m', '\u007f', '\u0085', '\u2028', '\u202e', '\ufffd', '\ud800', '\udc00x', '"', '\\', "'"];

const hostileString = fc.oneof(
  fc.constantFrom(...PROTO_KEYS, ...CONTROL_STRINGS, '', 'k8s:app', 'reserved:host', 'a'.repeat(300), 'web', 'world', '10.0.0.0/8', '80', 'TCP'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.tuple(fc.constantFrom('app', 'node', 'x'), fc.constantFrom(...CONTROL_STRINGS)).map(([a, b]) => a + b),
);

const hostileKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('apiVersion', 'kind', 'metadata', 'name', 'namespace', 'labels', 'spec', 'specs', 'nodeSelector',
    'endpointSelector', 'matchLabels', 'matchExpressions', 'key', 'operator', 'values', 'ingress', 'egress', 'ingressDeny', 'fromEntities',
    'fromEndpoints', 'toEndpoints', 'fromCIDR', 'toPorts', 'ports', 'port', 'protocol', 'icmps', 'fields', 'type', 'enableDefaultDeny', 'items') },
  { weight: 2, arbitrary: fc.constantFrom(...PROTO_KEYS) },
  { weight: 2, arbitrary: hostileString },
);

const hugeNumber = fc.oneof(
  fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, -0, 2 ** 64, 0.1, 65536, -1),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

const leaf = fc.oneof(fc.constant(null), fc.boolean(), hugeNumber, hostileString);

const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.array(fc.tuple(hostileKey, tie('tree')), { maxLength: 5 }).map((entries) => Object.fromEntries(entries)),
  ),
}));

const policyLike = fc.record({
  apiVersion: fc.oneof(fc.constant('cilium.io/v2'), hostileString),
  kind: fc.constantFrom('CiliumClusterwideNetworkPolicy', 'CiliumNetworkPolicy', 'Node', 'Pod', 'Namespace', 'List', 'ConfigMap'),
  metadata: fc.oneof(
    fc.record({
      // Valid names too, so that the "valid means printable" property is exercised.
      name: fc.oneof(fc.constantFrom('p', 'web-policy', 'a.b'), hostileString),
      namespace: fc.oneof(fc.constant('team-a'), hostileString),
      labels: fc.dictionary(hostileKey, fc.oneof(hostileString, hugeNumber)),
    }, { requiredKeys: ['name'] }),
    tree,
  ),
  spec: fc.oneof(
    fc.record({
      nodeSelector: fc.oneof(fc.constant({}), fc.record({ matchLabels: fc.dictionary(hostileKey, hostileString) }), tree),
      ingress: fc.oneof(tree, fc.constant([{ fromEntities: ['world'] }])),
    }, { requiredKeys: [] }),
    tree,
  ),
  items: tree,
}, { requiredKeys: ['apiVersion', 'kind', 'metadata'] });

// A valid host policy with a few names and labels replaced: often still valid, so the property
// "whatever validates is printable" is exercised, not only "nothing throws".
const maybe = (valid: fc.Arbitrary<string>) => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: hostileString });
const nearValidPolicy = fc.record({
  name: maybe(fc.constantFrom('p', 'web-policy', 'a.b')),
  nodeKey: maybe(fc.constantFrom('role', 'k8s:role', 'node-role.kubernetes.io/control-plane', 'constructor')),
  nodeValue: maybe(fc.constantFrom('edge', '', 'x_1.y')),
  peerKey: maybe(fc.constantFrom('app', 'any:app', 'k8s:io.kubernetes.pod.namespace', 'toString')),
  peerValue: maybe(fc.constantFrom('web', 'kube-system')),
  exprKey: maybe(fc.constantFrom('tier', 'reserved:host')),
  exprValue: maybe(fc.constantFrom('a', 'b')),
}).map((v) => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumClusterwideNetworkPolicy',
  metadata: { name: v.name },
  spec: {
    nodeSelector: { matchLabels: { [v.nodeKey]: v.nodeValue } },
    ingress: [{ fromEndpoints: [{ matchLabels: { [v.peerKey]: v.peerValue }, matchExpressions: [{ key: v.exprKey, operator: 'In', values: [v.exprValue] }] }] }],
  },
}));

const yamlToken = fc.constantFrom(
  'apiVersion: cilium.io/v2', 'kind: CiliumClusterwideNetworkPolicy', 'kind: Node', 'metadata:', '  name: p', '  name: "a\\0b"', 'spec:',
  '  nodeSelector: {}', '  ingress: [{fromEntities: [world]}]', '---', '...', '%YAML 1.1', '%TAG ! tag:x,2000:', '&a', '*a', '*zz', '<<: *a',
  '!!binary', '!!set', '!!omap', '!!map', '!!str', '!custom', '? ', ': ', '- ', '[', ']', '{', '}', ',', '|', '>-', '#', '"', "'", '\t', '\u0000',
  '\ufeff', '\r', '__proto__: x', 'constructor: {a: 1}', 'toString:', '1e999', '0x7fffffffffffffffffff', '.inf', '-.nan', '9'.repeat(400),
  'labels: {constructor: x}', '  matchLabels: {"k\\u0000": v}', 'items:', '  - kind: Node', '    metadata: {name: n}',
);
const soup = fc.array(fc.oneof(yamlToken, fc.constantFrom(' ', '\n', '\n  ', '\n    ')), { maxLength: 60 }).map((xs) => xs.join(''));

// ------------------------------------------------------------------ manifests

testProp('manifest loader: random bytes, read as UTF-8 and as Latin-1', [fc.uint8Array({ maxLength: 400 })], (t, bytes) => {
  const buf = Buffer.from(bytes);
  checkManifest(t, buf.toString('utf8'));
  checkManifest(t, `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n${buf.toString('latin1')}`);
}, { numRuns: 300, seed: 0x8a1b });

testProp('manifest loader: YAML token soup (anchors, aliases, tags, merge keys, directives, BOM, NUL)', [soup], (t, text) => {
  checkManifest(t, text);
}, { numRuns: 400, seed: 0x8a1c });

testProp('manifest loader: random policy-like trees with hostile keys and values, as JSON and YAML', [policyLike], (t, obj) => {
  checkManifest(t, JSON.stringify(obj));
  checkManifest(t, JSON.stringify(obj, null, 2));
  checkManifest(t, stringify(obj));
  checkManifest(t, stringify({ apiVersion: 'v1', kind: 'List', items: [obj, obj] }));
}, { numRuns: 250, seed: 0x8a1d });

testProp('manifest loader: near-valid policies with one hostile name or label, as JSON and YAML', [nearValidPolicy], (t, obj) => {
  checkManifest(t, JSON.stringify(obj));
  checkManifest(t, stringify(obj));
}, { numRuns: 300, seed: 0x8a21 });

test('manifest loader: deep nesting and huge scalars', (t) => {
  for (const depth of [200, 2_000, 20_000]) {
    const policy = (inner: string) => `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: deep}\nspec: {nodeSelector: {}, ingress: ${inner}}\n`;
    checkManifest(t, policy(`${'['.repeat(depth)}${']'.repeat(depth)}`));
    checkManifest(t, policy(`${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`));
    checkManifest(t, `{"apiVersion":"cilium.io/v2","kind":"CiliumClusterwideNetworkPolicy","metadata":{"name":"deep"},"spec":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`);
    checkManifest(t, `${'- '.repeat(depth)}x\n`);
  }
  checkManifest(t, `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: ${'n'.repeat(100_000)}}\nspec: {nodeSelector: {matchLabels: {a: ${'v'.repeat(100_000)}}}, ingress: [{toPorts: [{ports: [{port: "${'9'.repeat(1000)}"}]}]}]}\n`);
});

// ------------------------------------------------------------------ config

const CONFIG_KEYS = ['nodeName', 'nodeLabels', 'clusterName', 'clusterPodCIDRs', 'apiServerAddresses', 'policyEnforcement', 'labelFilter',
  'policyCIDRMatchMode', 'enableICMPRules', 'sources', 'mode', 'nft', 'stateDir', 'lockoutGuard', 'removeOnStop', 'driftCheckSeconds',
  'resyncSeconds', 'debounceMs', 'logLevel'];

const configValue = fc.oneof(
  tree,
  fc.constantFrom('enforce', 'audit', 'dry-run', '/var/lib/nodewall', 'node-a', 'policies/', 5, 0, true),
  fc.dictionary(hostileKey, fc.oneof(hostileString, hugeNumber, tree), { maxKeys: 4 }),
  fc.array(fc.oneof(hostileString, fc.record({ kubernetes: fc.oneof(tree, fc.dictionary(fc.oneof(hostileKey, fc.constantFrom('kubeconfig', 'inCluster', 'context', 'needPods')), tree)) })), { maxLength: 3 }),
);

const configObject = fc.array(fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CONFIG_KEYS) }, { weight: 1, arbitrary: hostileKey }), configValue), { maxLength: 8 })
  .map((entries) => Object.fromEntries(entries));

testProp('config parser: random bytes', [fc.uint8Array({ maxLength: 300 })], (t, bytes) => {
  checkConfig(t, Buffer.from(bytes).toString('utf8'));
}, { numRuns: 300, seed: 0x8a1e });

testProp('config parser: YAML token soup', [soup], (t, text) => {
  checkConfig(t, text.replace(/apiVersion|kind/g, 'mode'));
}, { numRuns: 300, seed: 0x8a1f });

testProp('config parser: random config objects with hostile keys and values, as JSON and YAML', [configObject], (t, obj) => {
  checkConfig(t, JSON.stringify(obj));
  checkConfig(t, stringify(obj));
}, { numRuns: 300, seed: 0x8a20 });

test('config parser: deep nesting, aliases and duplicate keys everywhere', (t) => {
  for (const depth of [200, 5_000, 20_000]) {
    checkConfig(t, `nodeLabels: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
    checkConfig(t, `sources: [{kubernetes: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}}]\n`);
    checkConfig(t, `nft: ${'- '.repeat(depth)}x\n`);
  }
  let bomb = 'x0: &a0 [x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 9; i++) bomb += `x${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]\n`;
  checkConfig(t, `${bomb}sources: [{kubernetes: {context: *a8}}]\nnodeLabels: *a8\n`);
  checkConfig(t, 'nft: {path: /a, path: /b}\nsources: [{kubernetes: {context: a, context: b}}]\nnodeLabels: {a: b, a: c}\n');
});
