// Differential test of the loader's item-level fallback: in a List (YAML or
// JSON) whose items the fast path mostly reads, an item it declines (a policy,
// an object with a problem, a ConfigMap with an embedded policy, a nested
// List, an item outside the fast YAML subset, a JSON item repeating a key) is
// read ALONE by the full parser. The result must equal the full parser over
// the whole file (`{ fast: false }`), positions included; and the whole List
// must not go through the full parser when the items alone read cleanly.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { stringify } from 'yaml';
import { isDeepStrictEqual } from 'node:util';
import { loadManifestText, loaderCounts, type LoadResult } from '../../src/api/load-manifests.js';
import { comparableLoad } from '../helpers/load-comparable.js';

const FILE = '/srv/manifests/pods.yaml';

const locatePaths = ['', 'metadata', 'metadata.name', 'spec', 'spec.nodeSelector', 'spec.ingress[0]', 'spec.ingress[0].fromEntities[0]', 'nope'];

const comparable = (r: LoadResult): unknown => comparableLoad(r, locatePaths);

function assertSame(t: { true: (v: boolean, m?: string) => void }, text: string): void {
  const fast = comparable(loadManifestText(text, FILE));
  const slow = comparable(loadManifestText(text, FILE, { fast: false }));
  t.true(isDeepStrictEqual(fast, slow), `fast and full parser differ on:\n${text}\nfast: ${JSON.stringify(fast)}\nslow: ${JSON.stringify(slow)}`);
}

const pod = (i: number): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name: `pod-${i}`, namespace: 'default', labels: { app: 'web', shard: `s${i % 5}` } },
  spec: { nodeName: `node-${i % 3}` },
  status: { phase: 'Running', podIPs: [{ ip: `100.65.0.${i}` }, { ip: `2001:db8:1::${i.toString(16)}` }] },
});

/** Items the fast path declines, each to be read alone. */
const oddItem = fc.constantFrom<(i: number) => unknown>(
  (i) => ({ ...pod(i), metadata: { name: `pod-${i}`, labels: { app: '-bad-' } } }),
  (i) => ({ ...pod(i), metadata: { name: `Bad_${i}` } }),
  (i) => ({ ...pod(i), metadata: { labels: { app: 'web' } } }),
  (i) => ({ ...pod(i), metadata: { name: `pod-${i}`, namespace: 7 } }),
  () => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'in-list' }, spec: { nodeSelector: {}, ingress: [{ fromEntities: ['wrold'] }] } }),
  () => ({ apiVersion: 'cilium.io/v1', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'old' }, spec: {} }),
  () => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { 'p.yaml': 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: from-cm\nspec:\n  nodeSelector: {}\n' } }),
  (i) => ({ apiVersion: 'v1', kind: 'PodList', items: [pod(i), { metadata: { name: `inner-${i}` } }] }),
  (i) => ({ ...pod(i), metadata: { name: `pod-${i}`, annotations: { note: 'line one\nline two\n' } } }),
  (i) => ({ ...pod(i), metadata: { name: `pod-${i}`, annotations: { json: '{"a":"b\\"c"}' } } }),
  () => 42,
  () => null,
);

/** Line edits inside one item (YAML): what makes that item leave the subset or break. */
const itemDamage = fc.constantFrom(
  (l: string) => l.replace(/: (\S.*)$/, ': &x $1'), (l: string) => l.replace(/: (\S.*)$/, ': !!str $1'), (l: string) => l.replace(/: (\S.*)$/, ': |\n      $1'),
  (l: string) => l.replace(/: (\S.*)$/, ': "$1\\t"'), (l: string) => `${l}\n${l}`, (l: string) => `${l}\n# comment at column 1`, (l: string) => `${l}   # trailing`,
  (l: string) => l.replace(/: (\S.*)$/, ': *nope'), (l: string) => l.replace(/: (\S.*)$/, ': "$1'), (l: string) => l.replace(/^(\s*)/, '$1\t'),
  (l: string) => l.replace(/: (\S.*)$/, ':\n   $1 continued'),
);

const listDoc = fc.record({
  size: fc.integer({ min: 1, max: 12 }),
  odd: fc.array(fc.tuple(fc.nat(), oddItem), { maxLength: 3 }),
  damage: fc.array(fc.tuple(fc.nat(), fc.nat(), itemDamage), { maxLength: 2 }),
  kind: fc.constantFrom('List', 'PodList'),
  indentSeq: fc.boolean(),
  lead: fc.constantFrom('', 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n---\n'),
});

testProp('a YAML List with items the fast path declines = the full parser over the whole file', [listDoc], (t, d) => {
  const items: unknown[] = Array.from({ length: d.size }, (_, i) => pod(i));
  for (const [at, make] of d.odd) items[at % d.size] = make(at % d.size);
  let text = stringify({ apiVersion: 'v1', kind: d.kind, items }, { indentSeq: d.indentSeq, lineWidth: 0 });
  const lines = text.split('\n');
  for (const [item, line, edit] of d.damage) {
    // A line of item number `item`: between its `- ` line and the next one.
    const dashes = lines.flatMap((l, i) => (/^\s*- /.test(l) && !/^\s{4,}/.test(l) ? [i] : []));
    const from = dashes[item % Math.max(1, dashes.length)] ?? 0;
    const at = from + 1 + (line % 6);
    if (at < lines.length) lines[at] = edit(lines[at] ?? '');
  }
  text = d.lead + lines.join('\n');
  assertSame(t, text);
}, { numRuns: 400, seed: 0x9f11 });

testProp('a JSON List with items the fast path declines (and items repeating keys) = the full parser', [listDoc, fc.array(fc.nat(), { maxLength: 2 }), fc.constantFrom(0, 1, 2)], (t, d, dupAt, indent) => {
  const items: unknown[] = Array.from({ length: d.size }, (_, i) => pod(i));
  for (const [at, make] of d.odd) items[at % d.size] = make(at % d.size);
  let text = JSON.stringify({ apiVersion: 'v1', kind: d.kind, items }, null, indent);
  for (const n of dupAt) {
    // Repeat a key in the n-th object that has a "name".
    let k = -1;
    for (let seen = 0; seen <= n % (d.size + 1); seen++) k = text.indexOf('"name":', k + 1);
    if (k >= 0) text = `${text.slice(0, k)}"name": "dup", ${text.slice(k)}`;
  }
  assertSame(t, text);
}, { numRuns: 300, seed: 0x9f12 });

// ---- the item-level path is taken: the whole List never goes to the full parser -------------------

function bigList(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => pod(i));
}

test('one bad pod in a 3000-pod YAML List: only that item is read by the full parser, with the exact problem', (t) => {
  const items: unknown[] = bigList(3000);
  items[1234] = { ...pod(1234), metadata: { name: 'pod-1234', labels: { app: '-bad-' } } };
  const text = stringify({ apiVersion: 'v1', kind: 'List', items });
  const before = { ...loaderCounts };
  const r = loadManifestText(text, FILE);
  t.is(loaderCounts.fullParserRuns, before.fullParserRuns, 'the List is not read by the full parser');
  t.is(loaderCounts.itemsReadAlone - before.itemsReadAlone, 1);
  t.is(r.objects.length, 2999);
  const lines = text.split('\n');
  const line = lines.findIndex((l) => l.includes('app: -bad-')) + 1;
  const col = (lines[line - 1] ?? '').indexOf('app') + 1;
  t.true(line > 18000 && col > 1);
  t.deepEqual(r.problems.map((p) => [p.code, p.field, `${p.pos.file}:${p.pos.line}:${p.pos.col}`]), [['decode/metadata', 'metadata.labels.app', `${FILE}:${line}:${col}`]]);
  assertSame(t, text);
});

test('a kubectl dump whose items carry block scalars and escapes: those items alone go to the full parser', (t) => {
  const items = bigList(2000).map((p, i) => (i % 500 === 7 ? { ...p, metadata: { ...(p['metadata'] as object), annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"apiVersion":"v1"}\n' } } } : p));
  const text = stringify({ apiVersion: 'v1', kind: 'List', items });
  t.true(text.includes('|'), 'the annotation is written as a block scalar');
  const before = { ...loaderCounts };
  const r = loadManifestText(text, FILE);
  t.is(loaderCounts.fullParserRuns, before.fullParserRuns);
  t.is(loaderCounts.itemsReadAlone - before.itemsReadAlone, 4);
  t.is(r.objects.length, 2000);
  assertSame(t, text);
});

test('a 3000-pod JSON List with a repeated key: the repeating item alone gives yaml\'s error; nothing of the List loads', (t) => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: bigList(3000) }, null, 2);
  const at = json.indexOf('"namespace": "default"', json.indexOf('"pod-2500"'));
  const text = `${json.slice(0, at)}"namespace": "x", ${json.slice(at)}`;
  const before = { ...loaderCounts };
  const r = loadManifestText(text, FILE);
  t.is(loaderCounts.fullParserRuns, before.fullParserRuns);
  t.deepEqual(r.objects, []);
  const line = text.slice(0, at).split('\n').length;
  t.deepEqual(r.problems.map((p) => [p.code, p.pos.line]), [['yaml/duplicate-key', line]]);
  assertSame(t, text);
});

testProp('JSON with characters past U+FFFF (surrogate pairs) and lone surrogates = the full parser', [fc.array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 4 }), fc.constantFrom('🚀', 'a😀b', '\ud800', '\udc00x', '𝄞\ud83d')), { minLength: 1, maxLength: 4 })], (t, notes) => {
  const items = notes.map((n, i) => ({ ...pod(i), metadata: { name: `pod-${i}`, annotations: { note: n } } }));
  for (const indent of [0, 2]) {
    const text = JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, indent);
    // Raw characters, not \u escapes: what a UTF-8 file decodes to.
    assertSame(t, text.replace(/\\u(d[89ab][0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\u(d[c-f][0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))));
    assertSame(t, text);
  }
}, { numRuns: 200, seed: 0x9f13 });

test('a JSON List with an emoji in an annotation stays on the fast path', (t) => {
  const text = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ ...pod(1), metadata: { name: 'pod-1', annotations: { note: 'deploy 🚀 done' } } }, pod(2)] }, null, 2);
  const before = loaderCounts.fullParserRuns;
  const r = loadManifestText(text, FILE);
  t.is(loaderCounts.fullParserRuns, before);
  t.is((r.objects[0]?.metadata['annotations'] as Record<string, string> | undefined)?.['note'], 'deploy 🚀 done');
  assertSame(t, text);
});

test('a 3000-pod YAML List with repeated keys in two items: their exact errors, nothing of the List loads, the List not read whole', (t) => {
  const lines = stringify({ apiVersion: 'v1', kind: 'List', items: bigList(3000) }).split('\n');
  const at = (name: string): number => lines.findIndex((l) => l.endsWith(`name: ${name}`));
  for (const name of ['pod-2999', 'pod-1200']) {
    const i = at(name);
    lines.splice(i + 1, 0, lines[i + 1] ?? '');
  }
  const text = lines.join('\n');
  const before = { ...loaderCounts };
  const r = loadManifestText(text, FILE);
  t.is(loaderCounts.fullParserRuns, before.fullParserRuns);
  t.is(loaderCounts.itemsReadAlone - before.itemsReadAlone, 2);
  t.deepEqual(r.objects, []);
  t.deepEqual(r.problems.map((p) => [p.code, p.pos.line]), [['yaml/duplicate-key', at('pod-1200') + 3], ['yaml/duplicate-key', at('pod-2999') + 3]]);
  assertSame(t, text);
});
