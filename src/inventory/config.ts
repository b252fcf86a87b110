// The nodewall config file (/etc/nodewall/nodewall.yaml). Every key is
// optional; an absent key takes the default below.
//
//   nodeName: node-a                 # default: the hostname
//   nodeLabels: {role: edge}         # labels of this node; layered over the Node object's labels
//   clusterName: default             # Cilium cluster-name (io.cilium.k8s.policy.cluster)
//   clusterPodCIDRs: [10.0.0.0/8]    # pod CIDRs of the cluster, besides the nodes' own podCIDRs
//   apiServerAddresses: [192.0.2.50] # kube-apiserver IPs besides the default/kubernetes endpoints
//   policyEnforcement: default       # default | always | never          (Cilium enable-policy)
//   labelFilter: cilium              # cilium | none: Cilium's identity-label filter on node labels
//   policyCIDRMatchMode: ""          # "" | nodes (or [nodes])           (Cilium policy-cidr-match-mode)
//   enableExtendedIPProtocols: false # Cilium enable-extended-ip-protocols
//   enableNodeSelectorLabels: false  # Cilium enable-node-selector-labels (fromNodes/toNodes)
//   enableICMPRules: true            # Cilium enable-icmp-rules
//   allowICMPFragNeeded: true        # Cilium allow-icmp-frag-needed
//   enableNonDefaultDenyPolicies: true # Cilium enable-non-default-deny-policies
//   sources: [policies/]             # manifest files/dirs; relative to this file's directory
//                                    #   plus at most one `- kubernetes: {kubeconfig: PATH}` or
//                                    #   `- kubernetes: {inCluster: true}` (src/inventory/sources/kubernetes-config.ts)
//   mode: dry-run                    # enforce | audit | dry-run (default dry-run: a fresh
//                                    #   install never locks anyone out)
//   nft: {path: /usr/sbin/nft, table: nodewall, timeoutSeconds: 120, maxElementsPerTransaction: 100000}
//                                    # timeoutSeconds: an nft run taking longer is killed (SIGKILL);
//                                    #   the previous ruleset stays in force
//                                    # maxElementsPerTransaction: a cold start with more set elements is
//                                    #   loaded in bounded transactions, hooks last (src/nft/cold-start.ts)
//   nft: {launcher: true}            # agent: run nft through a small launcher process started early
//                                    #   (src/nft/nft-launcher.ts); false: the agent spawns nft itself
//   maxSetElements: 250000           # most nft set elements one rule's CIDR list may make (larger: invalid policy)
//   stateDir: /var/lib/nodewall
//   lockoutGuard: warn               # agent: warn | refuse | off (a change would cut an established session)
//   removeOnStop: false              # agent: delete the table when the agent stops
//   driftCheckSeconds: 5             # agent: kernel table check interval (0 = never)
//   resyncSeconds: 60                # agent: full re-read interval (0 = never)
//   debounceMs: 300                  # quiet time after a file change before it is trusted (agent and CLI)
//   maxFileBytes: 33554432           # per-file size limit of manifest files (32 MiB)
//   logLevel: info                   # agent: debug | info | warn | error
//   metrics: {listen: "127.0.0.1:9964"} # agent: Prometheus /metrics address (host:port, [v6]:port, or off)
//   driftMonitor: true               # agent: follow `nft monitor` and repair drift at once (polling stays)
//   rollout:                         # agent: how a policy change goes live
//     confirm: off                   #   off | manual: a change waits for `nodewall confirm` or is rolled back
//     confirmSeconds: 120            #   manual: the deadline, in seconds (1..86400)
//   stagedPolicies: [new-deny]       # CCNPs evaluated and reported ("would deny/allow (staged: ...)"), never enforced
//   dropRecords: {size: 65536, timeoutSeconds: 3600}  # enforce mode: kernel records of dropped flows,
//                                    #   entries per map (4 maps: in/out x v4/v6) and seconds after the last drop; or `off`
//   logDrops: false                  # enforce: a rate-limited nft `log` rule before each drop, prefix naming the rule
//   failsafe: {ingress: [tcp/22], egress: ["udp/53 to 198.51.100.53"]}
//                                    # accepted before any policy, every mode (src/policy/failsafe.ts); default none
//   rollout: {probes: ["192.0.2.10:6443", kube-apiserver], probeSeconds: 10}
//                                    # agent: health probes around tightening changes (src/agent/rollout-probes.ts)
//
// Unknown keys and bad values are errors (InputError) naming file:line:col.

import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml';
import { InputError, type Problem } from '../api/problem.js';
import { describeValue } from '../api/decode-policy.js';
import { childPath } from '../api/field-path.js';
import { dns1123SubdomainProblems, invalidValue, labelKeyProblems, labelValueProblems } from '../api/k8s-names.js';
import { shown } from '../api/printable.js';
import { duplicateKeyAt } from '../api/yaml-duplicates.js';
import type { SourcePos } from '../api/types.js';
import { CidrError, canonicalAddress, canonicalPrefix } from '../policy/cidr.js';
import { readBounded, type BoundedReadError } from './read-bounded.js';
import { FailsafeSyntaxError, maxFailsafeEntries, parseFailsafeEntry, type FailsafeEntry, type Failsafes } from '../policy/failsafe.js';
import { ProbeSyntaxError, maxProbes, parseProbeTarget, type RolloutSettings } from '../agent/rollout-config.js';
import { parseKubernetesSourceConfig, type KubernetesSourceConfig } from './sources/kubernetes-config.js';
import { metricsSettings } from './config-metrics.js';
import { defaultDropRecords, defaultEngineConfig, type DropRecordSettings, type NodewallConfig } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/nodewall/nodewall.yaml';

export const defaultConfig: NodewallConfig = {
  ...defaultEngineConfig,
  nodeLabels: {},
  clusterPodCIDRs: [],
  apiServerAddresses: [],
  sources: [],
  mode: 'dry-run',
  nft: { path: '/usr/sbin/nft', table: 'nodewall', timeoutSeconds: 120 },
  stateDir: '/var/lib/nodewall',
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What one key handler gets: the value node, its position and a way to report. */
interface FieldContext {
  readonly node: YamlNode | null;
  readonly key: string;
  readonly at: (n: YamlNode | null | undefined) => SourcePos;
  readonly fail: (n: YamlNode | null | undefined, field: string, message: string) => undefined;
  /** Like fail, `offset` characters into a one-line string value (failsafe and probe entries). */
  readonly failInside: (n: YamlNode, offset: number, field: string, message: string) => undefined;
  readonly file: string;
}

function scalarString(ctx: FieldContext, n: YamlNode | null, field: string): string | undefined {
  if (!isScalar(n) || typeof n.value !== 'string') return ctx.fail(n, field, `must be a string, got ${describeNode(n)}`);
  return n.value;
}

function describeNode(n: YamlNode | null): string {
  if (n === null) return 'nothing';
  if (isMap(n)) return 'a map';
  if (isSeq(n)) return 'a list';
  return isScalar(n) ? describeValue(n.value) : 'an alias';
}

/** A file path: NUL can never be part of one (the kernel would cut the path there). */
function noNul(ctx: FieldContext, n: YamlNode | null, field: string, s: string): string | undefined {
  return s.includes('\0') ? ctx.fail(n, field, `must not contain a NUL character (U+0000), got ${shown(s)}: no file path can`) : s;
}

/** Config nodeName: the name of a Node object, so a DNS-1123 subdomain (what the kubelet registers). */
function nodeName(ctx: FieldContext): string | undefined {
  const s = nonEmptyString(ctx);
  if (s === undefined) return undefined;
  const problems = dns1123SubdomainProblems(s);
  return problems.length === 0 ? s : ctx.fail(ctx.node, ctx.key, `${invalidValue(s, problems)} (the name of this node's Node object)`);
}

/** clusterName becomes the value of the label io.cilium.k8s.policy.cluster, so it must be a label value. */
function clusterName(ctx: FieldContext): string | undefined {
  const s = nonEmptyString(ctx);
  if (s === undefined) return undefined;
  const problems = labelValueProblems(s);
  return problems.length === 0 ? s : ctx.fail(ctx.node, ctx.key, `${invalidValue(s, problems)} (it is the value of the label io.cilium.k8s.policy.cluster)`);
}

function nonEmptyString(ctx: FieldContext): string | undefined {
  const s = scalarString(ctx, ctx.node, ctx.key);
  if (s === '') return ctx.fail(ctx.node, ctx.key, 'must not be empty');
  return s;
}

function bool(ctx: FieldContext): boolean | undefined {
  const n = ctx.node;
  if (!isScalar(n) || typeof n.value !== 'boolean') return ctx.fail(n, ctx.key, 'must be true or false');
  return n.value;
}

function numberIn(min: number, max: number, whole = false) {
  return (ctx: FieldContext): number | undefined => {
    const n = ctx.node;
    if (!isScalar(n) || typeof n.value !== 'number' || !Number.isFinite(n.value) || n.value < min || n.value > max
      || (whole && !Number.isInteger(n.value))) {
      return ctx.fail(n, ctx.key, `must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max}`);
    }
    return n.value;
  };
}

/** Counts, bytes and milliseconds: 1.5 of them means a typo. */
const integerIn = (min: number, max: number) => numberIn(min, max, true);

function oneOf<T extends string>(choices: readonly T[]) {
  return (ctx: FieldContext): T | undefined => {
    const n = ctx.node;
    const v = isScalar(n) ? (n.value === null ? '' : n.value) : undefined;
    const found = choices.find((c) => c === v);
    if (found === undefined) {
      return ctx.fail(n, ctx.key, `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`);
    }
    return found;
  };
}

function stringList(ctx: FieldContext, each: (s: string, n: YamlNode, field: string) => string | undefined): string[] | undefined {
  const n = ctx.node;
  if (n === null || (isScalar(n) && n.value === null)) return [];
  if (!isSeq(n)) return ctx.fail(n, ctx.key, 'must be a list');
  const out: string[] = [];
  let ok = true;
  n.items.forEach((item, i) => {
    const field = `${ctx.key}[${i}]`;
    const itemNode = item as YamlNode;
    const s = scalarString(ctx, itemNode, field);
    const v = s === undefined ? undefined : each(s, itemNode, field);
    if (v === undefined) ok = false;
    else out.push(v);
  });
  return ok ? out : undefined;
}

function cidrList(ctx: FieldContext): string[] | undefined {
  return stringList(ctx, (s, n, field) => {
    try {
      return canonicalPrefix(s);
    } catch (err) {
      if (err instanceof CidrError) return ctx.fail(n, field, err.message);
      throw err;
    }
  });
}

function addressList(ctx: FieldContext): string[] | undefined {
  return stringList(ctx, (s, n, field) => {
    try {
      return canonicalAddress(s);
    } catch (err) {
      if (err instanceof CidrError) return ctx.fail(n, field, err.message);
      throw err;
    }
  });
}

function absolutePath(ctx: FieldContext, n: YamlNode | null, field: string): string | undefined {
  const s = scalarString(ctx, n, field);
  if (s === undefined || noNul(ctx, n, field, s) === undefined) return undefined;
  if (!isAbsolute(s)) return ctx.fail(n, field, `must be an absolute path, got ${shown(s)}`);
  return s;
}

function mapEntries(ctx: FieldContext): { key: string; keyNode: YamlNode; value: YamlNode | null }[] | undefined {
  const n = ctx.node;
  if (n === null || (isScalar(n) && n.value === null)) return [];
  if (!isMap(n)) return ctx.fail(n, ctx.key, 'must be a map');
  return entriesOf(ctx, n, ctx.key);
}

function entriesOf(ctx: FieldContext, m: YAMLMap, parent: string): { key: string; keyNode: YamlNode; value: YamlNode | null }[] | undefined {
  const out: { key: string; keyNode: YamlNode; value: YamlNode | null }[] = [];
  let ok = true;
  for (const pair of m.items) {
    const keyNode = pair.key as YamlNode;
    if (!isScalar(keyNode) || (typeof keyNode.value !== 'string' && typeof keyNode.value !== 'number')) {
      ctx.fail(keyNode, parent, 'keys must be strings');
      ok = false;
      continue;
    }
    out.push({ key: String(keyNode.value), keyNode, value: (pair.value as YamlNode | null) ?? null });
  }
  return ok ? out : undefined;
}

function labels(ctx: FieldContext): Record<string, string> | undefined {
  const entries = mapEntries(ctx);
  if (entries === undefined) return undefined;
  const out: [string, string][] = [];
  let ok = true;
  for (const e of entries) {
    const field = childPath(ctx.key, e.key);
    const keyProblems = labelKeyProblems(e.key);
    if (keyProblems.length > 0) {
      ctx.fail(e.keyNode, field, `invalid label key: ${invalidValue(e.key, keyProblems)}`);
      ok = false;
      continue;
    }
    // Unquoted `zone: 1` or `edge: true` are meant as the strings "1" and "true".
    const v = e.value === null ? '' : isScalar(e.value) && e.value.value !== null && typeof e.value.value !== 'object' ? String(e.value.value) : undefined;
    if (v === undefined) {
      ctx.fail(e.value ?? e.keyNode, field, `must be a label value (a string), got ${describeNode(e.value)}`);
      ok = false;
      continue;
    }
    const valueProblems = labelValueProblems(v);
    if (valueProblems.length > 0) {
      ctx.fail(e.value ?? e.keyNode, field, `invalid label value: ${invalidValue(v, valueProblems)}`);
      ok = false;
      continue;
    }
    out.push([e.key, v]);
  }
  // fromEntries defines own properties: a label named `constructor` is just a label.
  return ok ? Object.fromEntries(out) : undefined;
}

const nftTable = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

function nftSettings(ctx: FieldContext): NodewallConfig['nft'] | undefined {
  const entries = mapEntries(ctx);
  if (entries === undefined) return undefined;
  const out = { ...defaultConfig.nft };
  let ok = true;
  for (const e of entries) {
    const field = childPath('nft', e.key);
    if (e.key === 'path') {
      const p = absolutePath(ctx, e.value, field);
      if (p === undefined) ok = false;
      else out.path = p;
    } else if (e.key === 'table') {
      const t = scalarString(ctx, e.value, field);
      if (t !== undefined && !nftTable.test(t)) ctx.fail(e.value, field, `"${t}" is not a valid nft table name (letter, then letters, digits, "_", "-")`);
      if (t === undefined || !nftTable.test(t)) ok = false;
      else out.table = t;
    } else if (e.key === 'timeoutSeconds') {
      const n = numberIn(1, 3600)({ ...ctx, node: e.value, key: field });
      if (n === undefined) ok = false;
      else out.timeoutSeconds = n;
    } else if (e.key === 'maxElementsPerTransaction') {
      const n = integerIn(1000, 10_000_000)({ ...ctx, node: e.value, key: field });
      if (n === undefined) ok = false;
      else out.maxElementsPerTransaction = n;
    } else if (e.key === 'launcher') {
      // nft.launcher (src/nft/nft-launcher.ts): absent = true.
      const v = bool({ ...ctx, node: e.value, key: field });
      if (v === undefined) ok = false;
      else out.launcher = v;
    } else {
      ctx.fail(e.keyNode, field, 'unknown key (known: path, table, timeoutSeconds, maxElementsPerTransaction, launcher)');
      ok = false;
    }
  }
  return ok ? out : undefined;
}

// `rollout`: one block for every rollout-safety key; each key has its own handler here.
const rolloutKeys: ReadonlyMap<string, (ctx: FieldContext) => unknown> = new Map<string, (ctx: FieldContext) => unknown>([
  // `off` is a string in YAML 1.2; a YAML 1.1 habit (`confirm: false`) means the same.
  ['confirm', (ctx) => (isScalar(ctx.node) && ctx.node.value === false ? 'off' : oneOf(['off', 'manual'] as const)(ctx))],
  ['confirmSeconds', integerIn(1, 86_400)],
  ['probes', probeList],
  ['probeSeconds', integerIn(1, 600)],
]);

function rolloutSettings(ctx: FieldContext): RolloutSettings | undefined {
  const entries = mapEntries(ctx);
  if (entries === undefined) return undefined;
  const out: Record<string, unknown> = {};
  let ok = true;
  for (const e of entries) {
    const field = childPath('rollout', e.key);
    const handler = rolloutKeys.get(e.key);
    if (handler === undefined) {
      ctx.fail(e.keyNode, field, `unknown key (known: ${[...rolloutKeys.keys()].join(', ')})`);
      ok = false;
      continue;
    }
    const v = handler({ ...ctx, node: e.value, key: field });
    if (v === undefined) ok = false;
    else out[e.key] = v;
  }
  if (!ok) return undefined;
  const r = { probes: [], ...out } as RolloutSettings;
  const kubeAt = kubeApiserverProbeNode.get(r.probes);
  if (kubeAt !== undefined) kubeApiserverProbeAt.set(r, kubeAt);
  return r;
}

// Cilium's flag is a list ("nodes" is its only value): accept `nodes`, `[nodes]`, `""`, `[]`.
function cidrMatchMode(ctx: FieldContext): '' | 'nodes' | undefined {
  const n = ctx.node;
  if (!isSeq(n)) return oneOf(['', 'nodes'] as const)(ctx);
  const items = n.items.map((i) => (isScalar(i) ? i.value : undefined));
  if (items.length === 0) return '';
  if (items.length === 1 && items[0] === 'nodes') return 'nodes';
  return ctx.fail(n, ctx.key, 'must be "", "nodes" or [nodes]');
}

interface SourceList {
  readonly paths: string[];
  readonly kubernetes?: KubernetesSourceConfig;
}

/** `sources`: manifest paths (relative to the config file), and at most one `{kubernetes: ...}` entry. */
function sourceList(ctx: FieldContext): SourceList | undefined {
  const n = ctx.node;
  if (n === null || (isScalar(n) && n.value === null)) return { paths: [] };
  if (!isSeq(n)) return ctx.fail(n, ctx.key, 'must be a list');
  const paths: string[] = [];
  let kubernetes: KubernetesSourceConfig | undefined;
  let ok = true;
  n.items.forEach((item, i) => {
    const itemNode = item as YamlNode;
    const field = `${ctx.key}[${i}]`;
    if (isMap(itemNode)) {
      try {
        const k = parseKubernetesSourceConfig(itemNode.toJSON(), ctx.at(itemNode), field, dirname(ctx.file));
        if (kubernetes !== undefined) ok = ctx.fail(itemNode, field, 'only one kubernetes source is supported') ?? false;
        else kubernetes = k;
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        // Point at the offending value (sources[1].kubernetes.context -> that node), else at the entry.
        for (const p of err.problems) {
          const rel = p.field.startsWith(`${field}.`) ? p.field.slice(field.length + 1).split('.') : [];
          const at = rel.length > 0 ? (itemNode.getIn(rel, true) as YamlNode | undefined) : undefined;
          ctx.fail(at ?? itemNode, p.field, p.message);
        }
        ok = false;
      }
      return;
    }
    const s = scalarString(ctx, itemNode, field);
    if (s === undefined) ok = false;
    else if (s === '') ok = ctx.fail(itemNode, field, 'must not be empty') ?? false;
    else if (noNul(ctx, itemNode, field, s) === undefined) ok = false;
    else paths.push(resolve(dirname(ctx.file), s));
  });
  if (!ok) return undefined;
  return kubernetes === undefined ? { paths } : { paths, kubernetes };
}

// --- staged policies (issue 10): names of CCNPs that are evaluated and reported, never enforced ---
function policyNameList(ctx: FieldContext): string[] | undefined {
  const seen = new Set<string>();
  return stringList(ctx, (s, n, field) => {
    const problems = dns1123SubdomainProblems(s);
    if (problems.length > 0) return ctx.fail(n, field, `not a policy name: ${invalidValue(s, problems)}`);
    if (seen.has(s)) return ctx.fail(n, field, `${shown(s)} is listed twice`);
    seen.add(s);
    return s;
  });
}

// --- dropRecords (issue 11) ---------------------------------------------------------------------------
/** Largest dropRecords.size: 8 kernel sets (records and first-seen, per direction and family) of this many entries stay within a few hundred MB in the worst case. */
export const maxDropRecordsSize = 1 << 20;
/** Longest dropRecords.timeoutSeconds: a week. */
export const maxDropRecordsTimeoutSeconds = 7 * 86_400;

/** `dropRecords: off` or `dropRecords: {size: 65536, timeoutSeconds: 3600}` (either key may be left out). */
function dropRecords(ctx: FieldContext): DropRecordSettings | 'off' | undefined {
  const n = ctx.node;
  if (isScalar(n) && (n.value === 'off' || n.value === false)) return 'off';
  if (!isMap(n)) return ctx.fail(n, ctx.key, 'must be off or a map {size, timeoutSeconds}');
  const entries = entriesOf(ctx, n, ctx.key);
  if (entries === undefined) return undefined;
  const out: Mutable<DropRecordSettings> = { ...defaultDropRecords };
  let ok = true;
  for (const e of entries) {
    const field = childPath(ctx.key, e.key);
    if (e.key === 'size') {
      const v = integerIn(1, maxDropRecordsSize)({ ...ctx, node: e.value, key: field });
      if (v === undefined) ok = false;
      else out.size = v;
    } else if (e.key === 'timeoutSeconds') {
      const v = integerIn(1, maxDropRecordsTimeoutSeconds)({ ...ctx, node: e.value, key: field });
      if (v === undefined) ok = false;
      else out.timeoutSeconds = v;
    } else {
      ctx.fail(e.keyNode, field, 'unknown key (known: size, timeoutSeconds)');
      ok = false;
    }
  }
  return ok ? out : undefined;
}

// --- failsafe (src/policy/failsafe.ts) -------------------------------------------------------------------

function failsafeSettings(ctx: FieldContext): Failsafes | undefined {
  const entries = mapEntries(ctx);
  if (entries === undefined) return undefined;
  const out: { ingress: FailsafeEntry[]; egress: FailsafeEntry[] } = { ingress: [], egress: [] };
  let ok = true;
  for (const e of entries) {
    const field = childPath('failsafe', e.key);
    if (e.key !== 'ingress' && e.key !== 'egress') {
      ok = ctx.fail(e.keyNode, field, 'unknown key (known: ingress, egress)') ?? false;
      continue;
    }
    const direction = e.key;
    const list = stringList({ ...ctx, node: e.value, key: field }, (s, n, itemField) => {
      try {
        out[direction].push(parseFailsafeEntry(s, direction));
        return s;
      } catch (err) {
        if (!(err instanceof FailsafeSyntaxError)) throw err;
        return ctx.failInside(n, err.offset, itemField, `${shown(s)}: ${err.message}`);
      }
    });
    if (list === undefined) ok = false;
    else if (list.length > maxFailsafeEntries) {
      ok = ctx.fail(e.value, field, `at most ${maxFailsafeEntries} entries (got ${list.length}): list management ports and networks, not services`) ?? false;
    }
  }
  if (!ok) return undefined;
  return out.ingress.length === 0 && out.egress.length === 0 ? undefined : out;
}

// --- rollout (agent; probes: src/agent/rollout-probes.ts) --------------------------------------------------

/** Where `kube-apiserver` was listed, so parseConfig can point at it when no kubernetes source exists. */
const kubeApiserverProbeAt = new WeakMap<RolloutSettings, YamlNode>();
const kubeApiserverProbeNode = new WeakMap<object, YamlNode>();

/** rollout.probes: TCP endpoints and `kube-apiserver`, checked before and after a tightening change. */
function probeList(ctx: FieldContext): RolloutSettings['probes'] | undefined {
  const probes: RolloutSettings['probes'][number][] = [];
  const list = stringList(ctx, (s, n, itemField) => {
    try {
      const p = parseProbeTarget(s);
      if (probes.some((q) => q.text === p.text)) return ctx.fail(n, itemField, `${shown(s)} is listed twice`);
      if (p.kind === 'kube-apiserver') kubeApiserverProbeNode.set(probes, n);
      probes.push(p);
      return s;
    } catch (err) {
      if (!(err instanceof ProbeSyntaxError)) throw err;
      return ctx.failInside(n, err.offset, itemField, `${shown(s)}: ${err.message}`);
    }
  });
  if (list === undefined) return undefined;
  if (probes.length > maxProbes) return ctx.fail(ctx.node, ctx.key, `at most ${maxProbes} probes (got ${probes.length}): each is a TCP connect before and after every tightening change`);
  return probes;
}

type Handler = (ctx: FieldContext) => unknown;

const fields: Record<keyof Omit<NodewallConfig, 'file' | 'kubernetes'>, Handler> = {
  nodeName,
  nodeLabels: labels,
  clusterName,
  clusterPodCIDRs: cidrList,
  apiServerAddresses: addressList,
  policyEnforcement: oneOf(['default', 'always', 'never'] as const),
  labelFilter: oneOf(['cilium', 'none'] as const),
  policyCIDRMatchMode: cidrMatchMode,
  enableExtendedIPProtocols: bool,
  enableNodeSelectorLabels: bool,
  enableICMPRules: bool,
  allowICMPFragNeeded: bool,
  enableNonDefaultDenyPolicies: bool,
  sources: sourceList,
  mode: oneOf(['enforce', 'audit', 'dry-run'] as const),
  nft: nftSettings,
  maxSetElements: integerIn(1, 10_000_000),
  stateDir: (ctx) => absolutePath(ctx, ctx.node, ctx.key),
  lockoutGuard: oneOf(['warn', 'refuse', 'off'] as const),
  removeOnStop: bool,
  driftCheckSeconds: numberIn(0, 86_400),
  resyncSeconds: numberIn(0, 86_400),
  debounceMs: integerIn(0, 60_000),
  maxFileBytes: integerIn(1, 1 << 30),
  logLevel: oneOf(['debug', 'info', 'warn', 'error'] as const),
  // Metrics and instant drift repair (issue 11).
  metrics: metricsSettings,
  driftMonitor: bool,
  rollout: rolloutSettings,
  // --- staged policies (issue 10) ---
  stagedPolicies: policyNameList,
  dropRecords,
  logDrops: bool,
  failsafe: failsafeSettings,
};

// Looked up by keys from the file: a Map, so `constructor` or `__proto__` are unknown keys, not Object's members.
const handlers: ReadonlyMap<string, Handler> = new Map(Object.entries(fields));
const knownKeys = [...handlers.keys()];

/**
 * Parses the text of a config file. `file` names it in problems and anchors
 * relative `sources`. Throws InputError listing every problem found.
 */
export function parseConfig(text: string, file: string): NodewallConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  const problems: Problem[] = [];
  const posAt = (offset: number): SourcePos => {
    const lp = lineCounter.linePos(offset);
    return { file, line: lp.line, col: lp.col };
  };
  const at = (n: YamlNode | null | undefined): SourcePos => posAt(n?.range?.[0] ?? 0);
  const fail = (n: YamlNode | null | undefined, field: string, message: string): undefined => {
    problems.push({ severity: 'error', pos: at(n), field, message, code: 'config/bad-value' });
    return undefined;
  };
  const failInside = (n: YamlNode, offset: number, field: string, message: string): undefined => {
    const start = at(n);
    // Plain scalars start at their first character, quoted ones one before it; a folded value keeps the start.
    const lead = isScalar(n) && (n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE') ? 1 : 0;
    const oneLine = isScalar(n) && (n.type === 'PLAIN' || lead === 1) && typeof n.value === 'string' && !n.value.includes('\n');
    problems.push({ severity: 'error', pos: oneLine ? { ...start, col: start.col + lead + offset } : start, field, message, code: 'config/bad-value' });
    return undefined;
  };
  let syntaxError = false;
  for (const err of doc.errors) {
    const dup = err.code === 'DUPLICATE_KEY' ? duplicateKeyAt(doc, err.pos[0]) : undefined;
    if (dup !== undefined) {
      const first = posAt(dup.firstOffset);
      problems.push({
        severity: 'error', pos: posAt(err.pos[0]), field: dup.field, code: 'config/duplicate-key',
        message: `duplicate key ${shown(dup.key)}, also set at line ${first.line}, column ${first.col}: keep only one of them`,
      });
      continue;
    }
    const text = (err.message.split('\n')[0] ?? err.message).replace(/ at line \d+, column \d+:?$/, '');
    problems.push({ severity: 'error', pos: posAt(err.pos[0]), field: '', message: `YAML syntax error: ${text}`, code: 'config/syntax' });
    syntaxError = true;
  }
  // A duplicate key leaves the document whole: go on and report the other problems too.
  if (syntaxError) throw configError(file, problems);

  const out: Mutable<NodewallConfig> = { ...defaultConfig, file };
  const root = doc.contents;
  if (root !== null && !(isScalar(root) && root.value === null)) {
    if (!isMap(root)) {
      fail(root, '', 'the config must be a map of keys');
    } else {
      const base: FieldContext = { node: null, key: '', at, fail, failInside, file };
      for (const e of entriesOf(base, root, '') ?? []) {
        const handler = handlers.get(e.key);
        if (handler === undefined) {
          problems.push({
            severity: 'error',
            pos: at(e.keyNode),
            field: e.key,
            message: `unknown key${suggest(e.key)}`,
            code: 'config/unknown-key',
          });
          continue;
        }
        const value = handler({ ...base, node: e.value, key: e.key });
        if (value === undefined) continue;
        if (e.key === 'sources') {
          const list = value as SourceList;
          out.sources = list.paths;
          if (list.kubernetes !== undefined) out.kubernetes = list.kubernetes;
        } else {
          (out as Record<string, unknown>)[e.key] = value;
        }
      }
    }
  }
  const kubeAt = out.rollout === undefined ? undefined : kubeApiserverProbeAt.get(out.rollout);
  if (kubeAt !== undefined && out.kubernetes === undefined) {
    fail(kubeAt, 'rollout.probes', '"kube-apiserver" probes the API server of the kubernetes source, and `sources` has none: '
      + 'add `- kubernetes: {...}` to sources, or probe the API server as HOST:PORT');
  }
  // logDrops rides on the drop-record settings (the renderer places both next to each drop rule).
  if (out.logDrops === true && out.dropRecords === 'off' && isMap(root)) {
    fail(root.get('logDrops', true) as YamlNode | undefined, 'logDrops', 'needs drop records: remove `dropRecords: off` (or set logDrops: false)');
  }
  if (problems.length > 0) throw configError(file, problems);
  return out;
}

function suggest(key: string): string {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  const near = knownKeys.find((k) => k.toLowerCase() === lower);
  return near === undefined ? ` (known: ${knownKeys.join(', ')})` : ` (did you mean "${near}"?)`;
}

function configError(file: string, problems: readonly Problem[]): InputError {
  return new InputError(`${file}: invalid config (${problems.length} problem${problems.length === 1 ? '' : 's'})`, problems);
}

/**
 * Reads a config file. Without a path, reads DEFAULT_CONFIG_PATH if it
 * exists and otherwise returns the built-in defaults.
 */
export async function loadConfig(path?: string): Promise<NodewallConfig> {
  const file = path ?? DEFAULT_CONFIG_PATH;
  const text = await readConfigText(file, path === undefined);
  return text === undefined ? defaultConfig : parseConfig(text, resolve(file));
}

/** A config file is small: anything bigger is not one. */
export const maxConfigBytes = 1024 * 1024;

/**
 * The text of a config file, read like every input (regular files only, never
 * blocking on a FIFO, bounded). `missingOk`: undefined when it does not exist.
 * Throws InputError (code config/read) naming the file and what to do.
 */
export async function readConfigText(file: string, missingOk = false): Promise<string | undefined> {
  try {
    const { bytes } = await readBounded(file, maxConfigBytes);
    return bytes.toString('utf8');
  } catch (err) {
    const e = err as BoundedReadError;
    if (missingOk && e.kind === 'missing') return undefined;
    const why = e.kind === 'too-large'
      ? `${e.message}: not a nodewall config (the limit is fixed at ${maxConfigBytes} bytes)`
      : e.kind === 'not-regular' ? `${e.message}: point --config at a regular YAML file` : e.message;
    throw new InputError(
      `${file}: cannot read config: ${why}`,
      [{ severity: 'error', pos: { file, line: 1, col: 1 }, field: '', message: `cannot read config: ${why}`, code: 'config/read' }],
      { cause: err },
    );
  }
}

export type ConfigOverrides = { readonly [K in keyof NodewallConfig]?: NodewallConfig[K] | undefined };

/**
 * Applies command-line overrides: a given value replaces the config's, except
 * nodeLabels, which are layered over the config's labels (flag wins per key).
 */
export function mergeConfig(base: NodewallConfig, overrides: ConfigOverrides): NodewallConfig {
  const out: Mutable<NodewallConfig> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    (out as Record<string, unknown>)[k] = k === 'nodeLabels' ? { ...base.nodeLabels, ...(v as Record<string, string>) } : v;
  }
  return out;
}
