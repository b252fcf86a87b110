// Drop records (enforce mode, config dropRecords): every rule that drops
// (deny entry, default deny, datapath drop) ends in `goto nw_drop_in|out`
// instead of `drop`. That chain records the packet in two bounded, timed
// dynamic sets per family and drops it:
//
//   set nw_drop_{in,out}_{v4,v6}        key l4proto . port . peer (port = type*256+code for ICMP, as audit),
//                                       `update` with a per-element counter: every packet resets the expiry
//   set nw_drop_{in,out}_{v4,v6}_first  the same key, `add`: inserted at the first drop, never refreshed
//   both: size dropRecords.size, timeout dropRecords.timeoutSeconds
//
// What is exact and what is derived (read back in src/agent/drop-records.ts):
//   packets, bytes   exact counts since the record was created;
//   last seen        derived: read time - (timeout - expires of the record), to the second (nft prints whole seconds);
//   first seen       derived the same way from the `_first` element; for a flow dropped without a pause for longer
//                    than the timeout, the `_first` element has expired and been added again, so first seen is then
//                    the start of the current timeout window, not the flow's very first drop.
// (A map with `meta time` data would give an exact first-seen time, but nft 1.0.6 corrupts IPv6 keys longer than
// 16 bytes next to map data, so both families use the same two-set scheme.)
//
// When a set is full its statement fails, the rule does not match, and the packet goes on to the chain's last
// rule, an unconditional drop counted as "nodewall drop unrecorded": recording stops, dropping does not, and
// nothing accepted ever passes through these chains (test/e2e/drop-records.test.ts sends the packets).

import type { Direction } from '../api/types.js';
import type { DropRecordSettings, RunMode } from '../inventory/types.js';
import type { Family } from '../policy/model.js';
import { dropRecordChainNames, fixedComments, recordRules } from './render-rules.js';

export function dropRecordSetName(direction: Direction, family: Family): string {
  return `${dropRecordChainNames[direction]}_${family === 'ipv4' ? 'v4' : 'v6'}`;
}

/** Every record set (not the first-drop sets), both directions and families: what holds one entry per recorded flow. */
export function dropRecordSetNames(): string[] {
  return (['ingress', 'egress'] as const).flatMap((d) => (['ipv4', 'ipv6'] as const).map((f) => dropRecordSetName(d, f)));
}

/** The set holding each record's first drop (never refreshed). */
export function dropFirstSetName(direction: Direction, family: Family): string {
  return `${dropRecordSetName(direction, family)}_first`;
}

/** Drop records are rendered in enforce mode only (audit mode has its own records, dry-run renders nothing). */
export function recordsDrops(mode: RunMode, settings: DropRecordSettings | undefined): settings is DropRecordSettings {
  return mode === 'enforce' && settings !== undefined;
}

/** Rules of the drop-record chain of one direction: record, then drop whatever happens. */
export function dropRecordChainRules(direction: Direction): string[] {
  return [
    ...recordRules(direction, (family, addr, port) => {
      const key = `meta l4proto . ${port} . ${addr}`;
      return `update @${dropRecordSetName(direction, family)} { ${key} counter } add @${dropFirstSetName(direction, family)} { ${key} }`;
    }, 'drop', fixedComments.dropRecord),
    `counter drop comment "${fixedComments.dropRecord} unrecorded"`,
  ];
}

/** The sets and chains, as table body lines (part of the table skeleton: a change of size or timeout is a full replace). */
export function dropRecordLines(settings: DropRecordSettings): string[] {
  const lines: string[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const addr = `${family === 'ipv4' ? 'ip' : 'ip6'} ${direction === 'ingress' ? 'saddr' : 'daddr'}`;
      for (const [name, what] of [[dropRecordSetName(direction, family), 'records'], [dropFirstSetName(direction, family), 'first drops']] as const) {
        lines.push(
          `\tset ${name} {`,
          `\t\ttypeof meta l4proto . th dport . ${addr}`,
          `\t\tsize ${settings.size}`,
          '\t\tflags dynamic,timeout',
          `\t\ttimeout ${settings.timeoutSeconds}s`,
          `\t\tcomment "nodewall drop ${what} ${direction}"`,
          '\t}',
        );
      }
    }
  }
  for (const direction of ['ingress', 'egress'] as const) {
    lines.push(`\tchain ${dropRecordChainNames[direction]} {`, ...dropRecordChainRules(direction).map((r) => `\t\t${r}`), '\t}');
  }
  return lines;
}
