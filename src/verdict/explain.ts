// Operator-facing text for one verdict: what decided, which identities the
// peer resolved to, and why default deny is or is not active.

import { parseAddress } from '../policy/cidr.js';
import type { Entry, HostModel } from '../policy/model.js';
import { excludedIdentities } from './evaluate.js';
import type { Flow, MatchedEntry, Verdict } from './types.js';

function flowText(f: Flow): string {
  const proto = typeof f.proto === 'number' ? `proto ${f.proto}` : f.proto;
  const l4 =
    f.port !== undefined ? ` port ${f.port}` : f.icmpType !== undefined ? ` type ${f.icmpType}${f.icmpCode !== undefined ? ` code ${f.icmpCode}` : ''}` : '';
  const peer = f.direction === 'ingress' ? `from ${f.peer}` : `to ${f.peer}`;
  return `${f.direction} ${proto}${l4} ${peer}`;
}

function findEntry(model: HostModel, flow: Flow, m: MatchedEntry): Entry | undefined {
  const dp = flow.direction === 'ingress' ? model.ingress : model.egress;
  return dp.entries.find((e) => e.policy === m.policy && e.rule === m.rule && e.action === m.action && e.peer === m.peer);
}

function peerText(model: HostModel, peer: string): string {
  const s = model.sets[peer];
  return s === undefined ? peer : `${peer} (${s.label})`;
}

function peerPhrase(model: HostModel, peer: string | null): string {
  return peer === null ? 'any peer' : `peer ${peerText(model, peer)}`;
}

/** Multi-line explanation of `v` for `flow` under `model`. */
export function explainText(v: Verdict, model: HostModel, flow: Flow): string {
  const dp = flow.direction === 'ingress' ? model.ingress : model.egress;
  const lines: string[] = [];
  lines.push(`${flowText(flow)}: ${v.verdict.toUpperCase()} (node ${model.node})`);
  if (v.verdict === 'deny' && model.runMode === 'audit') {
    lines.push('  mode audit: nodewall would drop this packet but lets it pass and records it.');
  } else if (v.verdict === 'deny' && model.runMode === 'dry-run') {
    lines.push('  mode dry-run: the ruleset is not applied, so this packet is not dropped yet.');
  }
  const first = v.matched[0];
  switch (v.decidedBy) {
    case 'datapath':
      lines.push(`decided by: datapath exception (before any policy): ${v.reason}`);
      break;
    case 'failsafe':
      lines.push(`decided by: failsafe ${first?.rule ?? ''} (before any policy rule): ${v.reason}`);
      break;
    case 'not-enforced':
      lines.push(`decided by: ${flow.direction} is not enforced.`);
      break;
    case 'deny-entry':
    case 'allow-entry':
      if (first !== undefined) {
        lines.push(`decided by: policy ${first.policy} ${first.rule} (${first.action} entry, ${peerPhrase(model, first.peer)})`);
        const note = findEntry(model, flow, first)?.note;
        if (note !== undefined) lines.push(`  note: ${note}`);
        if (first.action === 'deny') lines.push('  deny entries win over every allow entry, whatever their specificity.');
      }
      break;
    case 'default-deny':
      lines.push(`decided by: default deny (no allow entry matched this peer and port).`);
      break;
    case 'default-allow':
      lines.push(`decided by: no entry matched and ${flow.direction} has no default deny, so it passes.`);
      break;
  }
  const ids = v.peerIdentities.map((n) => peerText(model, n));
  lines.push(`peer ${flow.peer} resolves to: ${ids.length === 0 ? 'no identity set used by this node\'s rules' : ids.join(', ')}`);
  let excluded: string[] = [];
  try {
    excluded = excludedIdentities(model, parseAddress(flow.peer));
  } catch {
    // evaluate() already rejected unparsable peers; nothing to add here.
  }
  if (excluded.length > 0) {
    lines.push(
      `  not matched by ${excluded.map((n) => peerText(model, n)).join(', ')}: ${flow.peer} is a cluster address, ` +
        'which CIDR and world peers never select (use host/remote-node/health entities or endpoint selectors)',
    );
  }
  if (model.hostAddresses.includes(flow.peer)) lines.push(`  (${flow.peer} is an address of this node)`);
  if (v.matched.length > 1) {
    lines.push('matched entries (deciding first):');
    for (const m of v.matched) lines.push(`  - ${m.action} ${m.policy} ${m.rule}, ${peerPhrase(model, m.peer)}`);
  }
  lines.push(`${flow.direction} policy: ${dp.enforced ? (dp.defaultDeny ? 'enforced, default deny' : 'enforced, default allow') : 'not enforced'}. ${dp.reason}`);
  if (model.selectedPolicies.length > 0) lines.push(`policies selecting ${model.node}: ${model.selectedPolicies.join(', ')}`);
  else lines.push(`no host policy selects ${model.node}.`);
  return lines.join('\n');
}
