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
import { buildInventory, objectChanges, updateChangedObjects, type ObjectIndex } from './inventory/build-inventory.js';
import { loadConfig, mergeConfig } from './inventory/config.js';
import { hostName, localAddresses } from './inventory/host-facts.js';
import type { Inventory, Labels, NodewallConfig, RunMode } from './inventory/types.js';
import { buildHostModel } from './policy/build-model.js';
import { CoverSetError } from './policy/cover-set.js';
import { IncrementalModel, IncrementalModelError, type ModelEvent, type ModelSetDelta } from './policy/incremental-model.js';
import { inventoryEvents, policyEvents, sameNode } from './policy/inventory-events.js';
import { lintPolicies } from './policy/lint.js';
import { seedPoolIndex } from './policy/pool-index.js';
import type { HostModel } from './policy/model.js';
import { attachStaged, partitionStaged, stagedView } from './policy/staged.js';
import type { ObjectChanges, ObjectFeed } from './inventory/object-feed.js';
import { jsonOnce } from './policy/json-once.js';

export interface StateInput {
  readonly config: NodewallConfig;
  /** `objectFeed`: what changed in `objects` since earlier lists of the same source (StateBuilder uses it). */
  readonly load: LoadResult & { readonly objectFeed?: ObjectFeed };
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
  const build = (valid: readonly PolicyDocument[], inventory: Inventory) => buildHostModel(valid, inventory, input.config, input.config.mode);
  return assembleState(input, inventoryOf, build, validatePolicy, build);
}

function inventoryOf(input: StateInput): InventoryBuild {
  return buildInventory(input.load.objects, input.config, {
    nodeName: input.nodeName,
    ...(input.nodeLabels === undefined ? {} : { nodeLabels: input.nodeLabels }),
    ...(input.localAddresses === undefined ? {} : { localAddresses: input.localAddresses }),
  });
}

type InventoryBuild = { readonly inventory: Inventory; readonly problems: readonly Problem[] };

/** Validation, inventory and lint around an inventory made by `inventory` and a model made by `model`. */
function assembleState(
  input: StateInput,
  inventory: (input: StateInput) => InventoryBuild,
  model: (valid: readonly PolicyDocument[], inventory: Inventory) => HostModel,
  validate: (doc: PolicyDocument, config: NodewallConfig) => readonly Problem[],
  /** The model with the staged policies (every valid policy), called only when some are staged. */
  stagedModel: (valid: readonly PolicyDocument[], inventory: Inventory) => HostModel,
): State {
  const problems: Problem[] = [...input.load.problems];
  const seen = new Map<string, PolicyDocument>();
  const valid: PolicyDocument[] = [];
  for (const doc of input.load.policies) {
    const found = validate(doc, input.config);
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
  const inv = inventory(input);
  for (const p of inv.problems) problems.push(p);
  // Staged policies (policy/staged.ts) stay out of the enforced model; the model with them is its staged part.
  const { enforced, staged } = partitionStaged(valid, input.config);
  let built = model(staged.size === 0 ? valid : enforced, inv.inventory);
  if (staged.size > 0) built = attachStaged(built, stagedModel(valid, inv.inventory), staged);
  // Lint what the kernel enforces; with staged policies, also what enforcing them would give (new findings only).
  const lint = lintPolicies(staged.size === 0 ? valid : enforced, inv.inventory, input.config, built);
  problems.push(...lint);
  const view = stagedView(built);
  if (view !== undefined) {
    const key = (p: Problem) => JSON.stringify([p.pos.file, p.pos.line, p.pos.col, p.field, p.code, p.message]);
    const seen = new Set(lint.map(key));
    for (const p of lintPolicies(valid, inv.inventory, input.config, view)) if (!seen.has(key(p))) problems.push(p);
  }
  return {
    config: input.config,
    nodeName: input.nodeName,
    inventory: inv.inventory,
    policies: input.load.policies,
    valid,
    problems: sortProblems(problems),
    model: built,
  };
}

/**
 * buildState with memory (the agent keeps one). The model of the previous build is kept as an
 * IncrementalModel and taken to the new state by the events between the two inventories and policy
 * lists instead of being rebuilt. When only Pods, CiliumEndpoints or other nodes' labels changed
 * (found by object identity: the Kubernetes source hands out the same objects for what did not
 * change), the inventory is updated for those objects alone too (build-inventory.ts
 * updateChangedObjects), and so is it for a change of this node's labels alone. A different config,
 * node name, command-line labels or local addresses, or any other change to this node itself, builds
 * anew, as does the first call. The result
 * always equals buildState(input) (test/pipeline.test.ts).
 */
export class StateBuilder {
  #prev:
    | {
        readonly configKey: string;
        readonly inputKey: string;
        readonly inventory: { readonly inventory: Inventory; readonly index: ObjectIndex };
        readonly valid: readonly PolicyDocument[];
        readonly model: IncrementalModel;
        /** Where the objects of that build stand in their source's history, when it told; `size`: how many there were. */
        readonly feed: { readonly lineage: object; readonly revision: number; readonly size: number } | undefined;
      }
    | undefined;
  /** How the changed objects of the last build were found: from the source's feed, or by comparing the lists. */
  lastObjectChanges: 'feed' | 'walk' | undefined;
  /** How the last model was made, for logs and tests. */
  lastModel: 'full' | 'incremental' | undefined;
  /** How the last inventory was made: in full, or from the objects that changed. */
  lastInventory: 'full' | 'objects' | undefined;
  /** Inventories and models built from scratch so far (the agent collects garbage after one: heap-compaction.ts). */
  fullBuilds = 0;

  build(input: StateInput): State {
    const configKey = jsonOnce(input.config);
    const inputKey = JSON.stringify([input.nodeName, input.nodeLabels ?? null, input.localAddresses ?? null]);
    const prev = this.#prev !== undefined && this.#prev.configKey === configKey && this.#prev.inputKey === inputKey ? this.#prev : undefined;
    let built: { inventory: Inventory; problems: Problem[]; index: ObjectIndex } | undefined;
    let objectEvents: ModelEvent[] | undefined;
    /** The inventory events of this build (undefined: none could be derived, build anew). */
    let stagedEvents: ModelEvent[] | undefined;
    const prevStaged = prev === undefined ? undefined : this.#prevStaged;
    this.#prevStaged = undefined;
    const inFeed = input.load.objectFeed;
    const feed = inFeed === undefined ? undefined : { lineage: inFeed.lineage, revision: inFeed.revision, size: feedSize(input) };
    this.lastObjectChanges = undefined;
    const inventory = (): InventoryBuild => {
      if (prev !== undefined) {
        let change: ObjectChanges | undefined = fedChanges(prev, input);
        this.lastObjectChanges = change === undefined ? 'walk' : 'feed';
        change ??= objectChanges(prev.inventory.index.source.objects, input.load.objects, objectChangeLimit);
        // input.load, not its list: a list the source makes only when read stays unmade on the feed's path.
        const update = change === undefined ? undefined : updateChangedObjects(prev.inventory, input.load, change);
        if (update !== undefined) {
          built = update;
          objectEvents = update.nodes.map((node): ModelEvent => ({ kind: 'node', node }));
          // This node relabelled: the model reselects its policies (first: pods and nodes do not depend on it).
          if (update.self !== undefined && !sameNode(update.self, prev.inventory.inventory.self)) objectEvents.unshift({ kind: 'self-labels', labels: update.self.labels });
          for (const [key, pod] of update.pods) {
            const slash = key.indexOf('/');
            objectEvents.push(pod === undefined ? { kind: 'pod-deleted', namespace: key.slice(0, slash), name: key.slice(slash + 1) } : { kind: 'pod', pod });
          }
          this.lastInventory = 'objects';
          return update;
        }
      }
      built = buildInventory(input.load.objects, input.config, {
        nodeName: input.nodeName,
        // The load, not its list: the index keeps no copy that the source makes only when read.
        source: input.load,
        ...(input.nodeLabels === undefined ? {} : { nodeLabels: input.nodeLabels }),
        ...(input.localAddresses === undefined ? {} : { localAddresses: input.localAddresses }),
      });
      this.lastInventory = 'full';
      this.fullBuilds++;
      return built;
    };
    const model = (valid: readonly PolicyDocument[], inv: Inventory): HostModel => {
      const index = built?.index;
      if (index === undefined) throw new Error('StateBuilder: the inventory step did not run');
      if (prev !== undefined) {
        const events = objectEvents ?? inventoryEvents(prev.inventory.inventory, inv);
        stagedEvents = events;
        if (events !== undefined) {
          try {
            const before = prev.model.model;
            const update = prev.model.apply([...events, ...policyChanges(prev.valid, valid)]);
            // Set elements alone changed: the renderer may take the element delta from the model (nft/render-delta.ts).
            if (!update.structureChanged && update.model !== before) this.#links.set(update.model, { from: before, deltas: update.setDeltas });
            this.#prev = { configKey, inputKey, inventory: { inventory: inv, index }, valid, model: prev.model, feed };
            this.lastModel = 'incremental';
            this.#incremental.add(update.model);
            // Lint asks the address pools about CIDR peers: the model answers from its live pools, no copy of any.
            const pools = prev.model.poolIndex();
            seedPoolIndex(inv, pools.index, pools.current);
            return update.model;
          } catch (err) {
            if (!(err instanceof IncrementalModelError || err instanceof CoverSetError)) throw err;
            // An inconsistency between events and the kept model: build anew below.
          }
        }
      }
      const fresh = new IncrementalModel(valid, inv, input.config, input.config.mode);
      this.#prev = { configKey, inputKey, inventory: { inventory: inv, index }, valid, model: fresh, feed };
      this.lastModel = 'full';
      this.fullBuilds++;
      const pools = fresh.poolIndex();
      seedPoolIndex(inv, pools.index, pools.current);
      return fresh.model;
    };
    // Policy documents of unchanged CCNPs are the same objects from pass to pass (the Kubernetes source
    // keeps them decoded): their validation is kept for as long as the config is the same.
    if (this.#validatedFor !== configKey) {
      this.#validated = new WeakMap();
      this.#validatedFor = configKey;
    }
    const cache = this.#validated;
    const validate = (doc: PolicyDocument, config: NodewallConfig): readonly Problem[] => {
      let found = cache.get(doc);
      if (found === undefined) {
        found = validatePolicy(doc, config);
        cache.set(doc, found);
      }
      return found;
    };
    // The model with the staged policies: a second incremental model fed the same inventory events.
    const stagedModel = (valid: readonly PolicyDocument[], inv: Inventory): HostModel => {
      if (prevStaged !== undefined && stagedEvents !== undefined) {
        try {
          const update = prevStaged.model.apply([...stagedEvents, ...policyChanges(prevStaged.valid, valid)]);
          this.#prevStaged = { valid, model: prevStaged.model };
          return update.model;
        } catch (err) {
          if (!(err instanceof IncrementalModelError || err instanceof CoverSetError)) throw err;
        }
      }
      const fresh = new IncrementalModel(valid, inv, input.config, input.config.mode);
      this.#prevStaged = { valid, model: fresh };
      return fresh.model;
    };
    try {
      const state = assembleState(input, inventory, model, validate, stagedModel);
      // A staged part wraps the incremental model in a new object: it is still "made incrementally".
      if (state.model.staged !== undefined && this.lastModel === 'incremental') this.#incremental.add(state.model);
      return state;
    } catch (err) {
      // The kept index may have been updated for a build that did not finish: start over next time.
      this.#prev = undefined;
      this.#prevStaged = undefined;
      throw err;
    }
  }

  /** The incremental model with the staged policies, kept in step with #prev (undefined: none staged last time). */
  #prevStaged: { readonly valid: readonly PolicyDocument[]; readonly model: IncrementalModel } | undefined;
  #validated = new WeakMap<PolicyDocument, readonly Problem[]>();
  #validatedFor: string | undefined;
  /** Models this builder handed out from an incremental update (not built from scratch). */
  #incremental = new WeakSet<HostModel>();
  /** Models made from another by set element changes alone, with those changes. */
  #links = new WeakMap<HostModel, { readonly from: HostModel; readonly deltas: readonly ModelSetDelta[] }>();

  /** How `model` was made from another model by set element changes alone (undefined: not so, or not here). */
  readonly modelDeltas = (model: HostModel): { readonly from: HostModel; readonly deltas: readonly ModelSetDelta[] } | undefined => this.#links.get(model);

  /** True when `model` came from an incremental update here (the agent keys such models by identity, agent/model-key.ts). */
  madeIncrementally(model: HostModel): boolean {
    return this.#incremental.has(model);
  }

  /** Forget the previous build (the next one is a full one). */
  reset(): void {
    this.#prev = undefined;
    this.#prevStaged = undefined;
  }
}

/**
 * The objects changed since the previous build, from the source's feed (no walk over the lists), when
 * the previous build's objects were a list of the same source and the feed still knows the way from
 * there. A count that does not add up (the feed and the lists disagree) is not trusted.
 */
function fedChanges(
  prev: { readonly feed: { readonly lineage: object; readonly revision: number; readonly size: number } | undefined },
  input: StateInput,
): ObjectChanges | undefined {
  const feed = input.load.objectFeed;
  if (feed === undefined || prev.feed === undefined || feed.lineage !== prev.feed.lineage) return undefined;
  const change = feed.since(prev.feed.revision);
  if (change === undefined || change.gone.length > objectChangeLimit || change.come.length > objectChangeLimit) return undefined;
  if (prev.feed.size - change.gone.length + change.come.length !== feedSize(input)) return undefined;
  return change;
}

/** How many objects the input's list holds: the feed's count when it gives one (no list made), else the list's length. */
function feedSize(input: StateInput): number {
  return input.load.objectFeed?.size ?? input.load.objects.length;
}


/**
 * policyEvents, without its maps when the valid policies are the very same documents in the same order
 * (every pod event: the sources hand out the same decoded documents for unchanged policies).
 */
function policyChanges(prev: readonly PolicyDocument[], next: readonly PolicyDocument[]): ModelEvent[] {
  if (prev.length === next.length && prev.every((p, i) => p === next[i])) return [];
  return policyEvents(prev, next);
}

/** More changed objects than this in one build: a full inventory build is about as cheap. */
const objectChangeLimit = 5000;

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
      a.message.localeCompare(b.message) ||
      // Ties broken on the remaining fields, so the order never depends on how the list was assembled.
      a.field.localeCompare(b.field) ||
      a.code.localeCompare(b.code) ||
      (a.policy ?? '').localeCompare(b.policy ?? ''),
  );
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}
