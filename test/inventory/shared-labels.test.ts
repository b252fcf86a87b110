import test from 'ava';
import type { KubeObject } from '../../src/api/types.js';
import { buildInventory } from '../../src/inventory/build-inventory.js';
import { parseConfig } from '../../src/inventory/config.js';

// Pods with the same namespace, service account and labels share one Labels object (memory at
// 100k pods); anything that changes a pod's identity labels gives it its own.
const pod = (name: string, ns: string, labels: Record<string, string>, ip: string, sa?: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  ...(sa === undefined ? {} : { spec: { serviceAccountName: sa } }),
  status: { podIPs: [{ ip }] },
}) as unknown as KubeObject;
const ns = (name: string, labels: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }) as unknown as KubeObject;

test('pods with equal identity inputs share one Labels object; different ones do not', (t) => {
  const cfg = parseConfig('clusterName: prod\n', 'nodewall.yaml');
  const objs = [
    ns('a', { team: 'x' }),
    ns('b', { team: 'x' }),
    pod('p1', 'a', { app: 'web' }, '192.0.2.1'),
    pod('p2', 'a', { app: 'web' }, '192.0.2.2'),
    pod('p3', 'b', { app: 'web' }, '192.0.2.3'),
    pod('p4', 'a', { app: 'web' }, '192.0.2.4', 'robot'),
    pod('p5', 'a', { app: 'db' }, '192.0.2.5'),
  ];
  const inv = buildInventory(objs, cfg, { nodeName: 'n1' }).inventory;
  const by = new Map(inv.pods.map((p) => [p.name, p.labels]));
  t.is(by.get('p1'), by.get('p2'));
  t.not(by.get('p1'), by.get('p3'));
  t.not(by.get('p1'), by.get('p4'));
  t.not(by.get('p1'), by.get('p5'));
  t.deepEqual(by.get('p3'), { ...by.get('p1'), 'io.kubernetes.pod.namespace': 'b', 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'b' });
  t.is(by.get('p4')?.['io.cilium.k8s.policy.serviceaccount'], 'robot');
  // A later build with other namespace labels never reuses the earlier objects.
  const relabelled = buildInventory([ns('a', { team: 'y' }), ...objs.slice(1)], cfg, { nodeName: 'n1' }).inventory;
  const p1 = relabelled.pods.find((p) => p.name === 'p1');
  t.is(p1?.labels['io.cilium.k8s.namespace.labels.team'], 'y');
  t.not(p1?.labels, by.get('p1'));
});

test('canonical addresses stay as given, others are rewritten to canonical form', (t) => {
  const cfg = parseConfig('clusterName: prod\n', 'nodewall.yaml');
  const inv = buildInventory([pod('p1', 'a', {}, '192.0.2.1'), pod('p2', 'a', {}, '2001:DB8:0:0:0:0:0:1')], cfg, { nodeName: 'n1' }).inventory;
  t.deepEqual(inv.pods.map((p) => p.addresses), [['192.0.2.1'], ['2001:db8::1']]);
});
