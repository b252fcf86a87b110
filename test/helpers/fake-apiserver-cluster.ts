// Objects for the fake API server, shaped like what a real cluster returns
// (including fields the source must drop: managedFields, annotations, status).
// Addresses follow the conformance base cluster (this node is node-a).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { FakeApiServer, type JsonObject } from './fake-apiserver.js';

const managedFields = [{ manager: 'kubelet', operation: 'Update', apiVersion: 'v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': {} } }];

export function node(name: string, ip4: string, ip6: string, labels: Record<string, string> = {}): JsonObject {
  return {
    metadata: {
      name,
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...labels },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'network.cilium.io/ipv4-cilium-host': ip4.replace(/\.\d+$/, '.201') },
      managedFields,
      creationTimestamp: '2026-01-01T00:00:00Z',
    },
    spec: { podCIDR: '198.51.100.0/26', podCIDRs: ['198.51.100.0/26'], providerID: 'kind://docker/kind/' + name },
    status: {
      addresses: [{ type: 'InternalIP', address: ip4 }, { type: 'InternalIP', address: ip6 }, { type: 'Hostname', address: name }],
      capacity: { cpu: '8', memory: '32Gi' },
      conditions: [{ type: 'Ready', status: 'True' }],
      images: [{ names: ['registry.k8s.io/pause:3.9'], sizeBytes: 1 }],
    },
  };
}

export function namespace(name: string, labels: Record<string, string> = {}): JsonObject {
  return { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels }, managedFields }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

export function apiServerSlice(addresses: readonly string[]): JsonObject {
  return {
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes', 'endpointslice.kubernetes.io/managed-by': 'endpointslicemirroring-controller.k8s.io' }, managedFields },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
  };
}

export function ciliumNode(name: string, ip4: string, health: string): JsonObject {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name }, managedFields },
    spec: {
      addresses: [{ type: 'InternalIP', ip: ip4 }, { type: 'CiliumInternalIP', ip: ip4.replace(/\.\d+$/, '.201') }],
      health: { ipv4: health },
      ipam: { podCIDRs: ['198.51.100.0/26'], pool: {} },
      encryption: {},
      eni: {},
    },
    status: { ipam: { 'operator-status': {} } },
  };
}

export function pod(ns: string, name: string, ip: string, labels: Record<string, string>, nodeName = 'node-b'): JsonObject {
  return {
    metadata: { name, namespace: ns, labels, managedFields, ownerReferences: [{ kind: 'ReplicaSet', name: 'x' }] },
    spec: { nodeName, serviceAccountName: 'default', containers: [{ name: 'c', image: 'nginx', env: [{ name: 'A', value: 'B' }] }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '192.0.2.2', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

export function ciliumEndpoint(ns: string, name: string, ip: string, labels: Record<string, string>): JsonObject {
  return {
    metadata: { name, namespace: ns, labels, managedFields, ownerReferences: [{ kind: 'Pod', name }] },
    status: {
      id: 1234,
      identity: { id: 5678, labels: [...Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`), `k8s:io.kubernetes.pod.namespace=${ns}`] },
      networking: { addressing: [{ ipv4: ip }], node: '192.0.2.2' },
      policy: { ingress: { enforcing: false }, egress: { enforcing: false } },
      state: 'ready',
      'named-ports': [],
    },
  };
}

/** A host policy (every node) allowing SSH from a CIDR: needs no pod addresses. */
export function sshPolicy(name: string, cidr = '203.0.113.0/24'): JsonObject {
  return {
    metadata: { name, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' }, managedFields, generation: 1 },
    spec: {
      nodeSelector: {},
      ingress: [{ fromCIDR: [cidr], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
    },
  };
}

/** A host policy with an endpoint selector peer: needs pod addresses. */
export function podPeerPolicy(name: string): JsonObject {
  return {
    metadata: { name },
    spec: {
      nodeSelector: {},
      ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }], toPorts: [{ ports: [{ port: '9100', protocol: 'TCP' }] }] }],
    },
  };
}

/** The base cluster: three nodes, two namespaces, the API server slice, CiliumNodes. */
export function seedBaseCluster(s: FakeApiServer): void {
  s.apply('nodes', node('node-a', '192.0.2.1', '2001:db8::1', { role: 'edge' }));
  s.apply('nodes', node('node-b', '192.0.2.2', '2001:db8::2'));
  s.apply('nodes', node('node-c', '192.0.2.3', '2001:db8::3'));
  s.apply('namespaces', namespace('default'));
  s.apply('namespaces', namespace('kube-system'));
  s.apply('endpointslices', apiServerSlice(['192.0.2.2', '192.0.2.50']));
  s.apply('ciliumnodes', ciliumNode('node-a', '192.0.2.1', '192.0.2.101'));
  s.apply('ciliumnodes', ciliumNode('node-b', '192.0.2.2', '192.0.2.102'));
  s.apply('ciliumnodes', ciliumNode('node-c', '192.0.2.3', '192.0.2.103'));
}

/** A started fake seeded with the base cluster and a temporary directory, both removed when the test ends. */
export async function seededFakeApi(t: ExecutionContext, prefix: string): Promise<{ server: FakeApiServer; dir: string }> {
  const server = await FakeApiServer.start();
  seedBaseCluster(server);
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { server, dir };
}
