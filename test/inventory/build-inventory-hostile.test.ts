// Objects that reach the inventory without the file loader (the Kubernetes source, its cache)
// are checked like API server would: bad names or labels are skipped with a warning, and label
// maps keep keys named like Object.prototype members.
import test from 'ava';
import { formatProblem } from '../../src/api/problem.js';
import type { KubeObject } from '../../src/api/types.js';
import { buildInventory } from '../../src/inventory/build-inventory.js';
import { podIdentityLabels, identityLabelsFromStrings } from '../../src/inventory/pod-labels.js';
import { parseConfig } from '../../src/inventory/config.js';

const cfg = parseConfig('clusterName: prod\n', '/etc/nodewall/nodewall.yaml');
const at = (name: string) => ({ file: `k8s:node/${name}`, line: 1, col: 1 });

function nodeObj(name: string, labels: Record<string, string>, ip: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, status: { addresses: [{ type: 'InternalIP', address: ip }] }, pos: at(name) };
}

test('API objects with control characters in name, namespace or labels are skipped with a warning naming them', (t) => {
  const objects: KubeObject[] = [
    nodeObj('node-a', { role: 'edge' }, '192.0.2.1'),
    nodeObj('node\u0000b', {}, '192.0.2.2'),
    nodeObj('node-c', { 'zone\n': 'a' }, '192.0.2.3'),
    nodeObj('node-d', { zone: 'a\u001b' }, '192.0.2.4'),
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns\u0000', labels: { app: 'x' } }, status: { podIP: '198.51.100.9' }, pos: at('p') },
  ];
  const { inventory, problems } = buildInventory(objects, cfg, { nodeName: 'node-a' });
  t.deepEqual(inventory.self.labels, { role: 'edge' });
  t.deepEqual(inventory.remoteNodes.map((n) => n.name), []);
  t.deepEqual(inventory.pods, []);
  const bad = problems.filter((p) => p.code === 'inventory/bad-metadata');
  t.deepEqual(bad.map((p) => [p.severity, p.field]), [
    ['warning', 'metadata.name'],
    ['warning', 'metadata.labels["zone\\n"]'],
    ['warning', 'metadata.labels.zone'],
    ['warning', 'metadata.namespace'],
  ]);
  for (const p of bad) {
    t.regex(p.message, /; skipped$/);
    t.notRegex(formatProblem(p), /[\u0000-\u001f]/);
  }
});

test('labels named like Object.prototype members survive every label map of the inventory', (t) => {
  const hostile = JSON.parse('{"__proto__": "p", "constructor": "c", "toString": "s"}') as Record<string, string>;
  t.deepEqual(Object.keys(podIdentityLabels({ namespace: 'ns', podLabels: hostile, clusterName: 'prod' })).filter((k) => !k.includes('.')).sort(),
    ['__proto__', 'constructor', 'toString']);
  t.true(Object.hasOwn(identityLabelsFromStrings(['k8s:__proto__=x', 'k8s:constructor=y']), '__proto__'));
  const node: KubeObject = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', labels: { constructor: 'yes', valueOf: '1' } }, pos: at('node-a') };
  const { inventory } = buildInventory([node], cfg, { nodeName: 'node-a', nodeLabels: { toString: 'cli' } });
  t.deepEqual(inventory.self.labels, { constructor: 'yes', valueOf: '1', toString: 'cli' });
});
