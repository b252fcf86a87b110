// Fuzz: random bytes, random JSON and valid state files with one subtree
// replaced by random JSON, fed to the three state readers (last good store,
// status file, Kubernetes cache). No throw escapes except the documented
// typed error, and every result is either valid or a report naming the file.

import { fc, testProp } from '@fast-check/ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { checkStoredFile, lastGoodFileName, loadLastGood } from '../../src/agent/last-good-store.js';
import { checkStatus, readStatus, statusFileName } from '../../src/agent/status-file.js';
import { CACHE_FILE, CacheError, checkCache, loadCache, readCache } from '../../src/inventory/sources/cache.js';
import { ShapeError, StateFileError } from '../../src/inventory/state-files.js';
import { policyYaml } from '../e2e/agent-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'nwt-state-fuzz-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const validStore = {
  version: 1,
  config: { file: '/etc/nodewall/nodewall.yaml', text: 'mode: enforce\n' },
  policies: { ssh: { file: '/p/ssh.yaml', textHash: 'h1' } },
  texts: { h1: policyYaml('ssh', [22]) },
};
const validStatus = {
  version: 1, pid: 1, startedAt: 'a', updatedAt: 'b', mode: 'enforce', table: 'nodewall', node: 'node-a',
  lastApply: { at: 'c', outcome: 'applied', trigger: 'start', kind: 'full', durationMs: 4 },
  policies: { selected: 1, ingress: 1, egress: 0, keptLastGood: 0, rejected: 0 },
  entries: { ingress: 1, egress: 0 }, enforced: { ingress: true, egress: false },
  lastError: { at: 'd', message: 'e' },
  kubernetes: { connected: true, since: 'f', synced: true, stale: false, resourceVersions: { Node: '1' }, pods: false, absent: [] },
};
const validCache = {
  format: 'nodewall/k8s-cache/v1', syncedAt: 'x', resourceVersions: { Node: '1' },
  objects: [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'a', labels: { x: 'y' } }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] } }],
  policies: [{ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'p' }, spec: { nodeSelector: {} } }],
};

/** Every path (list of keys) into a JSON value. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function replaceAt(v: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy = (Array.isArray(v) ? [...v] : { ...(v as object) }) as Record<string | number, unknown>;
  copy[head!] = replaceAt(copy[head!], rest, value);
  return copy;
}

/** The valid value with one subtree replaced by random JSON (wrong types, nulls, prototype-named keys). */
function mutated(valid: unknown): fc.Arbitrary<string> {
  const all = paths(valid);
  const junk = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(null, -1, 1.5, '', '__proto__', [], {}, { __proto__: 1 }, { constructor: 'x' }, { toString: 1 }),
  );
  return fc.tuple(fc.nat({ max: all.length - 1 }), junk).map(([i, j]) => JSON.stringify(replaceAt(valid, all[i]!, j)));
}

const anyBytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
const anyJson = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v));
const truncatedValid = (valid: unknown) => fc.nat({ max: JSON.stringify(valid).length }).map((n) => JSON.stringify(valid).slice(0, n));
const input = (valid: unknown) => fc.oneof(anyBytes, anyJson, mutated(valid), truncatedValid(valid));

let n = 0;
/** A fresh state dir holding `name` with these bytes. */
function stateDirWith(name: string, content: string | Buffer): string {
  const d = join(dir, String(n++));
  mkdirSync(d);
  writeFileSync(join(d, name), content);
  return d;
}

testProp('last good store: never throws; a bad store is reported (and moved aside), a valid one restores only valid entries', [input(validStore)], async (t, content) => {
  const d = stateDirWith(lastGoodFileName, content);
  const r = await loadLastGood(d);
  if (r.error !== undefined) {
    t.true(r.error instanceof StateFileError);
    t.true(r.error.message.startsWith(join(d, lastGoodFileName)));
    t.is(r.policies.size, 0);
  } else {
    t.true(r.policies instanceof Map);
    for (const [k, g] of r.policies) t.is(g.doc.name, k);
  }
}, { numRuns: 300 });

testProp('status file: valid, or a StateFileError naming the file', [input(validStatus)], async (t, content) => {
  const d = stateDirWith(statusFileName, content);
  try {
    const s = await readStatus(d);
    t.truthy(s);
    t.is(typeof s?.pid, 'number');
  } catch (err) {
    t.true(err instanceof StateFileError, String(err));
    t.is((err as StateFileError).file, join(d, statusFileName));
  }
}, { numRuns: 300 });

testProp('kubernetes cache: valid, or a CacheError; loadCache never throws and moves a bad one aside', [input(validCache)], async (t, content) => {
  const d = stateDirWith(CACHE_FILE, content);
  let ok: boolean;
  try {
    const c = await readCache(d);
    ok = true;
    t.true(Array.isArray(c?.objects) && Array.isArray(c.policies));
    for (const o of [...c!.objects, ...c!.policies]) t.is(typeof o.metadata.name, 'string');
  } catch (err) {
    ok = false;
    t.true(err instanceof CacheError, String(err));
  }
  const l = await loadCache(d);
  t.is(l.error === undefined, ok);
  if (!ok) t.is(l.error?.movedTo, join(d, `${CACHE_FILE}.corrupt`));
}, { numRuns: 300 });

testProp('shape checks on any JSON value: a typed value or a ShapeError, nothing else', [fc.anything({ maxDepth: 4 })], (t, v) => {
  for (const check of [checkStatus, checkCache, checkStoredFile]) {
    try {
      check(v);
    } catch (err) {
      t.true(err instanceof ShapeError, String(err));
    }
  }
  t.pass();
}, { numRuns: 500 });
