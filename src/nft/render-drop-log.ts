// logDrops (config, enforce mode with drop records): before every rule that
// drops, a rule with the same match that logs the packet to the kernel log,
// rate-limited, with a prefix naming the rule:
//
//   ip saddr @nw_id_x tcp dport 22 limit rate 10/minute burst 5 packets counter log prefix "nodewall drop edge spec.ingressDeny[0]: " level warn comment "nodewall drop log"
//   ip saddr @nw_id_x tcp dport 22 counter goto nw_drop_in comment "edge spec.ingressDeny[0]"
//
// The log rule has no verdict: a packet over the limit does not match it and goes on to the drop rule
// below, and so does a logged one. A `limit` therefore decides only whether a line is logged, never whether
// a packet passes (a `limit ... drop` in the drop rule itself would let the packets over the limit through).
// Its counter counts the packets logged. The limit is per rule (each rule's own token bucket): a flood on
// one rule cannot silence the others. Lines go to the kernel log (journalctl -k) of the node's network
// namespace (the kernel logs other namespaces only with net.netfilter.nf_log_all_netns=1).

import { createHash } from 'node:crypto';
import type { DirectionLayout } from './render-rules.js';
import { utf8Prefix } from './render-sets.js';

/** Comment of the log rules (read-kernel treats "nodewall drop ..." as nodewall's own, never a policy's). */
export const dropLogComment = 'nodewall drop log';
/** Per log rule: lines per minute, and the burst allowed at once. */
export const dropLogRate = '10/minute burst 5 packets';
/** The kernel keeps 127 bytes of a log prefix (NF_LOG_PREFIXLEN 128 with the NUL); ours stay well below. */
export const maxDropLogPrefixBytes = 64;

/** "nodewall drop POLICY RULE: " from the drop rule's comment, cut (with a hash of the whole) to maxDropLogPrefixBytes. */
export function dropLogPrefix(ruleComment: string): string {
  const name = ruleComment.startsWith('nodewall ') ? ruleComment.slice('nodewall '.length) : ruleComment;
  const full = `nodewall drop ${name}: `;
  if (Buffer.byteLength(full) <= maxDropLogPrefixBytes) return full;
  // Cut, and keep the rules apart with a hash of the whole name.
  const hash = `~${createHash('sha256').update(name).digest('hex').slice(0, 8)}: `;
  return `${utf8Prefix(full, maxDropLogPrefixBytes - hash.length)}${hash}`;
}

/** The log rule for one rule ending in `counter <drop> comment "..."`, or undefined for any other rule. */
export function dropLogRule(rule: string, drop: string): string | undefined {
  const m = /^(.*?)\s*counter (\S+(?: \S+)?) comment "([^"]*)"$/.exec(rule);
  if (m === null || m[2] !== drop) return undefined;
  const match = m[1] ?? '';
  const prefix = dropLogPrefix(m[3] ?? '');
  return `${match === '' ? '' : `${match} `}limit rate ${dropLogRate} counter log prefix "${prefix}" level warn comment "${dropLogComment}"`;
}

function withLogs(rules: readonly string[], drop: string): string[] {
  const out: string[] = [];
  for (const r of rules) {
    const log = dropLogRule(r, drop);
    if (log !== undefined) out.push(log);
    out.push(r);
  }
  return out;
}

/** The layout with a log rule before each rule whose verdict is `drop` (the drop verdict of the mode). */
export function withDropLogs(layout: DirectionLayout, drop: string): DirectionLayout {
  return { base: withLogs(layout.base, drop), chains: layout.chains.map((ch) => ({ ...ch, rules: withLogs(ch.rules, drop) })) };
}
