// Hostile inputs on the file source's fast path at scale: each gives a clear
// error with file:line:col (or loads exactly what the full parser loads),
// never a throw, and never hands a giant document to the full parser.
import test from 'ava';
import { isDeepStrictEqual } from 'node:util';
import { stringify } from 'yaml';
import { FULL_PARSER_MAX_DOCUMENT_CHARS, loadManifestText, loaderCounts } from '../../src/api/load-manifests.js';
import { formatProblem } from '../../src/api/problem.js';

const FILE = '/srv/manifests/hostile.yaml';

const podDoc = (i: number): string =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-${i}\n  namespace: default\n  labels:\n    app: web\nstatus:\n  podIPs:\n  - ip: 100.65.${(i >> 8) & 255}.${i & 255}\n`;
const pod = (i: number): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod-${i}`, namespace: 'default' }, status: { podIPs: [{ ip: `100.65.${(i >> 8) & 255}.${i & 255}` }] } });

function sameAsFullParser(text: string): boolean {
  const strip = (r: ReturnType<typeof loadManifestText>): unknown => ({ ...r, policies: r.policies.map(({ locate: _l, ...p }) => p) });
  return isDeepStrictEqual(strip(loadManifestText(text, FILE)), strip(loadManifestText(text, FILE, { fast: false })));
}

test('a truncated 3 MB JSON List: one error at the point where the text ends, nothing loaded, the full parser not run', (t) => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: 20000 }, (_, i) => pod(i)) }, null, 2);
  t.true(json.length > FULL_PARSER_MAX_DOCUMENT_CHARS);
  const text = json.slice(0, Math.floor(json.length * 0.7));
  const before = loaderCounts.fullParserRuns;
  const r = loadManifestText(text, FILE);
  t.is(loaderCounts.fullParserRuns, before);
  t.deepEqual(r.objects, []);
  const lines = text.split('\n');
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, p.pos.line]), [['error', 'load/document-too-big', lines.length]]);
  t.regex(formatProblem(r.problems[0]!), /^\/srv\/manifests\/hostile\.yaml:\d+:\d+: error: document not loaded: \d+ characters long, and it is not valid JSON/);
});

test('a giant document outside the fast subset between ordinary ones: refused at its first line, the others load', (t) => {
  const blob = Array.from({ length: 60000 }, (_, i) => `    line ${i} of a very long block scalar`).join('\n');
  const giant = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: giant\ndata:\n  x: |\n${blob}\n`;
  t.true(giant.length > FULL_PARSER_MAX_DOCUMENT_CHARS);
  const text = `${podDoc(1)}---\n${giant}---\n${podDoc(2)}`;
  const r = loadManifestText(text, FILE);
  t.deepEqual(r.objects.map((o) => o.metadata.name), ['pod-1', 'pod-2']);
  t.deepEqual(r.problems.map((p) => [p.code, p.pos.line, p.pos.col]), [['load/document-too-big', podDoc(1).split('\n').length, 1]]);
});

test('deep nesting: flow and block, an error with a position (or what the full parser gives), the next document loads', (t) => {
  const flow = `kind: Pod\nmetadata:\n  name: deep\nspec: ${'['.repeat(50000)}${']'.repeat(50000)}\n---\n${podDoc(3)}`;
  const r = loadManifestText(flow, FILE);
  t.deepEqual(r.objects.map((o) => o.metadata.name), ['pod-3']);
  t.true(r.problems.length > 0 && r.problems.every((p) => p.severity === 'error' && p.pos.line === 4 && p.pos.col > 1), JSON.stringify(r.problems));
  t.true(sameAsFullParser(flow));
  const block = `kind: Pod\nmetadata:\n  name: deep\nspec:\n${Array.from({ length: 800 }, (_, i) => `${' '.repeat(i + 2)}k${i}:`).join('\n')} 1\n---\n${podDoc(4)}`;
  const b = loadManifestText(block, FILE);
  t.true(b.objects.some((o) => o.metadata.name === 'pod-4'));
  t.true(sameAsFullParser(block));
});

test('an alias bomb in one item of a big List, and in one document of a big stream: an error for that document only', (t) => {
  const bomb = 'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
  const stream = [...Array.from({ length: 2000 }, (_, i) => podDoc(i)), `kind: Pod\nmetadata:\n  name: bomb\n${bomb}`, podDoc(2001)].join('---\n');
  const s = loadManifestText(stream, FILE);
  t.is(s.objects.length, 2001);
  t.deepEqual(s.problems.map((p) => p.code), ['load/document']);
  t.is(s.problems[0]?.pos.line, stream.slice(0, stream.indexOf('name: bomb')).split('\n').length - 2);
  const items = stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: 500 }, (_, i) => pod(i)) });
  const list = `${items}  - kind: Pod\n    metadata:\n      name: bomb\n${bomb.replace(/^/gm, '    ').trimEnd()}\n`;
  const l = loadManifestText(list, FILE);
  t.deepEqual(l.problems.map((p) => [p.code, p.pos.line]), [['load/document', 1]]);
  t.true(sameAsFullParser(list));
});

test('a repeated key in one of 5000 documents: its exact error, the other 4999 load, only that document reads slowly', (t) => {
  const docs = Array.from({ length: 5000 }, (_, i) => podDoc(i));
  docs[3210] = (docs[3210] ?? '').replace('  namespace: default\n', '  namespace: default\n  namespace: prod\n');
  const text = docs.join('---\n');
  const before = loaderCounts.fullParserRuns;
  const r = loadManifestText(text, FILE);
  t.is(loaderCounts.fullParserRuns - before, 1);
  t.is(r.objects.length, 4999);
  const line = text.split('\n').findIndex((l) => l === '  namespace: prod') + 1;
  t.deepEqual(r.problems.map((p) => [p.code, `${p.pos.line}:${p.pos.col}`]), [['yaml/duplicate-key', `${line}:3`]]);
});

test('a document that is half JSON in a YAML stream: yaml\'s errors at their places, the documents around it load', (t) => {
  const text = `${podDoc(1)}---\n{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "half"\n---\n${podDoc(2)}`;
  const r = loadManifestText(text, FILE);
  t.deepEqual(r.objects.map((o) => o.metadata.name), ['pod-1', 'pod-2']);
  t.true(r.problems.length > 0 && r.problems.every((p) => p.severity === 'error' && p.pos.line >= 12 && p.pos.line <= 13), JSON.stringify(r.problems));
  t.true(sameAsFullParser(text));
});
