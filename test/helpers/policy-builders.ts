// Hand-built PolicyDocument / Inventory values for engine tests (no YAML loader needed).

import type { LabelSelector, PeerRule, PolicyDocument, Rule, SourcePos } from '../../src/api/types.js';
import { defaultEngineConfig, type EngineConfig, type Inventory, type NodeInfo, type PodInfo } from '../../src/inventory/types.js';

export type RuleSpec = Omit<Rule, 'path'>;

/** A CCNP; one rule = `spec`, several = `specs[i]`. Every field locates at the object position. */
export function ccnp(name: string, rules: RuleSpec | readonly RuleSpec[], kind: PolicyDocument['kind'] = 'CiliumClusterwideNetworkPolicy'): PolicyDocument {
  const list = Array.isArray(rules) ? (rules as readonly RuleSpec[]) : [rules as RuleSpec];
  const single = !Array.isArray(rules);
  const file = `${name}.yaml`;
  const pos: SourcePos = { file, line: 1, col: 1 };
  return {
    kind,
    name,
    rules: list.map((r, i) => ({ ...r, path: single ? 'spec' : `specs[${i}]` })),
    pos,
    locate: () => pos,
    hash: `hash-${name}`,
  };
}

/** A host rule selecting every node. */
export function hostRule(r: Omit<RuleSpec, 'nodeSelector'> & { nodeSelector?: LabelSelector }): RuleSpec {
  return { nodeSelector: {}, ...r };
}

export const allNodes: LabelSelector = {};

export function ports(...specs: string[]): Pick<PeerRule, 'toPorts'> {
  // "22/TCP", "53", "8000-8080/UDP"
  return {
    toPorts: [
      {
        ports: specs.map((s) => {
          const [p = '', proto] = s.split('/');
          const [port = '', end] = p.split('-');
          return { port, ...(end === undefined ? {} : { endPort: Number(end) }), ...(proto === undefined ? {} : { protocol: proto }) };
        }),
      },
    ],
  };
}

export function node(name: string, n: Partial<Omit<NodeInfo, 'name'>> = {}): NodeInfo {
  return { name, labels: n.labels ?? {}, addresses: n.addresses ?? [], healthAddresses: n.healthAddresses ?? [], ingressAddresses: n.ingressAddresses ?? [], podCIDRs: n.podCIDRs ?? [] };
}

export function pod(namespace: string, name: string, labels: Record<string, string>, addresses: string[]): PodInfo {
  return { namespace, name, labels: { 'io.kubernetes.pod.namespace': namespace, 'io.cilium.k8s.policy.cluster': 'default', ...labels }, addresses };
}

/** The conformance base cluster: this node is node-a. */
export function baseInventory(over: Partial<Inventory> = {}): Inventory {
  return {
    clusterName: 'default',
    self: node('node-a', { labels: { 'kubernetes.io/hostname': 'node-a', 'kubernetes.io/os': 'linux', role: 'worker' }, addresses: ['192.0.2.1', '2001:db8::1'], healthAddresses: ['192.0.2.101'] }),
    remoteNodes: [
      node('node-b', { labels: { 'kubernetes.io/hostname': 'node-b', 'node-role.kubernetes.io/control-plane': '' }, addresses: ['192.0.2.2', '2001:db8::2'], healthAddresses: ['192.0.2.102'] }),
      node('node-c', { labels: { 'kubernetes.io/hostname': 'node-c', role: 'worker' }, addresses: ['192.0.2.3', '2001:db8::3'], healthAddresses: ['192.0.2.103'] }),
    ],
    pods: [
      pod('kube-system', 'coredns-1', { 'k8s-app': 'kube-dns' }, ['198.51.100.10', '2001:db8:100::10']),
      pod('default', 'web-1', { app: 'web' }, ['198.51.100.20']),
      pod('monitoring', 'prom-1', { app: 'prometheus' }, ['198.51.100.30']),
    ],
    apiServerAddresses: ['192.0.2.2', '192.0.2.50'],
    clusterPodCIDRs: ['198.51.100.0/24', '2001:db8:100::/64'],
    ...over,
  };
}

export function config(over: Partial<EngineConfig> = {}): EngineConfig {
  return { ...defaultEngineConfig, ...over };
}
