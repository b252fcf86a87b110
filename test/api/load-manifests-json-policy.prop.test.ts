// Differential test of the loader's fast path for a policy that is one JSON
// document (the form the Kubernetes source hands it: JSON.stringify(ccnp, null, 2),
// or `kubectl get ccnp x -o json`): decoded by fast-json.ts with its field
// positions read lazily (lazy-positions.ts), it must give exactly what the
// full position-tracking parser gives (`{ fast: false }`): the same policy,
// the same position for EVERY field path of the document (and some it does
// not have), the same decode problems in the same places, the same problems
// and skips. Real-world policies (the shared corpus) and random edits of them
// (wrong types, hostile keys and values, bad CIDRs, extra fields), in the
// API's indentation and others. Fixed seeds, bounded runs.
import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadManifestText, loaderCounts, type LoadResult } from '../../src/api/load-manifests.js';
import { corpusFile, corpusFiles } from './corpus.js';
import { comparableLoad } from '../helpers/load-comparable.js';

const FILE = 'k8s:ccnp/example';

/** Every field path of a decoded JSON value, as the loader names them (`a.b[2].c`). */
function fieldPaths(v: unknown, at = '', out: string[] = []): string[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => fieldPaths(x, `${at}[${i}]`, out));
  else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) fieldPaths((v as Record<string, unknown>)[k], at === '' ? k : `${at}.${k}`, out);
  }
  return out;
}

const comparable = (r: LoadResult, paths: readonly string[]): unknown => comparableLoad(r, paths, true);

function assertSame(t: { true: (v: boolean, m?: string) => void }, text: string): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const paths = [...fieldPaths(value), 'nope', 'spec.nope[3].deeper', 'specs[99]'];
  const fast = comparable(loadManifestText(text, FILE), paths);
  const slow = comparable(loadManifestText(text, FILE, { fast: false }), paths);
  t.true(isDeepStrictEqual(fast, slow), `fast and full parser differ on:\n${text}\nfast: ${JSON.stringify(fast)}\nslow: ${JSON.stringify(slow)}`);
}

/** The corpus's policies as plain objects (ConfigMaps and templated ones included: they take the full path). */
function corpusPolicies(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const f of corpusFiles()) {
    for (const doc of parseAllDocuments(readFileSync(corpusFile(f), 'utf8'))) {
      if (!('toJS' in doc)) continue;
      const js: unknown = doc.toJS();
      if (js !== null && typeof js === 'object' && !Array.isArray(js) && String((js as Record<string, unknown>)['kind']).endsWith('NetworkPolicy')) out.push(js as Record<string, unknown>);
    }
  }
  return out;
}

const CORPUS = corpusPolicies();

test('the corpus has policies to test with', (t) => {
  t.true(CORPUS.length >= 15, `${CORPUS.length} policies`);
});

test('corpus policies as the API source writes them (JSON, indent 2): fast path = full parser, and the fast path is taken', (t) => {
  let fastTaken = 0;
  for (const p of CORPUS) {
    const text = JSON.stringify(p, null, 2);
    assertSame(t, text);
    const before = loaderCounts.fullParserRuns;
    const r = loadManifestText(text, FILE);
    if (loaderCounts.fullParserRuns === before) fastTaken++;
    t.is(r.policies.length, 1);
  }
  // Only a templated policy (`${...}`, expanded by the full parser) may need it.
  const templated = CORPUS.filter((p) => JSON.stringify(p).includes('${')).length;
  t.is(fastTaken, CORPUS.length - templated);
});

test('a JSON policy\'s field positions come from its own text, read when first asked for', (t) => {
  const policy = { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'p' },
    spec: { nodeSelector: {}, ingress: [{ fromCIDR: ['192.0.2.0/24'], toPorts: [{ ports: [{ port: 'x', protocol: 'TCP' }] }] }] } };
  for (const indent of [2, 4, 0]) {
    const text = JSON.stringify(policy, null, indent);
    const before = loaderCounts.fullParserRuns;
    const r = loadManifestText(text, FILE);
    t.is(loaderCounts.fullParserRuns, before, 'no full parse');
    const p = r.policies[0];
    if (p === undefined) return t.fail('no policy');
    // A field is placed at its key.
    const want = text.indexOf('"port"');
    const line = text.slice(0, want).split('\n').length;
    const col = want - text.lastIndexOf('\n', want - 1);
    t.deepEqual(p.locate('spec.ingress[0].toPorts[0].ports[0].port'), { file: FILE, line, col }, `indent ${indent}`);
  }
});

// ---- random edits of real policies ------------------------------------------------------------

const hostileKey = fc.constantFrom('bogus', '__proto__', 'constructor', 'toString', 'a.b', 'a[0]', '', ' ', 'k8s:io.kubernetes.pod.namespace', 'x'.repeat(1100), '${A:=1}', 'ünï', 'toPorts', 'matchLabels');
const hostileScalar = fc.oneof(
  fc.constantFrom('world', 'host', 'remote-node', '192.0.2.0/24', '2001:db8::/33', '10.0.0.1/40', 'nope', '22', '0', '65536', '-1', 'TCP', 'tcp', 'ANY', 'ICMP', '', ' ',
    '${P:=22}', '\u2028', '\u0000', 'a\tb', 'true', 'null', '~', '1e3', '0x10', '12345678901234567890'),
  fc.integer({ min: -2, max: 70000 }), fc.double(), fc.boolean(), fc.constant(null), fc.constant(2 ** 60), fc.constant(12345678901234567890), fc.string({ maxLength: 6 }),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, hostileScalar, tie('list'), tie('map')),
  list: fc.array(tie('v'), { maxLength: 3 }),
  map: fc.dictionary(hostileKey, tie('v'), { maxKeys: 3 }),
})).v;

type Edit = { kind: 'set' | 'delete' | 'add'; at: number; key: string; value: unknown };
const edit = fc.record({ kind: fc.constantFrom<Edit['kind']>('set', 'set', 'delete', 'add'), at: fc.nat(), key: hostileKey, value });

/** Applies an edit at the `at`-th container or field of `root` (a deep copy). */
function applyEdit(root: Record<string, unknown>, e: Edit): void {
  const spots: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach((x, i) => { spots.push({ parent: v, key: i }); walk(x); });
    else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        spots.push({ parent: v as Record<string, unknown>, key: k });
        walk((v as Record<string, unknown>)[k]);
      }
    }
  };
  walk(root);
  const spot = spots[e.at % Math.max(spots.length, 1)];
  if (spot === undefined) return;
  const { parent, key } = spot;
  if (Array.isArray(parent)) {
    if (e.kind === 'delete') parent.splice(key as number, 1);
    else if (e.kind === 'add') parent.push(e.value);
    else parent[key as number] = e.value;
    return;
  }
  if (e.kind === 'delete') delete parent[key];
  else if (e.kind === 'add') Object.defineProperty(parent, e.key, { value: e.value, enumerable: true, writable: true, configurable: true });
  else parent[key] = e.value;
}

const editedPolicy = fc.tuple(fc.nat({ max: CORPUS.length - 1 }), fc.array(edit, { maxLength: 4 }), fc.constantFrom<number | string>(2, 2, 0, 4, '\t'))
  .map(([i, edits, indent]) => {
    const p = structuredClone(CORPUS[i]) as Record<string, unknown>;
    for (const e of edits) applyEdit(p, e);
    return JSON.stringify(p, null, indent);
  });

testProp('fast path = full parser: corpus policies in JSON with random edits (types, hostile keys and values, deletions)', [editedPolicy], (t, text) => {
  assertSame(t, text);
}, { numRuns: 400, seed: 0x9f11 });

const textDamage = fc.constantFrom(
  (s: string) => s, (s: string) => s.replace(/\n/g, '\r\n'), (s: string) => `\n\n  ${s}\n\n`, (s: string) => s.replace(/"name":/, '"name": "dup", "name":'),
  (s: string) => s.replace(/"spec"/, '"\\u0073pec"'), (s: string) => s.replace(/:/g, ' :'), (s: string) => s.replace(/\[/, '[\n\n'), (s: string) => s.replace(/\}\s*$/, ''),
  (s: string) => `\ufeff${s}`, (s: string) => s.replace(/"TCP"/, '"T\\u0043P"'), (s: string) => s.replace(/"cilium.io\/v2"/, '"cilium.io/v1"'),
);

testProp('fast path = full parser: JSON policies with damaged text (CRLF, escapes, duplicate keys, truncation, BOM, wrong apiVersion)', [editedPolicy, textDamage], (t, text, damage) => {
  assertSame(t, damage(text));
}, { numRuns: 300, seed: 0x9f12 });
