// Warnings about valid policies that probably do not do what their author
// meant (code "lint/..."). Each message says why and how to fix it.

import type { Problem } from '../api/problem.js';
import type { Direction, PeerRule, PolicyDocument, Rule, RuleListName } from '../api/types.js';
import type { EngineConfig, Inventory, NodeInfo } from '../inventory/types.js';
import { evaluate } from '../verdict/evaluate.js';
import { buildHostModel, ruleDefaultDeny } from './build-model.js';
import { formatPrefix, parsePrefix, type Prefix } from './cidr.js';
import { droppingPattern } from './label-filter.js';
import { parseSelectorKey, selectorRequirements } from './match-selector.js';
import type { HostModel, IdentitySet } from './model.js';
import { modelAtAddress } from './model-at-address.js';
import { poolIndex, type PoolIndex } from './pool-index.js';
import { peerFieldName, presentPeerKinds } from './resolve-peers.js';
import { isHostRule, nodeSelectorMatches } from './select-nodes.js';
import { lintFailsafeOverrides } from './lint-failsafe.js';
import { jsonOnce } from './json-once.js';

const lists: readonly { list: RuleListName; dir: Direction; action: 'allow' | 'deny' }[] = [
  { list: 'ingress', dir: 'ingress', action: 'allow' },
  { list: 'ingressDeny', dir: 'ingress', action: 'deny' },
  { list: 'egress', dir: 'egress', action: 'allow' },
  { list: 'egressDeny', dir: 'egress', action: 'deny' },
];

function keyPath(base: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

class Linter {
  readonly problems: Problem[] = [];
  readonly doc: PolicyDocument;
  constructor(doc: PolicyDocument) {
    this.doc = doc;
  }
  warn(field: string, code: string, message: string): void {
    this.problems.push({ severity: 'warning', pos: this.doc.locate(field), policy: this.doc.name, field, message, code: `lint/${code}` });
  }
}

// Lint asks for the node list once per policy and rule: one array per node list, not one per call.
const knownNodesCache = new WeakMap<readonly NodeInfo[], { readonly self: NodeInfo; readonly nodes: readonly NodeInfo[] }>();

function knownNodes(inv: Inventory): readonly NodeInfo[] {
  const hit = knownNodesCache.get(inv.remoteNodes);
  if (hit !== undefined && hit.self === inv.self) return hit.nodes;
  const nodes = [inv.self, ...inv.remoteNodes];
  knownNodesCache.set(inv.remoteNodes, { self: inv.self, nodes });
  return nodes;
}

function lintNodeSelector(l: Linter, rule: Rule, cfg: EngineConfig): void {
  const sel = rule.nodeSelector;
  if (sel === undefined) return;
  const base = `${rule.path}.nodeSelector`;
  const fields: string[] = [
    ...Object.keys(sel.matchLabels ?? {}).map((k) => keyPath(`${base}.matchLabels`, k)),
    ...(sel.matchExpressions ?? []).map((_, i) => `${base}.matchExpressions[${i}].key`),
  ];
  selectorRequirements(sel).forEach((r, i) => {
    const k = parseSelectorKey(r.key);
    if (k.source !== 'any' && k.source !== 'k8s') return;
    const pattern = droppingPattern(k.key, cfg.labelFilter);
    if (pattern === undefined) return;
    const positive = r.operator === 'In' || r.operator === 'Exists';
    const effect = positive
      ? 'so this selector matches no node and the rule never applies'
      : `so the requirement is always true (${r.operator} holds for a missing label)`;
    l.warn(
      fields[i] ?? base,
      'filtered-label',
      `node label "${k.key}" is dropped by Cilium's identity-label filter (pattern "${pattern}") and is invisible to nodeSelector, ${effect}; ` +
        'select on a label of your own (e.g. `kubectl label node NAME nodewall.io/role=worker`), a node-role.kubernetes.io/* label, or `nodeSelector: {}`; ' +
        'set labelFilter: none only if your Cilium runs without the default label filter',
    );
  });
}

function lintSelectsNoNode(l: Linter, doc: PolicyDocument, inv: Inventory, cfg: EngineConfig): void {
  const host = doc.rules.filter((r) => isHostRule(doc, r));
  if (host.length === 0) return;
  const nodes = knownNodes(inv);
  const any = host.some((r) => r.nodeSelector !== undefined && nodes.some((n) => nodeSelectorMatches(r.nodeSelector!, n.labels, cfg.labelFilter)));
  if (any) return;
  const field = host.length === 1 ? `${host[0]!.path}.nodeSelector` : '';
  l.warn(
    field,
    'selects-no-node',
    `no nodeSelector of this policy selects any known node (${nodes.map((n) => n.name).join(', ')}), so it has no effect here; ` +
      'check the node labels (`kubectl get node --show-labels`) and remember that kubernetes.io/* and topology.kubernetes.io/* labels are filtered out',
  );
}

/** A peer field written with no value (`toEndpoints:`) decodes as absent; find such keys by their source position. */
/** Peer fields the decoder saw written as null (they count as absent, so the entry has no peer). */
function nullPeerFields(pr: PeerRule): readonly string[] {
  return pr.nullPeers ?? [];
}

function lintEntries(l: Linter, rule: Rule, cfg: EngineConfig): void {
  for (const { list, dir } of lists) {
    (rule[list] ?? []).forEach((pr, i) => {
      const elem = `${rule.path}.${list}[${i}]`;
      const present = presentPeerKinds(pr);
      const empty = present.filter((k) => (pr[k] ?? []).length === 0);
      for (const k of empty) {
        const name = peerFieldName(dir, k);
        l.warn(
          `${elem}.${name}`,
          'empty-peer-list',
          `${name}: [] is an explicitly empty peer list, which makes this whole ${list} entry select nothing (even with other peers or ports); ` +
            'remove the field to mean "any peer" or list the peers',
        );
      }
      (pr.nodes ?? []).forEach((sel, j) => {
        const field = `${elem}.${peerFieldName(dir, 'nodes')}[${j}]`;
        for (const r of selectorRequirements(sel)) {
          const k = parseSelectorKey(r.key);
          const pattern = droppingPattern(k.key, cfg.labelFilter);
          if (pattern === undefined || k.source === 'reserved') continue;
          l.warn(
            field,
            'filtered-label',
            `node label "${k.key}" is dropped by the identity-label filter (pattern "${pattern}"), so nodewall never sees it on remote nodes ` +
              `and this ${peerFieldName(dir, 'nodes')} selector ${r.operator === 'NotIn' || r.operator === 'DoesNotExist' ? 'treats it as absent' : 'selects no node'}; select on a label of your own`,
          );
        }
      });
      const hasL4 = (pr.toPorts ?? []).length > 0 || (pr.icmps ?? []).length > 0;
      if (present.length === 0 && !hasL4) {
        l.warn(
          elem,
          'no-peer-no-port',
          `this ${list} entry has no peer and no port: it matches nothing and only switches ${dir} to default deny, ` +
            `so every ${dir} packet not allowed by another entry is dropped; if you meant "allow all", write ${dir === 'ingress' ? 'fromEntities' : 'toEntities'}: [all]`,
        );
      }
      if (present.length === 0 && hasL4) {
        const verb = list.endsWith('Deny') ? 'denies' : 'allows';
        for (const name of nullPeerFields(pr)) {
          l.warn(
            `${elem}.${name.split('/')[0] ?? name}`,
            'null-peer',
            `${name} is written without a value (YAML null), which counts as absent: this entry ${verb} its ports ${dir === 'ingress' ? 'from' : 'to'} ANY peer, ` +
              'not from no peer and not only from pods; list the peers, or delete the key if "any peer" is meant',
          );
        }
      }
    });
  }
}

function lintRedundantAllows(l: Linter, rule: Rule, all: readonly PolicyDocument[], inv: Inventory, cfg: EngineConfig): void {
  if (!cfg.enableNonDefaultDenyPolicies || cfg.policyEnforcement !== 'default' || rule.nodeSelector === undefined) return;
  for (const dir of ['ingress', 'egress'] as const) {
    if (rule.enableDefaultDeny?.[dir] !== false || (rule[dir] ?? []).length === 0) continue;
    const nodes = knownNodes(inv).filter((n) => nodeSelectorMatches(rule.nodeSelector!, n.labels, cfg.labelFilter));
    const ddElsewhere = nodes.some((n) =>
      all.some((d) =>
        d.rules.some(
          (r) =>
            r !== rule &&
            isHostRule(d, r) &&
            nodeSelectorMatches(r.nodeSelector!, n.labels, cfg.labelFilter) &&
            ruleDefaultDeny(r, dir, cfg) &&
            ((r[dir] ?? []).length > 0 || (r[dir === 'ingress' ? 'ingressDeny' : 'egressDeny'] ?? []).length > 0),
        ),
      ),
    );
    if (ddElsewhere) continue;
    l.warn(
      `${rule.path}.${dir}`,
      'redundant-allow',
      `enableDefaultDeny.${dir} is false and no other rule selecting the same nodes turns ${dir} default deny on, so everything not denied is ` +
        `already allowed and these ${dir} allow entries change nothing; remove them, or drop enableDefaultDeny.${dir}: false to make them the only allowed traffic`,
    );
  }
}

/** A CIDR peer of a rule, parsed once (rules are immutable; lint re-reads them on every pod event). */
interface CidrItem {
  readonly dir: Direction;
  readonly field: string;
  readonly p: Prefix;
}

const cidrItemsCache = new WeakMap<Rule, readonly CidrItem[]>();

function cidrItems(rule: Rule): readonly CidrItem[] {
  let out = cidrItemsCache.get(rule);
  if (out !== undefined) return out;
  const items: CidrItem[] = [];
  for (const { list, dir } of lists) {
    (rule[list] ?? []).forEach((pr, i) => {
      const elem = `${rule.path}.${list}[${i}]`;
      const texts: { field: string; text: string }[] = [
        ...(pr.cidr ?? []).map((text, j) => ({ field: `${elem}.${peerFieldName(dir, 'cidr')}[${j}]`, text })),
        ...(pr.cidrSet ?? []).flatMap((r, j) => (r.cidr === undefined ? [] : [{ field: `${elem}.${peerFieldName(dir, 'cidrSet')}[${j}].cidr`, text: r.cidr }])),
      ];
      for (const { field, text } of texts) {
        try {
          items.push({ dir, field, p: parsePrefix(text) });
        } catch {
          // invalid: validation reports it
        }
      }
    });
  }
  out = items;
  cidrItemsCache.set(rule, out);
  return out;
}

function lintCidrs(l: Linter, rule: Rule, pools: PoolIndex, cfg: EngineConfig): void {
  for (const { dir, field, p } of cidrItems(rule)) {
    const what: string[] = [];
    if (cfg.policyCIDRMatchMode !== 'nodes' && (pools.overlaps('host', p) || pools.overlaps('remoteNodes', p))) what.push('node addresses');
    if (pools.overlaps('pods', p)) what.push('pod addresses');
    if (pools.overlaps('health', p) || pools.overlaps('ingress', p)) what.push('cilium-health/ingress addresses');
    if (what.length === 0) continue;
    const fix: string[] = [];
    if (what.includes('node addresses')) fix.push('use the remote-node/host entities for nodes, or set policyCIDRMatchMode: nodes');
    if (what.includes('pod addresses')) fix.push(`use ${peerFieldName(dir, 'endpoints')} for pods`);
    if (what.includes('cilium-health/ingress addresses')) fix.push('use the health/ingress entities');
    const zero = p.len === 0 ? ` (${formatPrefix(p)} is the ${p.family === 'ipv4' ? 'IPv4' : 'IPv6'} world, which never includes cluster addresses)` : '';
    l.warn(
      field,
      'cidr-covers-cluster',
      `${formatPrefix(p)} contains ${what.join(' and ')}, which CIDR rules never match${zero}; ${fix.join('; ')}`,
    );
  }
}

/** What the verdicts of flows to one address depend on, for a model cut down to it: see apiServerDenied. */
interface AddressVerdict {
  readonly parts: readonly unknown[];
  readonly names: readonly string[];
  /** The cut-down sets (model-at-address.ts keeps one object per original set and address), in `names` order. */
  readonly sets: readonly IdentitySet[];
  readonly exclusions: readonly (readonly string[])[];
  readonly denied: boolean;
}

const addressVerdicts = new Map<string, AddressVerdict>();

/** Same name, exclusion and membership of the address (a cut-down set holds the address or nothing). */
function sameCutSet(a: IdentitySet, b: IdentitySet): boolean {
  return a === b || (a.name === b.name && a.exclude === b.exclude && a.v4.length === b.v4.length && a.v6.length === b.v6.length);
}

function sameVerdictInputs(hit: AddressVerdict, parts: readonly unknown[], at: HostModel): boolean {
  if (hit.parts.length !== parts.length || !hit.parts.every((p, i) => p === parts[i])) return false;
  const ex = [at.exclusions.cluster.v4, at.exclusions.cluster.v6, at.exclusions.cluster_non_node.v4, at.exclusions.cluster_non_node.v6];
  if (!ex.every((l, i) => l.length === hit.exclusions[i]!.length)) return false;
  let i = 0;
  for (const name in at.sets) {
    if (!Object.hasOwn(at.sets, name)) continue;
    if (hit.names[i] !== name || !sameCutSet(hit.sets[i]!, at.sets[name]!)) return false;
    i++;
  }
  return i === hit.names.length;
}

/**
 * Are 6443/TCP and 443/TCP to `addr` denied on egress? The model cut down to this address decides its
 * flows exactly as the whole model (model-at-address.ts); that cut-down model is new on every pod event,
 * and evaluating it compiles it (ms at 1k policies). Its verdicts depend on everything but the sets
 * (compared by identity: an incremental update of set elements keeps them), on which sets and exclusions
 * hold the address, and on each set's name and exclusion (compared by value): unchanged, the verdict of
 * the last call stands.
 */
function apiServerDenied(model: HostModel, addr: string): boolean {
  const at = modelAtAddress(model, addr);
  const parts: unknown[] = [];
  for (const [k, v] of Object.entries(at)) if (k !== 'sets' && k !== 'exclusions') parts.push(k, v);
  const hit = addressVerdicts.get(addr);
  if (hit !== undefined && sameVerdictInputs(hit, parts, at)) return hit.denied;
  const denied = [6443, 443].every((port) => evaluate(at, { direction: 'egress', peer: addr, proto: 'tcp', port }).verdict === 'deny');
  // A handful of API server addresses at most: the map stays small; forget it if it grows (addresses changed).
  if (addressVerdicts.size > 64) addressVerdicts.clear();
  const names = Object.keys(at.sets);
  addressVerdicts.set(addr, {
    parts, names, sets: names.map((n) => at.sets[n]!), denied,
    exclusions: [at.exclusions.cluster.v4, at.exclusions.cluster.v6, at.exclusions.cluster_non_node.v4, at.exclusions.cluster_non_node.v6],
  });
  return denied;
}

function lintLockout(inv: Inventory, model: HostModel, byName: ReadonlyMap<string, PolicyDocument>): Problem[] {
  const out: Problem[] = [];
  const at = (dir: Direction): { doc: PolicyDocument; field: string } | undefined => {
    const entries = (dir === 'ingress' ? model.ingress : model.egress).entries;
    const e = entries.find((x) => x.action === 'allow') ?? entries[0];
    const doc = e === undefined ? byName.get(model.selectedPolicies[0] ?? '') : byName.get(e.policy);
    if (doc === undefined) return undefined;
    return { doc, field: e !== undefined && e.policy === doc.name ? e.rule.replace(/\[\d+\]$/, '') : '' };
  };
  const warn = (dir: Direction, code: string, message: string): void => {
    const where = at(dir);
    if (where === undefined) return;
    out.push({ severity: 'warning', pos: where.doc.locate(where.field), policy: where.doc.name, field: where.field, message, code: `lint/${code}` });
  };
  const ing = model.ingress;
  if (ing.enforced && ing.defaultDeny) {
    const sshAllowed = ing.entries.some(
      (e) =>
        e.action === 'allow' &&
        e.l4.some((m) => m.kind === 'all' || (m.kind === 'ports' && m.proto === 'tcp' && m.ranges.some(([lo, hi]) => lo <= 22 && hi >= 22))) &&
        (e.peer === null || (model.sets[e.peer]?.v4.length ?? 0) + (model.sets[e.peer]?.v6.length ?? 0) > 0),
    );
    // A failsafe admitting 22/TCP from anywhere keeps SSH open whatever the policies say.
    const sshFailsafe = model.failsafe.ingress.some((f) => f.proto === 'tcp' && f.peer === null && f.ports[0] <= 22 && f.ports[1] >= 22);
    if (!sshAllowed && !sshFailsafe) {
      warn(
        'ingress',
        'ssh-lockout',
        `ingress on node ${model.node} is default deny and no allow entry admits SSH (22/TCP) from any peer: enforcing this locks you out of the node; ` +
          'add e.g. `fromEntities: [world]` (or your management CIDR) with toPorts 22/TCP',
      );
    }
  }
  const eg = model.egress;
  if (eg.enforced && eg.defaultDeny && inv.apiServerAddresses.length > 0) {
    const blocked = inv.apiServerAddresses.filter((a) => {
      const addr = a.includes('/') ? a.slice(0, a.indexOf('/')) : a;
      try {
        return apiServerDenied(model, addr);
      } catch {
        return false;
      }
    });
    if (blocked.length === inv.apiServerAddresses.length) {
      warn(
        'egress',
        'apiserver-blocked',
        `egress on node ${model.node} is default deny and blocks the kube-apiserver (${blocked.join(', ')} on 6443/TCP and 443/TCP): kubelet and Cilium on this node ` +
          'lose the control plane; add `toEntities: [kube-apiserver]` with toPorts 6443/TCP (or the API server port)',
      );
    }
  }
  return out;
}

/** A policy's own warnings (all but redundant-allow), for the nodes, pools and config they were found with. */
interface DocumentLint {
  /** Nodes and config the warnings were found with. */
  readonly key: readonly unknown[];
  /** The address pools the CIDR warnings (`after`) were found with. */
  readonly pools: PoolIndex;
  readonly head: readonly Problem[];
  readonly rules: readonly { readonly rule: Rule; readonly before: readonly Problem[]; readonly after: readonly Problem[] }[];
}

// Policy documents of unchanged CCNPs are the same objects from one agent pass to the next; their
// warnings only change with the nodes, the address pools or the config (all compared by identity).
let docLintCache = new WeakMap<PolicyDocument, DocumentLint>();

function cidrWarnings(doc: PolicyDocument, rule: Rule, pools: PoolIndex, cfg: EngineConfig): Problem[] {
  const l = new Linter(doc);
  lintCidrs(l, rule, pools, cfg);
  return l.problems;
}

function lintDocument(doc: PolicyDocument, inventory: Inventory, pools: PoolIndex, cfg: EngineConfig, key: readonly unknown[]): DocumentLint {
  const head = new Linter(doc);
  lintSelectsNoNode(head, doc, inventory, cfg);
  const rules: { rule: Rule; before: Problem[]; after: Problem[] }[] = [];
  for (const rule of doc.rules) {
    if (!isHostRule(doc, rule)) continue;
    const before = new Linter(doc);
    lintNodeSelector(before, rule, cfg);
    lintEntries(before, rule, cfg);
    rules.push({ rule, before: before.problems, after: cidrWarnings(doc, rule, pools, cfg) });
  }
  return { key, pools, head: head.problems, rules };
}

/** One piece of the policies' warnings in output order: warnings fixed for the memo's key, or a rule's CIDR warnings (read the pools). */
type Segment = readonly Problem[] | { readonly doc: PolicyDocument; readonly rule: Rule };

/**
 * Everything but the CIDR and model warnings of one list of policies, for the nodes and config it was
 * found with (compared by identity; a policy list matches when it holds the same documents in order).
 * A pod event changes none of these: only the pools (CIDR warnings) and the model (lockout, failsafe).
 */
interface ListLint {
  readonly policies: readonly PolicyDocument[];
  readonly key: readonly unknown[];
  readonly segments: readonly Segment[];
  readonly byName: ReadonlyMap<string, PolicyDocument>;
}

// A few lists: the agent lints the enforced policies and, with staged ones, all of them.
const listLintCache: ListLint[] = [];
const listLintCacheSize = 4;

function sameDocuments(a: readonly PolicyDocument[], b: readonly PolicyDocument[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}


function listLint(policies: readonly PolicyDocument[], inventory: Inventory, pools: PoolIndex, cfg: EngineConfig, key: readonly unknown[]): ListLint {
  const hit = listLintCache.find((c) => c.key.length === key.length && c.key.every((k, i) => k === key[i]) && sameDocuments(c.policies, policies));
  if (hit !== undefined) return hit;
  const segments: Segment[] = [];
  for (const doc of policies) {
    if (doc.kind !== 'CiliumClusterwideNetworkPolicy') continue;
    let own = docLintCache.get(doc);
    if (own === undefined || own.key.length !== key.length || own.key.some((k, i) => k !== key[i])) {
      own = lintDocument(doc, inventory, pools, cfg, key);
      docLintCache.set(doc, own);
    }
    segments.push(own.head);
    for (const r of own.rules) {
      segments.push(r.before);
      // Depends on every policy: kept with the list.
      const l = new Linter(doc);
      lintRedundantAllows(l, r.rule, policies, inventory, cfg);
      segments.push(l.problems);
      // Only the CIDR warnings read the address pools (which pod churn changes): each a few binary searches.
      segments.push(cidrItems(r.rule).length === 0 ? r.after : { doc, rule: r.rule });
    }
  }
  // Runs of fixed warnings as one list each: a pass then walks a few lists, not one per rule.
  const merged: Segment[] = [];
  for (const seg of segments) {
    const last = merged.at(-1);
    if (Array.isArray(seg) && Array.isArray(last)) (last as Problem[]).push(...(seg as readonly Problem[]));
    else merged.push(Array.isArray(seg) ? [...(seg as readonly Problem[])] : seg);
  }
  const made: ListLint = { policies: [...policies], key, segments: merged, byName: new Map(policies.map((p) => [p.name, p])) };
  listLintCache.unshift(made);
  listLintCache.length = Math.min(listLintCache.length, listLintCacheSize);
  return made;
}

/**
 * Lint warnings for the (valid) policies as seen from `inventory`'s node and cluster. `model`: the
 * model of exactly these policies, inventory and config, when the caller has it (saves a build).
 */
export function lintPolicies(policies: readonly PolicyDocument[], inventory: Inventory, cfg: EngineConfig, model?: HostModel): Problem[] {
  const pools = poolIndex(inventory);
  const key = [inventory.self, inventory.remoteNodes, jsonOnce(cfg)] as const;
  const out: Problem[] = [];
  const list = listLint(policies, inventory, pools, cfg, key);
  for (const seg of list.segments) {
    if (Array.isArray(seg)) {
      for (const p of seg as readonly Problem[]) out.push(p);
    } else {
      const { doc, rule } = seg as { readonly doc: PolicyDocument; readonly rule: Rule };
      for (const p of cidrWarnings(doc, rule, pools, cfg)) out.push(p);
    }
  }
  const enforced = model === undefined ? buildHostModel(policies, inventory, cfg, 'enforce') : { ...model, runMode: 'enforce' as const };
  const byName = list.byName;
  out.push(...lintLockout(inventory, enforced, byName));
  out.push(...lintFailsafeOverrides(enforced, byName));
  return out;
}

/** Forgets every memo of this module (tests compare memoised results with fresh ones). */
export function clearLintMemo(): void {
  docLintCache = new WeakMap();
  listLintCache.length = 0;
  addressVerdicts.clear();
}
