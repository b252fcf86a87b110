// Builds the per-node HostModel (reference §6): selecting host rules, entries
// per direction (deny first, then allow), enforcement and default deny, shared
// identity sets and the datapath exceptions of §8.

import type { Direction, PeerRule, PolicyDocument, Rule, RuleListName } from '../api/types.js';
import type { EngineConfig, Inventory, RunMode } from '../inventory/types.js';
import { formatAddress, formatPrefixesByFamily, hostPrefix } from './cidr.js';
import type { DirectionPolicy, Entry, HostModel } from './model.js';
import { noFailsafes } from './failsafe.js';
import { resolveL4 } from './resolve-l4.js';
import { resolveContext, resolvePeers, type ResolveContext } from './resolve-peers.js';
import { selectingRules, type SelectedRule } from './select-nodes.js';

/** ICMPv6 types the host datapath accepts before policy (Cilium icmp6_host_handle ranges). */
export const icmpv6AlwaysAllow: readonly number[] = [1, 2, 3, 4, 130, 131, 132, 133, 134, 135, 136, 141, 142, 143, 148, 149, 151, 152, 153];
/** ICMPv6 types left to policy on ingress: echo request and reply. */
export const icmpv6IngressPolicyTypes: readonly number[] = [128, 129];

/** Orders rule paths naturally: "spec" < "specs[2]" < "specs[10]". */
export function comparePaths(a: string, b: string): number {
  const key = (p: string): [string, number] => {
    const m = /^(.*?)\[(\d+)\]$/.exec(p);
    return m === null ? [p, -1] : [m[1] ?? '', Number(m[2])];
  };
  const [an, ai] = key(a);
  const [bn, bi] = key(b);
  if (an !== bn) return an < bn ? -1 : 1;
  return ai - bi;
}

export function compareSelected(a: SelectedRule, b: SelectedRule): number {
  if (a.policy.name !== b.policy.name) return a.policy.name < b.policy.name ? -1 : 1;
  return comparePaths(a.rule.path, b.rule.path);
}

/** Effective default-deny flag of a rule's entries in `dir` (§6.4 steps 3 and 7). */
export function ruleDefaultDeny(rule: Rule, dir: Direction, cfg: EngineConfig): boolean {
  if (!cfg.enableNonDefaultDenyPolicies) return true;
  return rule.enableDefaultDeny?.[dir] ?? true;
}

export interface EntryWithFlag {
  readonly entry: Entry;
  readonly defaultDeny: boolean;
  readonly origin: string;
}

function joinNotes(notes: readonly string[]): { note?: string } {
  return notes.length === 0 ? {} : { note: notes.join('; ') };
}

/** The entries one element of ingress/ingressDeny/egress/egressDeny contributes. */
export function entriesOf(
  pr: PeerRule,
  action: Entry['action'],
  policy: string,
  path: string,
  dir: Direction,
  ctx: ResolveContext,
): Entry[] {
  const peers = resolvePeers(pr, dir, ctx);
  const l4 = resolveL4(pr, ctx.cfg, dir);
  const noL4 = (pr.toPorts ?? []).length === 0 && (pr.icmps ?? []).length === 0;
  if (peers.kind === 'any' && noL4) {
    const note = 'no peer and no port: this entry matches nothing; it only switches on default deny for its direction';
    return [{ action, policy, rule: path, peer: null, l4: [], note }];
  }
  if (peers.kind === 'none') {
    return [{ action, policy, rule: path, peer: null, l4: [], ...joinNotes([...peers.notes, 'this entry matches nothing']) }];
  }
  const notes = [...peers.notes, ...l4.notes];
  if (peers.kind === 'any') return [{ action, policy, rule: path, peer: null, l4: l4.l4, ...joinNotes(notes) }];
  return peers.sets.map((peer) => ({ action, policy, rule: path, peer, l4: l4.l4, ...joinNotes(notes) }));
}

function listNames(dir: Direction): { deny: RuleListName; allow: RuleListName } {
  return dir === 'ingress' ? { deny: 'ingressDeny', allow: 'ingress' } : { deny: 'egressDeny', allow: 'egress' };
}

/** Entries of the selected rules in one direction: deny entries first, then allow, each in `selected` order. */
export function collect(selected: readonly SelectedRule[], dir: Direction, ctx: ResolveContext): EntryWithFlag[] {
  const names = listNames(dir);
  const out: EntryWithFlag[] = [];
  for (const [action, list] of [['deny', names.deny], ['allow', names.allow]] as const) {
    for (const { policy, rule } of selected) {
      const flag = ruleDefaultDeny(rule, dir, ctx.cfg);
      (rule[list] ?? []).forEach((pr, i) => {
        const path = `${rule.path}.${list}[${i}]`;
        for (const entry of entriesOf(pr, action, policy.name, path, dir, ctx)) {
          out.push({ entry, defaultDeny: flag, origin: `${policy.name} ${rule.path}` });
        }
      });
    }
  }
  return out;
}

function listSome(xs: readonly string[]): string {
  const uniq = [...new Set(xs)];
  return uniq.length <= 3 ? uniq.join(', ') : `${uniq.slice(0, 3).join(', ')} and ${uniq.length - 3} more`;
}

export function directionPolicy(
  dir: Direction,
  collected: readonly EntryWithFlag[],
  node: string,
  selected: readonly SelectedRule[],
  cfg: EngineConfig,
): DirectionPolicy {
  const entries = collected.map((c) => c.entry);
  const names = listNames(dir);
  if (cfg.policyEnforcement === 'never') {
    return {
      enforced: false,
      defaultDeny: false,
      entries: [],
      reason: `policyEnforcement is "never": host policies are ignored and all ${dir} traffic is allowed.`,
    };
  }
  if (cfg.policyEnforcement === 'always') {
    return {
      enforced: true,
      defaultDeny: true,
      entries,
      reason:
        `policyEnforcement is "always": ${dir} is enforced with default deny even without rules, ` +
        `so only traffic matched by an allow entry passes (${entries.length} entries from ${selected.length} selecting rules).`,
    };
  }
  if (collected.length === 0) {
    return {
      enforced: false,
      defaultDeny: false,
      entries: [],
      reason: `No host rule selecting node ${node} has ${names.allow} or ${names.deny} entries, so ${dir} is not enforced and all ${dir} traffic is allowed.`,
    };
  }
  const asking = collected.filter((c) => c.defaultDeny).map((c) => c.origin);
  if (asking.length > 0) {
    const forced = !cfg.enableNonDefaultDenyPolicies && selected.some((s) => s.rule.enableDefaultDeny?.[dir] === false)
      ? ` (enableNonDefaultDenyPolicies is false, so enableDefaultDeny.${dir}: false is ignored)`
      : '';
    return {
      enforced: true,
      defaultDeny: true,
      entries,
      reason:
        `${dir} is enforced with default deny because ${listSome(asking)} ${new Set(asking).size === 1 ? 'has' : 'have'} ` +
        `${dir} entries without enableDefaultDeny.${dir}: false${forced}; ${dir} traffic not matched by an allow entry is dropped.`,
    };
  }
  return {
    enforced: true,
    defaultDeny: false,
    entries,
    reason:
      `${dir} is enforced without default deny: every selecting rule with ${dir} entries sets enableDefaultDeny.${dir}: false, ` +
      `so only deny entries drop ${dir} traffic and everything else is allowed.`,
  };
}

export function canonicalHostAddresses(addrs: readonly string[]): string[] {
  const out: { family: string; bits: bigint; text: string }[] = [];
  for (const s of addrs) {
    try {
      const slash = s.indexOf('/');
      const p = hostPrefix(slash < 0 ? s : s.slice(0, slash));
      out.push({ family: p.family, bits: p.bits, text: formatAddress(p.family, p.bits) });
    } catch {
      // Unparsable addresses are reported by the inventory; nothing to model.
    }
  }
  out.sort((a, b) => (a.family !== b.family ? (a.family === 'ipv4' ? -1 : 1) : a.bits < b.bits ? -1 : a.bits > b.bits ? 1 : 0));
  return [...new Set(out.map((a) => a.text))];
}

/** The policy model of this node. `policies` are the valid ones. Pure. */
export function buildHostModel(policies: readonly PolicyDocument[], inventory: Inventory, cfg: EngineConfig, runMode: RunMode): HostModel {
  const selected = selectingRules(policies, inventory.self.labels, cfg.labelFilter).sort(compareSelected);
  const ctx = resolveContext(inventory, cfg);
  const node = inventory.self.name;
  const ingress = directionPolicy('ingress', collect(selected, 'ingress', ctx), node, selected, cfg);
  const egress = directionPolicy('egress', collect(selected, 'egress', ctx), node, selected, cfg);
  const used = new Set([...ingress.entries, ...egress.entries].map((e) => e.peer).filter((p): p is string => p !== null));
  const sets = Object.fromEntries([...ctx.sets].filter(([name]) => used.has(name)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    node,
    enforcementMode: cfg.policyEnforcement,
    runMode,
    selectedPolicies: [...new Set(selected.map((s) => s.policy.name))].sort(),
    ingress,
    egress,
    sets,
    exclusions: { cluster: formatPrefixesByFamily(ctx.pools.cluster), cluster_non_node: formatPrefixesByFamily(ctx.pools.clusterNonNode) },
    hostAddresses: canonicalHostAddresses(inventory.self.addresses),
    datapath: {
      allowICMPFragNeeded: cfg.allowICMPFragNeeded,
      icmpv6AlwaysAllow,
      icmpv6IngressPolicyTypes,
      extendedProtocols: cfg.enableExtendedIPProtocols,
    },
    failsafe: cfg.failsafe ?? noFailsafes,
  };
}
