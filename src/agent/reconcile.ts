// One read of everything the agent enforces: config, sources, this machine's
// addresses -> the State to enforce, with bad input replaced by its last good
// version (last-good.ts). No kernel access here; agent.ts applies the result.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { InputError, type Problem } from '../api/problem.js';
import type { ConfigOverrides } from '../inventory/config.js';
import { hostName, localAddresses } from '../inventory/host-facts.js';
import type { Labels } from '../inventory/types.js';
import { StateBuilder, type State } from '../pipeline.js';
import type { KubernetesSnapshot } from '../inventory/sources/kubernetes.js';
import { snapshotFiles } from '../inventory/sources/kubernetes-files.js';
import { fileIssueProblem, ManifestFileCache } from '../inventory/load-manifest-files.js';
import { fileReadLimits, readManifestFiles, sha256, type ManifestFileRead } from '../inventory/read-manifest-files.js';
import { mergeWithLastGood, policyKey, type HeldFile, type LastGood, type Loaded, type MergeResult } from './last-good.js';
import { RefusedChanges, type Refusal } from './refused-changes.js';
import { ConfigMemo } from './config-memo.js';
import { MergeMemo } from './merge-memo.js';
import { parseAgentConfig, type AgentConfig } from './read-config.js';

export interface DesiredOptions {
  /** Config file to read (undefined = built-in defaults). */
  readonly configFile: string | undefined;
  readonly overrides: ConfigOverrides;
  readonly nodeLabels?: Labels | undefined;
  /** The Kubernetes source's latest snapshot (undefined: none yet) and which source instance gave it. */
  readonly kubernetes?: { readonly snapshot: KubernetesSnapshot | undefined; readonly generation: number } | undefined;
}

/** What the agent remembers between passes. */
export interface Memory {
  /** The last config that parsed (from this run or the persisted store). */
  lastGoodConfig?: AgentConfig;
  /** Never changed in place (the merge memo shares it between passes): replaced by a changed copy. */
  lastGood: LastGood;
  /** Text store for lastGood (textHash -> file text), persisted with it. */
  readonly texts: Map<string, string>;
  /** Builds each pass's state from the previous model where it can (pipeline.ts); made on first use. */
  stateBuilder?: StateBuilder;
  /** Rolled-back inputs not to apply again until they change (refused-changes.ts); loaded on the first pass. */
  refused?: RefusedChanges;
  /** The last-good bookkeeping of the last pass (merge-memo.ts); made on first use. */
  mergeMemo?: MergeMemo;
  /** The config parsed only when its bytes changed (config-memo.ts); made on first use. */
  configMemo?: ConfigMemo;
  /** Each source file's last load, reused while its text is unchanged; made on first use. */
  fileLoads?: ManifestFileCache;
}

export interface Desired {
  readonly cfg: AgentConfig;
  /** The current config could not be used; `cfg` is the last good one. */
  readonly configError?: InputError;
  readonly sources: ManifestFileRead;
  /** Hash of every input: unchanged = nothing to do. */
  readonly inputHash: string;
  readonly merge: MergeResult<State>;
  readonly state: State;
  readonly nodeName: string;
  /**
   * The Kubernetes source is configured but has handed out no snapshot yet (no
   * cache, first list not complete): nothing may be applied, not even the file
   * sources, so the node never enforces a half-known cluster.
   */
  readonly waitingForKubernetes: boolean;
  /** Refusals forgotten in this pass because their input changed: those changes are tried again. */
  readonly retried: readonly Refusal[];
  /** The refusal store could not be read (moved aside); every refusal is forgotten. */
  readonly refusedLoadError?: string;
}

export class NoConfigError extends Error {
  override readonly name = 'NoConfigError';
}

/**
 * Read config (falling back to the last good one) and sources, and build the
 * state. Throws NoConfigError only when no usable config exists at all.
 */
export async function readDesired(opts: DesiredOptions, memory: Memory): Promise<Desired> {
  let base: AgentConfig;
  let configError: InputError | undefined;
  const configMemo = (memory.configMemo ??= new ConfigMemo());
  try {
    base = await configMemo.read(opts.configFile);
    memory.lastGoodConfig = base;
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    if (memory.lastGoodConfig === undefined) throw new NoConfigError(err.message, { cause: err });
    base = memory.lastGoodConfig;
    configError = err;
  }
  const cfg = configMemo.withOverrides(base, opts.overrides);
  const config = cfg.config;
  const sources = await readManifestFiles(config.sources, fileReadLimits(config));
  const machine = hostName();
  const nodeName = config.nodeName ?? machine;
  const local = nodeName === machine ? localAddresses() : undefined;
  const snap = config.kubernetes === undefined ? undefined : opts.kubernetes?.snapshot;
  const kubeFiles = snap === undefined ? [] : snapshotFiles(snap);

  const inputHash = sha256(JSON.stringify({
    config: cfg.hash,
    // The fallback config hashes the same: the current error must count as a change.
    configError: configError === undefined ? null : [configError.message, configError.problems.map((p) => [p.pos.line, p.pos.col, p.message])],
    overrides: opts.overrides,
    nodeLabels: opts.nodeLabels ?? null,
    files: sources.files.map((f) => [f.file, f.hash]),
    issues: sources.issues.map((e) => [e.file, e.kind, e.code ?? null]),
    local: local ?? null,
    kubernetes: snap === undefined ? null : [opts.kubernetes?.generation ?? 0, snap.origin, snap.revision],
  }));

  for (const f of sources.files) memory.texts.set(f.hash, f.text);
  for (const f of kubeFiles) if (f.text !== undefined) memory.texts.set(f.textHash, f.text);
  const files = [];
  const held: HeldFile[] = [];
  for (const f of sources.files) {
    // Yield between files (and documents, in loadManifestFile) so timers (drift repair) keep running.
    await yieldToLoop();
    const { load, empty } = await (memory.fileLoads ??= new ManifestFileCache()).load(f);
    // Empty now (truncated?): the policies it held keep their last good versions until the file is deleted.
    if (empty) held.push({ file: f.file, reason: 'empty' });
    files.push({ file: f.file, textHash: f.hash, load });
  }
  memory.fileLoads?.retainOnly(sources.files.map((f) => f.file));
  for (const f of kubeFiles) files.push({ file: f.file, textHash: f.textHash, load: f.load });
  for (const e of sources.issues) if (e.holdsLastGood) held.push({ file: e.file, reason: e.kind === 'unsettled' ? 'unsettled' : 'unreadable' });
  const fileProblems = sources.issues.map(fileIssueProblem);
  let refusedLoadError: string | undefined;
  if (memory.refused === undefined) {
    const r = await RefusedChanges.load(config.stateDir);
    memory.refused = r.refused;
    refusedLoadError = r.error?.message;
  }
  const refused = memory.refused;
  // A refused policy that changed since (or left the input) is tried again.
  let retried: Refusal[] = [];
  if (refused.size > 0) {
    const versions = new Map<string, string>();
    for (const f of files) for (const doc of f.load.policies) versions.set(policyKey(doc), doc.hash);
    retried = refused.forgetChanged(versions, inputHash);
  }
  await yieldToLoop();
  const builder = (memory.stateBuilder ??= new StateBuilder());
  const merge = mergeWithLastGood(files, held, memory.lastGood, (load) =>
    builder.build({
      config,
      load: withProblems(load, fileProblems),
      nodeName,
      ...(opts.nodeLabels === undefined ? {} : { nodeLabels: opts.nodeLabels }),
      ...(local === undefined ? {} : { localAddresses: local }),
    }),
    refused.size === 0 ? undefined : (key, doc) => refused.isRefused(key, doc.hash),
    (memory.mergeMemo ??= new MergeMemo()),
  );
  const waitingForKubernetes = config.kubernetes !== undefined && snap === undefined;
  return {
    cfg, ...(configError === undefined ? {} : { configError }), sources, inputHash, merge, state: merge.state, nodeName, waitingForKubernetes,
    retried, ...(refusedLoadError === undefined ? {} : { refusedLoadError }),
  };
}

/**
 * `load` with more problems. Its objects through a getter, not a spread: the Kubernetes source makes
 * its 100k-entry list only when read, and a pod event the object feed explains never reads it.
 */
function withProblems(load: Loaded, more: readonly Problem[]): Loaded {
  return {
    policies: load.policies,
    get objects() {
      return load.objects;
    },
    problems: [...load.problems, ...more],
    ...(load.objectFeed === undefined ? {} : { objectFeed: load.objectFeed }),
  };
}

/** Parse a persisted config text (the store keeps the text, not the object). */
export function configFromStore(stored: { file: string; text: string }): AgentConfig | undefined {
  try {
    return { ...parseAgentConfig(stored.text, stored.file), file: stored.file, text: stored.text, hash: sha256(stored.text) };
  } catch {
    return undefined;
  }
}

/** Policies (not entries) that have at least one entry per direction, for status and logs. */
export function policyCounts(state: State): { selected: number; ingress: number; egress: number } {
  // Entries are immutable and kept by an element-only update: counted once per entry list, not twice per pass.
  const count = (d: 'ingress' | 'egress'): number => {
    const entries = state.model[d].entries;
    let n = policiesIn.get(entries);
    if (n === undefined) {
      n = new Set(entries.map((e) => e.policy)).size;
      policiesIn.set(entries, n);
    }
    return n;
  };
  return { selected: state.model.selectedPolicies.length, ingress: count('ingress'), egress: count('egress') };
}

const policiesIn = new WeakMap<readonly { readonly policy: string }[], number>();
