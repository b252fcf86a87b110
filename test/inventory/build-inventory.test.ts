import test from 'ava';
import { LineCounter, parseAllDocuments } from 'yaml';
import { formatProblem } from '../../src/api/problem.js';
import type { KubeObject } from '../../src/api/types.js';
import { buildInventory } from '../../src/inventory/build-inventory.js';
import { defaultConfig, parseConfig } from '../../src/inventory/config.js';
import type { NodewallConfig } from '../../src/inventory/types.js';

/** Cluster objects from YAML, each positioned at its document start, as the manifest loader does. */
function objects(text: string, file = 'cluster.yaml'): KubeObject[] {
  const lc = new LineCounter();
  return parseAllDocuments(text, { lineCounter: lc }).flatMap((doc) => {
    const js = doc.toJS() as KubeObject | null;
    if (js === null) return [];
    const lp = lc.linePos(doc.contents?.range?.[0] ?? 0);
    return [{ ...js, pos: { file, line: lp.line, col: lp.col } }];
  });
}

const cfg = (extra = ''): NodewallConfig => parseConfig(`clusterName: prod\n${extra}`, '/etc/nodewall/nodewall.yaml');

const cluster = `
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {role: worker, kubernetes.io/hostname: node-a, zone: z1}
spec:
  podCIDR: 198.51.100.0/26
  podCIDRs: [198.51.100.0/26, "2001:db8:100::/80"]
status:
  addresses:
    - {type: InternalIP, address: 192.0.2.1}
    - {type: InternalIP, address: "2001:DB8::1"}
    - {type: Hostname, address: node-a}
---
apiVersion: cilium.io/v2
kind: CiliumNode
metadata:
  name: node-a
  labels: {role: from-ciliumnode}
spec:
  addresses:
    - {type: InternalIP, ip: 192.0.2.1}
    - {type: CiliumInternalIP, ip: 198.51.100.1}
  health: {ipv4: 192.0.2.101, ipv6: "2001:db8::101"}
  ingress: {ipv4: 198.51.100.2}
  ipam: {podCIDRs: [198.51.100.0/26]}
---
apiVersion: v1
kind: Node
metadata: {name: node-b, labels: {role: control-plane}}
spec: {podCIDRs: [198.51.100.64/26]}
status:
  addresses:
    - {type: InternalIP, address: 192.0.2.2}
    - {type: ExternalIP, address: 203.0.113.2}
---
apiVersion: cilium.io/v2
kind: CiliumNode
metadata: {name: node-c, labels: {role: edge}}
spec:
  addresses: [{type: InternalIP, ip: 192.0.2.3}, {type: CiliumInternalIP, ip: 198.51.100.129}]
  health: {ipv4: 192.0.2.103}
  ipam: {podCIDRs: [198.51.100.128/26]}
`;

test('Node and CiliumNode of the same name merge; a CiliumNode-only node still counts', (t) => {
  const { inventory, problems } = buildInventory(objects(cluster), cfg(), { nodeName: 'node-a' });
  t.deepEqual(problems, []);
  t.deepEqual(inventory.self, {
    name: 'node-a',
    labels: { role: 'worker', 'kubernetes.io/hostname': 'node-a', zone: 'z1' },
    addresses: ['192.0.2.1', '198.51.100.1', '2001:db8::1'],
    healthAddresses: ['192.0.2.101', '2001:db8::101'],
    ingressAddresses: ['198.51.100.2'],
    podCIDRs: ['198.51.100.0/26', '2001:db8:100::/80'],
  });
  t.deepEqual(
    inventory.remoteNodes.map((n) => [n.name, n.labels, n.addresses, n.healthAddresses, n.podCIDRs]),
    [
      ['node-b', { role: 'control-plane' }, ['192.0.2.2', '203.0.113.2'], [], ['198.51.100.64/26']],
      ['node-c', { role: 'edge' }, ['192.0.2.3', '198.51.100.129'], ['192.0.2.103'], ['198.51.100.128/26']],
    ],
  );
  t.is(inventory.clusterName, 'prod');
});

test('clusterPodCIDRs merge config and every node podCIDR', (t) => {
  const { inventory } = buildInventory(objects(cluster), cfg('clusterPodCIDRs: [198.51.100.192/26, 10.0.0.0/8]'), { nodeName: 'node-b' });
  t.deepEqual(inventory.clusterPodCIDRs, ['10.0.0.0/8', '198.51.100.0/24', '2001:db8:100::/80']);
  t.is(inventory.self.name, 'node-b');
  t.deepEqual(
    inventory.remoteNodes.map((n) => n.name),
    ['node-a', 'node-c'],
  );
});

test('self labels: Node < config < command line; local addresses are added', (t) => {
  const { inventory } = buildInventory(objects(cluster), cfg('nodeLabels: {zone: z9, tier: gold}'), {
    nodeName: 'node-a',
    nodeLabels: { tier: 'silver' },
    localAddresses: ['192.0.2.1', '192.0.2.200', '2001:db8::1:1'],
  });
  t.deepEqual(inventory.self.labels, { role: 'worker', 'kubernetes.io/hostname': 'node-a', zone: 'z9', tier: 'silver' });
  t.deepEqual(inventory.self.addresses, ['192.0.2.1', '192.0.2.200', '198.51.100.1', '2001:db8::1', '2001:db8::1:1']);
});

test('self known only from a CiliumNode takes its labels', (t) => {
  const { inventory, problems } = buildInventory(objects(cluster), cfg(), { nodeName: 'node-c' });
  t.deepEqual(problems, []);
  t.deepEqual(inventory.self.labels, { role: 'edge' });
  t.deepEqual(inventory.self.addresses, ['192.0.2.3', '198.51.100.129']);
});

test('a host without Node objects is built from config labels and local addresses, without warning', (t) => {
  const { inventory, problems } = buildInventory([], cfg('nodeLabels: {role: bastion}'), {
    nodeName: 'bastion-1',
    localAddresses: ['203.0.113.9', 'not-an-ip'],
  });
  t.deepEqual(inventory.self, {
    name: 'bastion-1',
    labels: { role: 'bastion' },
    addresses: ['203.0.113.9'],
    healthAddresses: [],
    ingressAddresses: [],
    podCIDRs: [],
  });
  t.deepEqual(inventory.remoteNodes, []);
  t.deepEqual(problems.map((p) => p.code), ['inventory/bad-address']);
});

test('a node name missing among Node objects is a warning at the first node object', (t) => {
  const { inventory, problems } = buildInventory(objects(cluster, 'nodes.yaml'), cfg('nodeLabels: {role: x}'), { nodeName: 'node-z' });
  t.deepEqual(problems.map(formatProblem), [
    'nodes.yaml:2:1: warning: node "node-z" not found among the 3 Node/CiliumNode objects; using config labels only',
  ]);
  t.deepEqual(inventory.self.labels, { role: 'x' });
  t.is(inventory.remoteNodes.length, 3);
  // With nodeName set in the config, the warning points at the config.
  const named = buildInventory(objects(cluster), cfg('nodeName: node-z'), { nodeName: 'node-z' });
  t.is(named.problems[0]?.pos.file, '/etc/nodewall/nodewall.yaml');
});

const pods = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: shop, labels: {app: frontend}}
spec: {nodeName: node-b, serviceAccountName: fe}
status:
  phase: Running
  podIP: 198.51.100.70
  podIPs: [{ip: 198.51.100.70}, {ip: "2001:db8:100::70"}]
---
apiVersion: v1
kind: Pod
metadata: {name: old-style, labels: {app: legacy}}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 198.51.100.5}
---
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: kube-system, labels: {k8s-app: cilium}}
spec: {hostNetwork: true, nodeName: node-a}
status: {phase: Running, podIP: 192.0.2.1, podIPs: [{ip: 192.0.2.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: done, namespace: shop}
status: {phase: Succeeded, podIP: 198.51.100.71}
---
apiVersion: v1
kind: Pod
metadata: {name: failed, namespace: shop}
status: {phase: Failed, podIPs: [{ip: 198.51.100.72}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pending, namespace: shop}
status: {phase: Pending}
---
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata: {name: coredns-1, namespace: kube-system}
status:
  identity:
    id: 12345
    labels: ["k8s:k8s-app=kube-dns", "k8s:io.kubernetes.pod.namespace=kube-system", "k8s:io.cilium.k8s.policy.cluster=prod"]
  networking:
    addressing: [{ipv4: 198.51.100.130, ipv6: "2001:db8:100::130"}]
    node: 192.0.2.3
---
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata: {name: frontend, namespace: shop}
status:
  identity: {labels: ["k8s:app=ignored-pod-wins"]}
  networking: {addressing: [{ipv4: 198.51.100.70}, {ipv4: 198.51.100.77}]}
---
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata: {name: done, namespace: shop}
status: {networking: {addressing: [{ipv4: 198.51.100.71}]}}
---
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata: {name: bare, namespace: shop}
status: {networking: {addressing: [{ipv6: "2001:db8:100::99"}]}}
`;

test('pods from Pod and CiliumEndpoint with Cilium identity labels', (t) => {
  const { inventory, problems } = buildInventory(objects(cluster + '---' + pods), cfg(), { nodeName: 'node-a' });
  t.deepEqual(problems, []);
  t.deepEqual(inventory.pods, [
    {
      namespace: 'default',
      name: 'old-style',
      labels: {
        app: 'legacy',
        'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'default',
        'io.cilium.k8s.policy.cluster': 'prod',
        'io.cilium.k8s.policy.serviceaccount': 'default',
        'io.kubernetes.pod.namespace': 'default',
      },
      addresses: ['198.51.100.5'],
      nodeName: 'node-a',
    },
    {
      namespace: 'kube-system',
      name: 'coredns-1',
      labels: { 'io.cilium.k8s.policy.cluster': 'prod', 'io.kubernetes.pod.namespace': 'kube-system', 'k8s-app': 'kube-dns' },
      addresses: ['198.51.100.130', '2001:db8:100::130'],
      nodeName: 'node-c',
    },
    {
      namespace: 'shop',
      name: 'bare',
      labels: {
        'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'shop',
        'io.cilium.k8s.namespace.labels.team': 'web',
        'io.cilium.k8s.policy.cluster': 'prod',
        'io.cilium.k8s.policy.serviceaccount': 'default',
        'io.kubernetes.pod.namespace': 'shop',
      },
      addresses: ['2001:db8:100::99'],
    },
    {
      namespace: 'shop',
      name: 'frontend',
      labels: {
        app: 'frontend',
        'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'shop',
        'io.cilium.k8s.namespace.labels.team': 'web',
        'io.cilium.k8s.policy.cluster': 'prod',
        'io.cilium.k8s.policy.serviceaccount': 'fe',
        'io.kubernetes.pod.namespace': 'shop',
      },
      addresses: ['198.51.100.70', '198.51.100.77', '2001:db8:100::70'],
      nodeName: 'node-b',
    },
  ]);
});

test('a pod IP equal to a node IP is warned about and left to the node', (t) => {
  const text = `${cluster}---
apiVersion: v1
kind: Pod
metadata: {name: sneaky, namespace: shop}
status: {phase: Running, podIPs: [{ip: 192.0.2.2}, {ip: 198.51.100.80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: only-node-ip, namespace: shop}
status: {phase: Running, podIP: 192.0.2.1}
`;
  const { inventory, problems } = buildInventory(objects(text, 'c.yaml'), cfg(), { nodeName: 'node-a' });
  t.deepEqual(problems.map(formatProblem), [
    'c.yaml:51:1: warning: Pod shop/only-node-ip: address 192.0.2.1 is also an address of node node-a; treated as the node\'s (a host-network pod without hostNetwork: true?)',
    'c.yaml:46:1: warning: Pod shop/sneaky: address 192.0.2.2 is also an address of node node-b; treated as the node\'s (a host-network pod without hostNetwork: true?)',
  ]);
  t.deepEqual(
    inventory.pods.map((p) => [p.name, p.addresses]),
    [['sneaky', ['198.51.100.80']]],
  );
});

test('apiServerAddresses from Endpoints, EndpointSlice and config', (t) => {
  const text = `
apiVersion: v1
kind: Endpoints
metadata: {name: kubernetes, namespace: default}
subsets:
  - addresses: [{ip: 192.0.2.2}, {ip: 192.0.2.3}]
    ports: [{name: https, port: 6443}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: other, namespace: default}
subsets: [{addresses: [{ip: 192.0.2.99}]}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: kubernetes, namespace: elsewhere}
subsets: [{addresses: [{ip: 192.0.2.98}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}
addressType: IPv6
endpoints: [{addresses: ["2001:db8::2"]}, {addresses: ["2001:db8::3"]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default, labels: {kubernetes.io/service-name: web}}
endpoints: [{addresses: [192.0.2.97]}]
`;
  const { inventory, problems } = buildInventory(objects(text), cfg('apiServerAddresses: [192.0.2.50, 192.0.2.2]'), { nodeName: 'n' });
  t.deepEqual(problems, []);
  t.deepEqual(inventory.apiServerAddresses, ['192.0.2.2', '192.0.2.3', '192.0.2.50', '2001:db8::2', '2001:db8::3']);
});

test('invalid addresses in objects and config become positioned warnings and are skipped', (t) => {
  const text = `
apiVersion: v1
kind: Node
metadata: {name: node-a}
spec: {podCIDRs: [10.0.0.0/33]}
status:
  addresses:
    - {type: InternalIP, address: 010.0.0.1}
    - {type: ExternalIP, address: 192.0.2.1}
---
apiVersion: cilium.io/v2
kind: CiliumNode
metadata: {name: node-b}
spec:
  health: {ipv4: "fe80::1%eth0"}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
status: {podIPs: [{ip: 198.51.100.300}]}
`;
  // Bypass parseConfig's own validation to check buildInventory copes with unchecked config values.
  const config: NodewallConfig = { ...defaultConfig, file: '/etc/nodewall/nodewall.yaml', apiServerAddresses: ['nope'], clusterPodCIDRs: ['10.0.0.0'] };
  const { inventory, problems } = buildInventory(objects(text, 'bad.yaml'), config, { nodeName: 'node-a' });
  t.deepEqual(problems.map(formatProblem), [
    'bad.yaml:2:1: warning: status.addresses[0].address: Node node-a: invalid IP address: ParseAddr("010.0.0.1"): IPv4 field has octet with leading zero; ignored',
    'bad.yaml:2:1: warning: spec.podCIDRs[0]: Node node-a: invalid CIDR: netip.ParsePrefix("10.0.0.0/33"): prefix length out of range; ignored',
    'bad.yaml:11:1: warning: spec.health.ipv4: CiliumNode node-b: invalid IP address "fe80::1%eth0": zones are not allowed; ignored',
    'bad.yaml:17:1: warning: status.podIPs[0].ip: Pod shop/p: invalid IP address: ParseAddr("198.51.100.300"): IPv4 field has value >255; ignored',
    '/etc/nodewall/nodewall.yaml:1:1: warning: apiServerAddresses[0]: config: invalid IP address: ParseAddr("nope"): unable to parse IP; ignored',
    '/etc/nodewall/nodewall.yaml:1:1: warning: clusterPodCIDRs[0]: config: invalid CIDR: netip.ParsePrefix("10.0.0.0"): no \'/\'; ignored',
  ]);
  t.deepEqual(inventory.self.addresses, ['192.0.2.1']);
  t.deepEqual(inventory.self.podCIDRs, []);
  t.deepEqual(inventory.remoteNodes[0]?.healthAddresses, []);
  t.deepEqual(inventory.pods, []);
  t.deepEqual(inventory.apiServerAddresses, []);
  t.deepEqual(inventory.clusterPodCIDRs, []);
});

test('kind: List items are read', (t) => {
  const text = `
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Node, metadata: {name: node-a}, status: {addresses: [{type: InternalIP, address: 192.0.2.1}]}}
  - {apiVersion: v1, kind: Node, metadata: {name: node-b}, status: {addresses: [{type: InternalIP, address: 192.0.2.2}]}}
`;
  const { inventory } = buildInventory(objects(text), cfg(), { nodeName: 'node-a' });
  t.deepEqual(inventory.self.addresses, ['192.0.2.1']);
  t.deepEqual(
    inventory.remoteNodes.map((n) => n.addresses),
    [['192.0.2.2']],
  );
});
