import test from 'ava';
import { identityLabelsFromStrings, podIdentityLabels } from '../../src/inventory/pod-labels.js';

test('podIdentityLabels adds namespace, cluster, service account and namespace labels', (t) => {
  t.deepEqual(
    podIdentityLabels({
      namespace: 'kube-system',
      podLabels: { 'k8s-app': 'kube-dns', 'io.kubernetes.pod.namespace': 'spoofed' },
      serviceAccount: 'coredns',
      namespaceLabels: { team: 'infra' },
      clusterName: 'prod',
    }),
    {
      'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'kube-system',
      'io.cilium.k8s.namespace.labels.team': 'infra',
      'io.cilium.k8s.policy.cluster': 'prod',
      'io.cilium.k8s.policy.serviceaccount': 'coredns',
      'io.kubernetes.pod.namespace': 'kube-system',
      'k8s-app': 'kube-dns',
    },
  );
});

test('podIdentityLabels defaults the service account like the API server', (t) => {
  const l = podIdentityLabels({ namespace: 'web', podLabels: {}, clusterName: 'default' });
  t.is(l['io.cilium.k8s.policy.serviceaccount'], 'default');
  t.is(l['io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name'], 'web');
  t.is(Object.keys(l).length, 4);
});

test('identityLabelsFromStrings drops only the k8s: prefix', (t) => {
  t.deepEqual(identityLabelsFromStrings(['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop', 'reserved:init', 'any:x=a=b', '']), {
    'any:x': 'a=b',
    app: 'web',
    'io.kubernetes.pod.namespace': 'shop',
    'reserved:init': '',
  });
});
