// Composes the stages: sources -> inventory -> policy model. buildState is
// pure; loadState does the reading (config, manifests, this machine's
// addresses) and then calls it. The CLI and the agent both go through here.

import type { LoadResult } from './api/load-manifests.js';
import { loadManifestPaths } from './inventory/load-manifest-files.js';
import { fileReadLimits } from './inventory/read-manifest-files.js';
import type { Problem } from './api/problem.js';
import { InputError } from './api/problem.js';
import type { PolicyDocument } from './api/types.js';
import { validatePolicy } from './api/validate.js';
import { buildInventory } from './inventory/build-inventory.js';
import { loadConfig, mergeConfig } from './inventory/config.js';
import { hostName, localAddresses } from './inventory/host-facts.js';
import type { Inventory, Labels, NodewallConfig, RunMode } from './inventory/types.js';
import { buildHostModel } from './policy/build-model.js';
import { lintPolicies } from './policy/lint.js';
import type { HostModel } from './policy/model.js';

export interface StateInput {
  readonly config: NodewallConfig;
  readonly load: LoadResult;
  readonly nodeName: string;
  readonly nodeLabels?: Labels;
  readonly localAddresses?: readonly string[];
}

export interface State {
  readonly config: NodewallConfig;
  readonly nodeName: string;
  readonly inventory: Inventory;
  /** Every CCNP read (valid or not). */
  readonly policies: readonly PolicyDocument[];
  /** Those Cilium would accept: no error problem. */
  readonly valid: readonly PolicyDocument[];
  /** Load, validation, inventory and lint problems, sorted by file and line. */
  readonly problems: readonly Problem[];
  readonly model: HostModel;
}

export function buildState(input: StateInput): State {
  const problems: Problem[] = [...input.load.problems];
  const seen = new Map<string, PolicyDocument>();
  const valid: PolicyDocument[] = [];
  for (const doc of input.load.policies) {
    const found = validatePolicy(doc, input.config);
    problems.push(...found);
    if (doc.kind !== 'CiliumClusterwideNetworkPolicy') continue;
    const first = seen.get(doc.name);
    if (first !== undefined) {
      problems.push({
        severity: 'error',
        pos: doc.pos,
        policy: doc.name,
        field: '',
        code: 'duplicate-policy',
        message: `another CiliumClusterwideNetworkPolicy named ${doc.name} is defined at ${first.pos.file}:${first.pos.line}; only that first one is used`,
      });
      continue;
    }
    seen.set(doc.name, doc);
    if (!found.some((p) => p.severity === 'error')) valid.push(doc);
  }
  const inv = buildInventory(input.load.objects, input.config, {
    nodeName: input.nodeName,
    ...(input.nodeLabels === undefined ? {} : { nodeLabels: input.nodeLabels }),
    ...(input.localAddresses === undefined ? {} : { localAddresses: input.localAddresses }),
  });
  problems.push(...inv.problems);
  problems.push(...lintPolicies(valid, inv.inventory, input.config));
  const model = buildHostModel(valid, inv.inventory, input.config, input.config.mode);
  return {
    config: input.config,
    nodeName: input.nodeName,
    inventory: inv.inventory,
    policies: input.load.policies,
    valid,
    problems: sortProblems(problems),
    model,
  };
}

export interface LoadStateOptions {
  readonly config?: string | undefined;
  readonly sources?: readonly string[] | undefined;
  readonly node?: string | undefined;
  readonly nodeLabels?: Labels | undefined;
  readonly mode?: RunMode | undefined;
  /** Add this machine's interface addresses to the node's own. Default: when the node is this machine. */
  readonly local?: boolean | undefined;
}

/** Reads config and sources, then builds the state. Throws InputError for an unusable config or no sources. */
export async function loadState(opts: LoadStateOptions): Promise<State> {
  const base = await loadConfig(opts.config);
  const config = mergeConfig(base, {
    ...(opts.sources === undefined || opts.sources.length === 0 ? {} : { sources: opts.sources }),
    ...(opts.node === undefined ? {} : { nodeName: opts.node }),
    ...(opts.mode === undefined ? {} : { mode: opts.mode }),
  });
  if (config.sources.length === 0 && config.kubernetes === undefined) {
    throw new InputError('no policy sources: pass --source PATH or set `sources` in the config file', []);
  }
  const machine = hostName();
  const nodeName = config.nodeName ?? machine;
  const local = opts.local ?? nodeName === machine;
  const files = config.sources.length === 0 ? { policies: [], objects: [], problems: [] } : await loadManifestPaths(config.sources, fileReadLimits(config));
  const load = config.kubernetes === undefined ? files : mergeLoads(files, await readKubernetes(config, nodeName, opts.nodeLabels));
  return buildState({
    config,
    load,
    nodeName,
    ...(opts.nodeLabels === undefined ? {} : { nodeLabels: opts.nodeLabels }),
    ...(local ? { localAddresses: localAddresses() } : {}),
  });
}

/** One complete read of the Kubernetes API (the source module, and its client library, loaded only here). */
async function readKubernetes(config: NodewallConfig, nodeName: string, nodeLabels: Labels | undefined): Promise<LoadResult> {
  const k = config.kubernetes;
  if (k === undefined) return { policies: [], objects: [], problems: [] };
  const { readKubernetesOnce } = await import('./inventory/sources/kubernetes.js');
  const snap = await readKubernetesOnce({ ...k, node: { name: nodeName, labels: { ...config.nodeLabels, ...nodeLabels }, labelFilter: config.labelFilter } });
  return { policies: snap.policies, objects: snap.objects, problems: snap.problems };
}

function mergeLoads(a: LoadResult, b: LoadResult): LoadResult {
  return { policies: [...a.policies, ...b.policies], objects: [...a.objects, ...b.objects], problems: [...a.problems, ...b.problems] };
}

export function sortProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort(
    (a, b) =>
      a.pos.file.localeCompare(b.pos.file) ||
      a.pos.line - b.pos.line ||
      a.pos.col - b.pos.col ||
      a.message.localeCompare(b.message),
  );
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}
