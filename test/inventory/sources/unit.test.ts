// Pure parts of the Kubernetes source: slimming, the pod-need rule, backoff, config entry.

import test from 'ava';
import { InputError } from '../../../src/api/problem.js';
import type { KubeObject } from '../../../src/api/types.js';
import { backoffDelay } from '../../../src/inventory/sources/backoff.js';
import { loadManifestText } from '../../../src/api/load-manifests.js';
import { policyNeedsPods, stripObject } from '../../../src/inventory/sources/kube-kinds.js';
import { ruleNeedsPods, selectedPoliciesNeedPods } from '../../../src/inventory/sources/pod-need.js';
import { parseKubernetesSourceConfig } from '../../../src/inventory/sources/kubernetes-config.js';
import { ciliumEndpoint, node, pod } from '../../helpers/fake-apiserver-cluster.js';

const ccnp = (spec: unknown, specs?: unknown[]): KubeObject =>
  ({ kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'p' }, spec, ...(specs === undefined ? {} : { specs }) }) as KubeObject;

test('a slim Node keeps name, labels, resourceVersion, podCIDRs, addresses and Cilium annotations only', (t) => {
  const raw = node('n1', '192.0.2.9', '2001:db8::9', { zone: 'a' });
  (raw['metadata'] as Record<string, unknown>)['resourceVersion'] = '42';
  const o = stripObject('node', raw);
  // A NodeRecord: its slim shape is what it serialises to (k8s-cache.json) and what its getters give.
  t.deepEqual(Object.keys(JSON.parse(JSON.stringify(o)) as object).sort(), ['apiVersion', 'kind', 'metadata', 'pos', 'spec', 'status']);
  t.deepEqual(Object.keys(o.metadata).sort(), ['annotations', 'labels', 'name', 'resourceVersion']);
  t.is(o.metadata['resourceVersion'], '42');
  t.is(o.kind, 'Node');
  t.is(o.apiVersion, 'v1');
  t.deepEqual(o['spec'], { podCIDR: '198.51.100.0/26', podCIDRs: ['198.51.100.0/26'] });
  // The slim copy is much smaller than the original.
  t.true(JSON.stringify(o).length < JSON.stringify(raw).length * 0.7);
});

test('a slim Pod keeps what the inventory reads, host-network flag included', (t) => {
  const raw = pod('ns1', 'p1', '198.51.100.7', { app: 'x' });
  (raw['spec'] as Record<string, unknown>)['hostNetwork'] = true;
  const o = stripObject('pod', raw);
  t.deepEqual(o['spec'], { nodeName: 'node-b', hostNetwork: true, serviceAccountName: 'default' });
  t.deepEqual(o['status'], { podIP: '198.51.100.7', podIPs: [{ ip: '198.51.100.7' }], phase: 'Running' });
  t.deepEqual(o.metadata, { name: 'p1', namespace: 'ns1', labels: { app: 'x' } });
  t.deepEqual(o.pos, { file: 'k8s:pod/ns1/p1', line: 1, col: 1 });
});

test('a slim CiliumEndpoint keeps identity labels and addressing', (t) => {
  const o = stripObject('ciliumendpoint', ciliumEndpoint('ns1', 'p1', '198.51.100.7', { app: 'x' }));
  t.deepEqual(o['status'], {
    identity: { id: 5678, labels: ['k8s:app=x', 'k8s:io.kubernetes.pod.namespace=ns1'] },
    networking: { node: '192.0.2.2', addressing: [{ ipv4: '198.51.100.7' }] },
  });
});

test('a slim CCNP keeps spec and specs whole, and has no pos (the loader rejects unknown top-level keys)', (t) => {
  const spec = { nodeSelector: {}, ingress: [{ fromCIDR: ['192.0.2.0/24'] }] };
  const o = stripObject('ccnp', { metadata: { name: 'x', annotations: { a: 'b' }, managedFields: [] }, spec, specs: [spec], status: { derivedPolicies: {} } });
  t.deepEqual(o as unknown, { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'x' }, spec, specs: [spec] });
});

test('model objects of the client library (Dates, class instances) slim like raw JSON', (t) => {
  class V1Meta {
    name = 'n';
    creationTimestamp = new Date(0);
    labels = { a: 'b' };
  }
  const o = stripObject('namespace', { metadata: new V1Meta(), spec: {} });
  t.deepEqual(o.metadata, { name: 'n', labels: { a: 'b' } });
  t.is(JSON.stringify(o), JSON.stringify(JSON.parse(JSON.stringify(o))));
});

test('pods are needed for endpoint selectors and the cluster entity, in spec or specs, any direction', (t) => {
  t.false(policyNeedsPods(ccnp({ nodeSelector: {}, ingress: [{ fromCIDR: ['192.0.2.0/24'] }] })));
  t.false(policyNeedsPods(ccnp({ nodeSelector: {}, ingress: [{ fromEntities: ['world', 'remote-node'] }] })));
  t.true(policyNeedsPods(ccnp({ nodeSelector: {}, ingress: [{ fromEndpoints: [{}] }] })));
  t.true(policyNeedsPods(ccnp({ nodeSelector: {}, egressDeny: [{ toEndpoints: [{ matchLabels: { a: 'b' } }] }] })));
  t.true(policyNeedsPods(ccnp({ nodeSelector: {}, egress: [{ toEntities: ['cluster'] }] })));
  t.true(policyNeedsPods(ccnp(undefined, [{ nodeSelector: {} }, { nodeSelector: {}, ingressDeny: [{ fromEntities: ['cluster'] }] }])));
  t.false(policyNeedsPods(ccnp('garbage')));
});

test('backoff grows exponentially, is capped, and is jittered within [half, full]', (t) => {
  const opts = { initialMs: 100, maxMs: 1000 };
  t.is(backoffDelay(1, opts, () => 0), 50);
  t.is(backoffDelay(1, opts, () => 0.999999), 100);
  t.is(backoffDelay(3, opts, () => 0.999999), 400);
  t.is(backoffDelay(10, opts, () => 0.999999), 1000);
  t.is(backoffDelay(1000, opts, () => 0), 500);
  for (let i = 0; i < 50; i++) {
    const d = backoffDelay(4, opts);
    t.true(d >= 400 && d <= 800);
  }
});

const pos = { file: '/etc/nodewall/nodewall.yaml', line: 3, col: 5 };

test('config: a path is not a kubernetes entry; kubeconfig and inCluster entries parse', (t) => {
  t.is(parseKubernetesSourceConfig('/etc/nodewall/policies', pos, 'sources[0]'), undefined);
  t.deepEqual(parseKubernetesSourceConfig({ kubernetes: { kubeconfig: 'kc.yaml' } }, pos, 'sources[1]', '/etc/nodewall'), { kubeconfig: '/etc/nodewall/kc.yaml' });
  t.deepEqual(parseKubernetesSourceConfig({ kubernetes: { inCluster: true, needPods: 'auto' } }, pos, 'sources[1]'), { inCluster: true, needPods: 'auto' });
  t.deepEqual(parseKubernetesSourceConfig({ kubernetes: null }, pos, 'sources[1]'), {});
});

test('config: bad kubernetes entries are InputErrors naming the field', (t) => {
  const fields = (entry: unknown): string[] => {
    const e = t.throws(() => parseKubernetesSourceConfig(entry, pos, 'sources[2]'), { instanceOf: InputError });
    return (e as InputError).problems.map((p) => `${p.field}: ${p.message}`);
  };
  t.deepEqual(fields({ kubernetes: { kubeconfig: 3, inCluster: 'yes', extra: 1 } }), [
    'sources[2].kubernetes.kubeconfig: must be a non-empty path',
    'sources[2].kubernetes.inCluster: must be true or false',
    'sources[2].kubernetes.extra: unknown key (known: kubeconfig, inCluster, context, needPods)',
  ]);
  t.deepEqual(fields({ kubernetes: { kubeconfig: '/a', inCluster: true } }), ['sources[2].kubernetes: kubeconfig and inCluster: true exclude each other']);
  t.is(fields({ kube: {} }).length, 1);
  t.is(fields(42).length, 1);
  t.deepEqual(fields({ kubernetes: ['x'] }), ['sources[2].kubernetes: must be a map (keys: kubeconfig, inCluster, context, needPods)']);
});

test('selected-rule pod need: only host rules selecting the node count, after the label filter', (t) => {
  const load = (spec: unknown) => loadManifestText(JSON.stringify({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'p' }, spec }), 'p.json').policies;
  const edgeWeb = load({ nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{ fromEndpoints: [{}] }] });
  const edgeCidr = load({ nodeSelector: { matchLabels: { role: 'edge' } }, ingress: [{ fromCIDR: ['192.0.2.0/24'] }] });
  const allCluster = load({ nodeSelector: {}, egress: [{ toEntities: ['cluster'] }] });
  const byOs = load({ nodeSelector: { matchLabels: { 'kubernetes.io/os': 'linux' } }, ingress: [{ fromEndpoints: [{}] }] });
  t.true(selectedPoliciesNeedPods(edgeWeb, { role: 'edge' }, 'cilium'));
  t.false(selectedPoliciesNeedPods(edgeWeb, { role: 'core' }, 'cilium'));
  t.false(selectedPoliciesNeedPods(edgeCidr, { role: 'edge' }, 'cilium'));
  t.true(selectedPoliciesNeedPods(allCluster, {}, 'cilium'));
  // kubernetes.io/ labels are filtered out of identities by Cilium's default filter.
  t.false(selectedPoliciesNeedPods(byOs, { 'kubernetes.io/os': 'linux' }, 'cilium'));
  t.true(selectedPoliciesNeedPods(byOs, { 'kubernetes.io/os': 'linux' }, 'none'));
  const rule = edgeWeb[0]?.rules[0];
  if (rule === undefined) return t.fail();
  t.true(ruleNeedsPods(rule));
});
