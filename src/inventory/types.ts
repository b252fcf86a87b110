// Cluster state as seen from one node. Sources (manifest files now, the
// Kubernetes API later) fill it; the policy stage reads it and nothing else.

import type { KubernetesSourceConfig } from './sources/kubernetes-config.js';
import type { Failsafes } from '../policy/failsafe.js';
import type { RolloutSettings } from '../agent/rollout-config.js';

export type Labels = Readonly<Record<string, string>>;

export interface NodeInfo {
  readonly name: string;
  /** Kubernetes node labels as written (before Cilium's identity-label filter). */
  readonly labels: Labels;
  /** All IPs of the node: InternalIP/ExternalIP, CiliumNode addresses, cilium_host IPs. */
  readonly addresses: readonly string[];
  /** cilium-health endpoint IPs (CiliumNode spec.health). */
  readonly healthAddresses: readonly string[];
  /** Cilium Ingress/Gateway (Envoy) IPs (CiliumNode spec.ingress). */
  readonly ingressAddresses: readonly string[];
  /** Pod CIDRs allocated to the node (Node spec.podCIDRs, CiliumNode spec.ipam.podCIDRs). */
  readonly podCIDRs: readonly string[];
}

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  /**
   * Cilium identity labels without source prefix for k8s labels, i.e. the pod's
   * labels plus the ones Cilium derives: io.kubernetes.pod.namespace,
   * io.cilium.k8s.policy.cluster, io.cilium.k8s.policy.serviceaccount,
   * io.cilium.k8s.namespace.labels.<k>. Built by the inventory, read by selectors.
   */
  readonly labels: Labels;
  readonly addresses: readonly string[];
  readonly nodeName?: string;
}

export interface Inventory {
  readonly clusterName: string;
  /** This node. Its addresses include the machine's interface addresses when it is the local machine. */
  readonly self: NodeInfo;
  /** Every other node of the cluster. */
  readonly remoteNodes: readonly NodeInfo[];
  /** Cilium-managed pods (host-network pods are excluded: they are the host). */
  readonly pods: readonly PodInfo[];
  /** Addresses backing default/kubernetes (kube-apiserver entity). */
  readonly apiServerAddresses: readonly string[];
  /** Cluster pod CIDRs (config clusterPodCIDRs + every node's podCIDRs). Never world. */
  readonly clusterPodCIDRs: readonly string[];
}

export type EnforcementMode = 'default' | 'always' | 'never';
export type LabelFilter = 'cilium' | 'none';
export type RunMode = 'enforce' | 'audit' | 'dry-run';

/** The parts of the config that change verdicts (Cilium agent flags). */
export interface EngineConfig {
  readonly clusterName: string;
  readonly policyEnforcement: EnforcementMode;
  readonly labelFilter: LabelFilter;
  readonly policyCIDRMatchMode: '' | 'nodes';
  /** Cilium enable-extended-ip-protocols (default false). */
  readonly enableExtendedIPProtocols: boolean;
  /** Cilium enable-node-selector-labels (default false): gates fromNodes/toNodes. */
  readonly enableNodeSelectorLabels: boolean;
  /** Cilium enable-icmp-rules (default true). */
  readonly enableICMPRules: boolean;
  /** Cilium allow-icmp-frag-needed (default true). */
  readonly allowICMPFragNeeded: boolean;
  /** Cilium enable-non-default-deny-policies (default true). */
  readonly enableNonDefaultDenyPolicies: boolean;
  /**
   * nodewall: the most nft set elements one rule's CIDR field (fromCIDR, toCIDR, fromCIDRSet,
   * toCIDRSet) may produce; a policy over it is invalid (default 250000).
   */
  readonly maxSetElements: number;
  /** nodewall: config `failsafe` (src/policy/failsafe.ts), accepted before any policy; absent = none. */
  readonly failsafe?: Failsafes;
}

export const defaultEngineConfig: EngineConfig = {
  clusterName: 'default',
  policyEnforcement: 'default',
  labelFilter: 'cilium',
  policyCIDRMatchMode: '',
  enableExtendedIPProtocols: false,
  enableNodeSelectorLabels: false,
  enableICMPRules: true,
  allowICMPFragNeeded: true,
  enableNonDefaultDenyPolicies: true,
  maxSetElements: 250_000,
};

/** `metrics:` of the config. listen: where /metrics is served, or 'off'. */
export interface MetricsConfig {
  readonly listen: MetricsListen;
}

export type MetricsListen = 'off' | { readonly host: string; readonly port: number };

/** Whole nodewall config file (/etc/nodewall/nodewall.yaml). */
export interface NodewallConfig extends EngineConfig {
  /** Default: the hostname. */
  readonly nodeName?: string;
  /** Labels of this node. Layered over the Node object's labels (config wins per key) and under
   *  command-line labels; for hosts without a Node object they are the only labels. */
  readonly nodeLabels: Labels;
  readonly clusterPodCIDRs: readonly string[];
  readonly apiServerAddresses: readonly string[];
  /** Manifest files or directories. */
  readonly sources: readonly string[];
  /** The Kubernetes API source (a `- kubernetes: {...}` entry of `sources`), when configured. */
  readonly kubernetes?: KubernetesSourceConfig;
  readonly mode: RunMode;
  /**
   * timeoutSeconds: nft runs longer than this are killed (the previous ruleset stays in force).
   * maxElementsPerTransaction: a cold start (no table yet) with more set elements is staged in transactions of
   * at most this many elements, hooks last (src/nft/cold-start.ts); absent = 100000.
   * launcher: the agent runs nft through a small launcher process (src/nft/nft-launcher.ts); absent = true.
   */
  readonly nft: { readonly path: string; readonly table: string; readonly timeoutSeconds: number; readonly maxElementsPerTransaction?: number; readonly launcher?: boolean };
  /** Where the agent keeps state (last good policies, status). */
  readonly stateDir: string;
  // Agent only (src/agent/agent-config.ts has the defaults); absent = default.
  /** warn | refuse | off: a change that would cut an established inbound session. */
  readonly lockoutGuard?: 'warn' | 'refuse' | 'off';
  /** Delete nodewall's table when the agent stops (default false: the ruleset stays in force). */
  readonly removeOnStop?: boolean;
  /** Seconds between checks that the kernel table is what was applied (0 = never). */
  readonly driftCheckSeconds?: number;
  /** Seconds between full re-reads of config and sources without file events (0 = never). */
  readonly resyncSeconds?: number;
  /** Quiet time after a file event before the agent reconciles. */
  readonly debounceMs?: number;
  /** Per-file size limit for manifest files, in bytes (default 32 MiB; src/inventory/read-manifest-files.ts). */
  readonly maxFileBytes?: number;
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Prometheus endpoint (src/agent/metrics-server.ts); absent = 127.0.0.1:9964. */
  readonly metrics?: MetricsConfig;
  /** Follow `nft monitor` to repair drift at once (src/agent/nft-monitor.ts); absent = true. */
  readonly driftMonitor?: boolean;
  // --- staged policies (issue 10; src/policy/staged.ts) ---
  /** CCNP names evaluated and reported but never enforced, like the `nodewall.io/stage: audit` annotation. */
  readonly stagedPolicies?: readonly string[];
  /**
   * Drop records (enforce mode): every dropped flow is recorded by the kernel in bounded timed maps
   * (src/nft/render-drop-records.ts). 'off' disables; absent = defaultDropRecords.
   */
  readonly dropRecords?: DropRecordSettings | 'off';
  /** logDrops: a rate-limited nft `log` rule before each drop, its prefix naming the rule (src/nft/render-drop-log.ts); needs dropRecords. */
  readonly logDrops?: boolean;
  /** Agent: how a change goes live: commit-confirm (src/agent/rollout-confirm.ts) and health probes (src/agent/rollout-probes.ts). */
  readonly rollout?: RolloutSettings;
  /** Where this config came from, for messages; undefined = built-in defaults. */
  readonly file?: string;
}

/** Config dropRecords: entries per kernel map (one per direction and family) and how long a record outlives its last drop. */
export interface DropRecordSettings {
  readonly size: number;
  readonly timeoutSeconds: number;
  /** Config logDrops (folded in by dropRecordsOf, so it reaches every render of the table: apply, drift repair). */
  readonly log?: boolean;
}

export const defaultDropRecords: DropRecordSettings = { size: 65_536, timeoutSeconds: 3600 };

/** The drop-record settings in force for a config: undefined when off. */
export function dropRecordsOf(config: { readonly dropRecords?: DropRecordSettings | 'off'; readonly logDrops?: boolean }): DropRecordSettings | undefined {
  const s = config.dropRecords === 'off' ? undefined : (config.dropRecords ?? defaultDropRecords);
  return s !== undefined && config.logDrops === true ? { ...s, log: true } : s;
}
