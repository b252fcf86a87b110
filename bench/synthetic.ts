// Synthetic cluster generator for benchmarks: N nodes, M pods, P host
// policies, written as Kubernetes manifests (YAML text) so that the whole
// pipeline, parser included, is measured. Deterministic for a given size.
//
// Addresses: nodes in 100.64.0.0/16 + 2001:db8:0:1::/64, pods in 100.65.0.0/16
// + 2001:db8:1::/48. They only ever become set elements; benchmarks send
// packets only inside their own namespaces, to documentation addresses.

import { loadManifestText } from '../src/api/load-manifests.js';
import { parseConfig } from '../src/inventory/config.js';
import { formatAddress, parseAddress } from '../src/policy/cidr.js';
import { buildState } from '../src/pipeline.js';

export interface SyntheticSize {
  readonly policies: number;
  readonly nodes: number;
  readonly pods: number;
}

export interface SyntheticCluster {
  /** Node, Namespace and Pod objects (multi-document YAML). */
  readonly clusterYaml: string;
  /** CiliumClusterwideNetworkPolicy objects (multi-document YAML). */
  readonly policiesYaml: string;
  /** The node the benchmarks act as. */
  readonly nodeName: string;
}

const apps = ['web', 'api', 'db', 'cache', 'queue', 'metrics', 'dns', 'ingress', 'batch', 'auth'];
const namespaces = ['default', 'kube-system', 'prod', 'staging', 'monitoring', 'payments', 'search', 'ml'];

function v4(base: number, i: number): string {
  return `100.${base + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}

// In canonical (RFC 5952) form, as API servers hold pod and node addresses (kubelet and the CRI print
// them with Go's netip String()); a non-canonical text would cost the inventory a canonical copy per pod.
function v6(prefix: string, i: number): string {
  const text = `${prefix}:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
  return formatAddress('ipv6', parseAddress(text).bits);
}

export function generateCluster(size: SyntheticSize): SyntheticCluster {
  const docs: string[] = [];
  for (const ns of namespaces) {
    docs.push(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n  labels:\n    team: t-${ns}\n`);
  }
  for (let n = 0; n < size.nodes; n++) {
    const role = n < 3 ? 'control-plane' : 'worker';
    docs.push(
      `apiVersion: v1\nkind: Node\nmetadata:\n  name: node-${n}\n  labels:\n    type: ${role}\n    pool: p${n % 10}\n` +
        `    node-role.kubernetes.io/${role}: ""\nspec:\n  podCIDRs: []\nstatus:\n  addresses:\n` +
        `  - type: InternalIP\n    address: ${v4(64, n + 1)}\n  - type: InternalIP\n    address: ${v6('2001:db8:0:1:0:0', n + 1)}\n`,
    );
  }
  for (let p = 0; p < size.pods; p++) {
    const ns = namespaces[p % namespaces.length];
    const app = apps[p % apps.length];
    docs.push(
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-${p}\n  namespace: ${ns}\n  labels:\n    app: ${app}\n    shard: s${p % 50}\n` +
        `spec:\n  nodeName: node-${p % Math.max(1, size.nodes)}\nstatus:\n  phase: Running\n  podIPs:\n` +
        `  - ip: ${v4(65, p + 1)}\n  - ip: ${v6('2001:db8:1:0:0:0', p + 1)}\n`,
    );
  }
  const policies: string[] = [];
  for (let i = 0; i < size.policies; i++) policies.push(syntheticPolicy(i));
  return { clusterYaml: docs.join('---\n'), policiesYaml: policies.join('---\n'), nodeName: 'node-5' };
}

/** A mix of the rule shapes seen in the corpus: entities, CIDRs with except, pod selectors, deny rules, ICMP. */
function syntheticPolicy(i: number): string {
  const port = 1000 + (i % 5000);
  const head = `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: host-${i}\nspec:\n`;
  const selector = i % 4 === 0 ? '  nodeSelector: {}\n' : `  nodeSelector:\n    matchLabels:\n      pool: p${i % 10}\n`;
  switch (i % 5) {
    case 0:
      return `${head}${selector}  ingress:\n  - fromEntities: [remote-node, health]\n  - fromEntities: [world]\n    toPorts:\n    - ports:\n      - port: "${port}"\n        protocol: TCP\n`;
    case 1:
      return `${head}${selector}  ingress:\n  - fromCIDRSet:\n    - cidr: 198.18.${i % 256}.0/24\n      except: [198.18.${i % 256}.128/25]\n    toPorts:\n    - ports:\n      - port: "${port}"\n        endPort: ${port + 10}\n        protocol: ANY\n`;
    case 2:
      return `${head}${selector}  ingress:\n  - fromEndpoints:\n    - matchLabels:\n        app: ${apps[i % apps.length]}\n        shard: s${i % 50}\n    toPorts:\n    - ports:\n      - port: "${port}"\n        protocol: TCP\n`;
    case 3:
      return `${head}${selector}  egress:\n  - toEndpoints:\n    - matchLabels:\n        k8s:io.kubernetes.pod.namespace: ${namespaces[i % namespaces.length]}\n    toPorts:\n    - ports:\n      - port: "${port}"\n        protocol: UDP\n  - toEntities: [kube-apiserver, remote-node]\n`;
    default:
      return `${head}${selector}  ingressDeny:\n  - fromCIDR: [198.19.${i % 256}.0/24]\n  ingress:\n  - icmps:\n    - fields:\n      - type: EchoRequest\n      - type: 128\n        family: IPv6\n`;
  }
}

/** A synthetic cluster loaded and built as the agent would (enforce mode, the synthetic pod CIDRs). */
export function loadSynthetic(size: SyntheticSize) {
  const cluster = generateCluster(size);
  const objects = loadManifestText(cluster.clusterYaml, 'cluster.yaml');
  const policies = loadManifestText(cluster.policiesYaml, 'policies.yaml');
  const config = parseConfig('mode: enforce\nclusterPodCIDRs: [100.65.0.0/16, "2001:db8:1::/48"]\n', 'bench.yaml');
  const state = buildState({ config, load: { policies: policies.policies, objects: objects.objects, problems: [] }, nodeName: cluster.nodeName });
  return { cluster, objects, policies, config, state };
}
