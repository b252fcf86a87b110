// Staged policies in the kernel: record, never decide. For each direction in
// which a staged policy can change a verdict (policy/staged.ts), a rule right
// after the conntrack rules adds every NEW flow to a timed dynamic set
// nw_staged_{in,out}_{v4,v6}, with the key audit mode uses (peer . l4proto .
// port; ICMP: type*256+code). The rules carry no verdict: a packet continues
// to the same rules as without them, and a full set only makes `update` stop
// that rule (nft_dynset breaks the rule), never the packet. Userspace
// (agent/staged-records.ts) evaluates both models on each record and reports
// those whose verdicts differ.

import type { Direction } from '../api/types.js';
import type { Family, HostModel } from '../policy/model.js';
import { stagedRecordDirections } from '../policy/staged.js';
import { commentText, recordSetLines, reservedPrefix } from './render-sets.js';

/** Rule comment prefix (read-kernel treats it as nodewall's own, not a policy's). */
export const stagedComment = 'nodewall staged record';
export const stagedTimeout = '10m';
export const stagedSetSize = 65535;

const dirPart: Record<Direction, string> = { ingress: 'in', egress: 'out' };

export function stagedSetName(direction: Direction, family: Family): string {
  return `${reservedPrefix}staged_${dirPart[direction]}_${family === 'ipv4' ? 'v4' : 'v6'}`;
}

/** The recording rules of one direction (none when no staged policy applies to it). */
export function stagedRecordRules(model: HostModel, direction: Direction): string[] {
  if (!stagedRecordDirections(model).includes(direction)) return [];
  const rules: string[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const addr = `${family === 'ipv4' ? 'ip' : 'ip6'} ${direction === 'ingress' ? 'saddr' : 'daddr'}`;
    const icmp = family === 'ipv4' ? 'icmp' : 'ipv6-icmp';
    const set = `@${stagedSetName(direction, family)}`;
    rules.push(
      `meta nfproto ${family} ct state new meta l4proto ${icmp} counter update ${set} { ${addr} . meta l4proto . th sport } comment "${stagedComment} ${icmp}"`,
      `meta nfproto ${family} ct state new meta l4proto != ${icmp} counter update ${set} { ${addr} . meta l4proto . th dport } comment "${stagedComment} ${family}"`,
    );
  }
  return rules;
}

/** Set declarations (table body lines) for the recording directions; their comment names the staged policies. */
export function stagedSetLines(model: HostModel): string[] {
  const dirs = stagedRecordDirections(model);
  const names = model.staged?.policies ?? [];
  const lines: string[] = [];
  for (const direction of dirs) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      lines.push(...recordSetLines(stagedSetName(direction, family), family, stagedSetSize, stagedTimeout, commentText(`nodewall staged ${direction}: ${names.join(' ')}`)));
    }
  }
  return lines;
}

/** Key of what the recording rules depend on (the render cache compares it). */
export function stagedRenderKey(model: HostModel): string {
  return stagedRecordDirections(model).join(',');
}

/**
 * From the kernel (`list`): the staged policies per direction, read back from the record sets'
 * comments, with how many candidate flows are recorded. A truncated comment (very long names)
 * ends with "~hash"; it is shown as it is.
 */
export function stagedFromKernel(sets: ReadonlyMap<string, { readonly comment?: string; readonly elements: readonly string[] }>): { direction: Direction; policies: string[]; records: number }[] {
  const out: { direction: Direction; policies: string[]; records: number }[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    const v4 = sets.get(stagedSetName(direction, 'ipv4'));
    const v6 = sets.get(stagedSetName(direction, 'ipv6'));
    if (v4 === undefined && v6 === undefined) continue;
    const prefix = `nodewall staged ${direction}: `;
    const comment = v4?.comment ?? v6?.comment ?? '';
    const policies = comment.startsWith(prefix) ? comment.slice(prefix.length).split(' ').filter((p) => p !== '') : [];
    out.push({ direction, policies, records: (v4?.elements.length ?? 0) + (v6?.elements.length ?? 0) });
  }
  return out;
}
