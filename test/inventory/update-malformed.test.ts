// updateChangedObjects (the per-event inventory update) must skip an object whose metadata no API
// server accepts, with the same warning, exactly as buildInventory does: the full build is the reference.
import test from 'ava';
import type { KubeObject } from '../../src/api/types.js';
import { buildInventory, updateChangedObjects } from '../../src/inventory/build-inventory.js';
import { parseConfig } from '../../src/inventory/config.js';

const cfg = parseConfig('clusterName: prod\n', 'nodewall.yaml');
const pod = (name: string, labels: Record<string, string>, ip: string): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns1', labels }, pos: { file: `k8s:pod/ns1/${name}`, line: 1, col: 1 }, status: { podIPs: [{ ip }] } }) as unknown as KubeObject;
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const sorted = <T>(xs: readonly T[]): T[] => [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

for (const [what, bad] of [
  ['a label key', pod('web-0', { 'bad key!': 'x' }, '192.0.2.2')],
  ['a label value', pod('web-0', { app: 'not ok!' }, '192.0.2.2')],
  ['a name', pod('Web_0', { app: 'web' }, '192.0.2.2')],
] as const) {
  test(`a pod event bringing ${what} no API server accepts: skipped with its warning, as by a full build; and back`, (t) => {
    const good = pod('web-0', { app: 'web' }, '192.0.2.1');
    const other = pod('db-0', { app: 'db' }, '192.0.2.3');
    const first = buildInventory([good, other], cfg, { nodeName: 'n1' });
    const step = updateChangedObjects(first, { objects: [bad, other] }, { gone: [good], come: [bad] });
    if (step === undefined) return t.fail('a one-pod change is incremental');
    const full = buildInventory([bad, other], cfg, { nodeName: 'n1' });
    t.deepEqual(plain(step.inventory), plain(full.inventory));
    t.deepEqual(plain(sorted(step.problems)), plain(sorted(full.problems)));
    t.true(step.problems.some((p) => p.code === 'inventory/bad-metadata'));
    // The good object back: the skipped one leaves nothing behind in the index.
    const back = updateChangedObjects(step, { objects: [good, other] }, { gone: [bad], come: [good] });
    if (back === undefined) return t.fail('the change back is incremental');
    t.deepEqual(plain(back.inventory), plain(first.inventory));
    t.deepEqual(plain(sorted(back.problems)), plain(sorted(first.problems)));
    return undefined;
  });
}
