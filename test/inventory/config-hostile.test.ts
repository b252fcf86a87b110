// parseConfig against keys named like Object.prototype members, control characters and
// duplicate keys: every one is an error naming file:line:col and the key, never a crash and
// never silently accepted; a label named `constructor` is an ordinary label.
import test from 'ava';
import { InputError, formatProblem, type Problem } from '../../src/api/problem.js';
import { parseAgentConfig } from '../../src/agent/read-config.js';
import { mergeConfig, parseConfig } from '../../src/inventory/config.js';

const FILE = '/etc/nodewall/nodewall.yaml';

function problemsOf(text: string): Problem[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    if (e instanceof InputError) return [...e.problems];
    throw e;
  }
  throw new Error(`expected InputError for ${JSON.stringify(text)}`);
}

const PROTO_KEYS = ['__proto__', 'constructor', 'hasOwnProperty', 'valueOf', 'toString', 'isPrototypeOf', '__defineGetter__'];

for (const key of PROTO_KEYS) {
  test(`top-level key ${key} is an unknown key at its position, in YAML and JSON spelling`, (t) => {
    for (const text of [`mode: audit\n${key}: 1\n`, `{"mode": "audit", "${key}": {"a": 1}}`]) {
      const ps = problemsOf(text);
      t.is(ps.length, 1, text);
      t.is(ps[0]?.code, 'config/unknown-key');
      t.is(ps[0]?.field, key);
      t.regex(ps[0]?.message ?? '', /^unknown key \(/);
      t.true((ps[0]?.pos.line ?? 0) >= 1 && (ps[0]?.pos.col ?? 0) >= 1);
    }
    t.is(problemsOf(`mode: audit\n${key}: 1\n`)[0]?.pos.line, 2);
  });

  test(`nested key ${key} in nft: and in the kubernetes source entry is an unknown key`, (t) => {
    const nft = problemsOf(`nft: {table: fw, ${key}: x}\n`);
    t.deepEqual(nft.map((p) => [p.field, p.message]), [[`nft.${key}`, 'unknown key (known: path, table, timeoutSeconds, maxElementsPerTransaction, launcher)']]);
    const kube = problemsOf(`sources: [{kubernetes: {inCluster: true, ${key}: x}}]\n`);
    t.deepEqual(kube.map((p) => p.field), [`sources[0].kubernetes.${key}`]);
    t.regex(kube[0]?.message ?? '', /^unknown key \(known: kubeconfig, inCluster, context, needPods\)$/);
    const entry = problemsOf(`sources: [{${key}: {inCluster: true}}]\n`);
    t.deepEqual(entry.map((p) => p.field), ['sources[0]']);
  });
}

test('a config with prototype-named keys leaves no trace on the result or on Object.prototype', (t) => {
  problemsOf('__proto__: {polluted: true}\nconstructor: {prototype: {polluted: true}}\n');
  t.false(Object.hasOwn(Object.prototype, 'polluted'));
  const c = parseConfig('mode: audit\n', FILE);
  t.false(Object.hasOwn(c, 'constructor'));
  t.is(Object.getPrototypeOf(c), Object.prototype);
});

test('a node label literally named constructor, toString or valueOf is valid and kept', (t) => {
  const c = parseConfig('nodeLabels: {constructor: "yes", toString: a, valueOf: "", hasOwnProperty: b}\n', FILE);
  t.deepEqual(Object.entries(c.nodeLabels).sort(), [['constructor', 'yes'], ['hasOwnProperty', 'b'], ['toString', 'a'], ['valueOf', '']]);
  t.is(c.nodeLabels['constructor'], 'yes');
  // Layering over other labels keeps them too.
  const m = mergeConfig(c, { nodeLabels: { constructor: 'no' } });
  t.is(m.nodeLabels['constructor'], 'no');
  t.is(m.nodeLabels['toString'], 'a');
});

test('a node label named __proto__ is an invalid label key (Kubernetes names start with a letter or digit), not dropped', (t) => {
  const ps = problemsOf('nodeLabels: {role: edge, __proto__: x}\n');
  t.deepEqual(ps.map((p) => [p.field, p.pos.line, p.pos.col]), [['nodeLabels.__proto__', 1, 26]]);
  t.regex(ps[0]?.message ?? '', /^invalid label key: Invalid value: "__proto__": name part must consist of/);
});

test('duplicate keys name the key, its field path and both positions, at any depth', (t) => {
  const top = problemsOf('nodeName: a\nmode: audit\nnodeName: b\n');
  t.deepEqual(top.map((p) => [p.code, p.field, p.pos.line, p.pos.col, p.message]), [
    ['config/duplicate-key', 'nodeName', 3, 1, 'duplicate key "nodeName", also set at line 1, column 1: keep only one of them'],
  ]);
  const nft = problemsOf('nft:\n  path: /usr/sbin/nft\n  table: a\n  path: /sbin/nft\n');
  t.deepEqual(nft.map((p) => [p.field, p.pos.line, p.pos.col]), [['nft.path', 4, 3]]);
  t.regex(nft[0]?.message ?? '', /also set at line 2, column 3/);
  const kube = problemsOf('sources:\n  - /p\n  - kubernetes: {context: a, context: b}\n');
  t.deepEqual(kube.map((p) => [p.field, p.pos.line, p.pos.col]), [['sources[1].kubernetes.context', 3, 30]]);
  t.regex(kube[0]?.message ?? '', /^duplicate key "context", also set at line 3, column 18/);
  const labels = problemsOf('nodeLabels: {"a\\u0000b": x, "a\\u0000b": y}\n');
  t.true(labels.some((p) => p.code === 'config/duplicate-key' && p.message.startsWith('duplicate key "a\\u0000b"')));
  // Formatted, the line holds no control character.
  for (const p of labels) t.notRegex(formatProblem(p), /[\u0000-\u001f]/);
});

test('control characters in nodeName, clusterName and label keys/values are errors with Kubernetes-like messages', (t) => {
  const ps = problemsOf([
    'nodeName: "node\\0a"',
    'clusterName: "prod\\nx"',
    'nodeLabels:',
    '  "zo\\u001bne": a',
    '  ok: "v\\u0000"',
    '',
  ].join('\n'));
  t.deepEqual(ps.map((p) => [p.field, p.pos.line]), [['nodeName', 1], ['clusterName', 2], ['nodeLabels["zo\\u001bne"]', 4], ['nodeLabels.ok', 5]]);
  t.regex(ps[0]?.message ?? '', /^Invalid value: "node\\u0000a": contains the control character U\+0000 at character 5; a lowercase RFC 1123 subdomain/);
  t.regex(ps[1]?.message ?? '', /^Invalid value: "prod\\nx": contains the control character U\+000A .*io\.cilium\.k8s\.policy\.cluster/);
  t.regex(ps[2]?.message ?? '', /^invalid label key: Invalid value: "zo\\u001bne": contains the control character U\+001B/);
  t.regex(ps[3]?.message ?? '', /^invalid label value: Invalid value: "v\\u0000": contains the control character U\+0000/);
  for (const p of ps) t.notRegex(formatProblem(p), /[\u0000-\u001f\u007f-\u009f]/);
});

test('node names Kubernetes would refuse are refused: upper case, too long, U+FFFD from bad UTF-8', (t) => {
  t.regex(problemsOf('nodeName: Node-A\n')[0]?.message ?? '', /lowercase RFC 1123 subdomain/);
  t.regex(problemsOf(`nodeName: ${'a'.repeat(254)}\n`)[0]?.message ?? '', /must be no more than 253 characters/);
  const bytes = Buffer.concat([Buffer.from('nodeName: node-'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]);
  t.regex(problemsOf(bytes.toString('utf8'))[0]?.message ?? '', /contains U\+FFFD/);
  t.is(parseConfig('nodeName: worker-1.example.com\n', FILE).nodeName, 'worker-1.example.com');
});

test('a NUL in a path (sources, stateDir, nft.path) is an error, not a later crash of fs', (t) => {
  const ps = problemsOf('sources: ["pol\\0icies"]\nstateDir: "/var/lib/x\\0"\nnft: {path: "/usr/sbin/nft\\0"}\n');
  t.deepEqual(ps.map((p) => p.field), ['sources[0]', 'stateDir', 'nft.path']);
  for (const p of ps) t.regex(p.message, /must not contain a NUL character \(U\+0000\)/);
});

test('wrong types say what was found', (t) => {
  const ps = problemsOf('nodeName: [a]\nstateDir: 5\nnodeLabels: {a: [x]}\n');
  t.deepEqual(ps.map((p) => p.message), ['must be a string, got a list', 'must be a string, got a number (5)', 'must be a label value (a string), got a list']);
});

test('parseAgentConfig throws only InputError for hostile configs', (t) => {
  for (const text of ['__proto__: 1', 'constructor: x', 'hasOwnProperty: 1\nvalueOf: 2', 'nft: {__proto__: {path: /x}}', 'lockoutGuard: {toString: 1}']) {
    t.throws(() => parseAgentConfig(text, FILE), { instanceOf: InputError }, text);
  }
});
