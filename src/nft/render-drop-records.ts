// Drop records (enforce mode, config dropRecords): every rule that drops
// (deny entry, default deny, datapath drop) ends in `goto nw_drop_in|out`
// instead of `drop`. That chain records the packet in a bounded, timed dynamic
// map and drops it:
//
//   map nw_drop_{in,out}_{v4,v6}  key  l4proto . port . peer   (port = type*256+code for ICMP, as audit;
//                                      the address last: nft 1.0.6 aborts on `ip6 saddr . ... : meta time`)
//                                 data meta time               (the kernel's wall clock at insertion)
//                                 per-element counter          (packets and bytes of this flow)
//                                 size dropRecords.size, timeout dropRecords.timeoutSeconds (refreshed per packet)
//
// What is exact and what is derived (read back in src/agent/drop-records.ts):
//   packets, bytes   exact counts since the element was inserted;
//   first seen       exact to the second: the map data, written once when the element is inserted
//                    (`update` never rewrites the data of an existing element);
//   last seen        derived: now - (timeout - expires), since every packet resets the element's expiry
//                    (nft prints expires in whole seconds, so to the second).
// A record outlives its last drop by timeoutSeconds; a flow dropped again later gets a new record.
//
// When a map is full the `update` fails, that rule does not match, and the packet goes on to the chain's last
// rule, an unconditional drop counted as "nodewall drop unrecorded": recording stops, dropping does not, and
// nothing accepted ever passes through these chains (test/e2e/drop-records.test.ts sends the packets).

import type { Direction } from '../api/types.js';
import type { DropRecordSettings, RunMode } from '../inventory/types.js';
import type { Family } from '../policy/model.js';
import { dropRecordChainNames, fixedComments, recordRules } from './render-rules.js';

export function dropRecordMapName(direction: Direction, family: Family): string {
  return `${dropRecordChainNames[direction]}_${family === 'ipv4' ? 'v4' : 'v6'}`;
}

/** Drop records are rendered in enforce mode only (audit mode has its own records, dry-run renders nothing). */
export function recordsDrops(mode: RunMode, settings: DropRecordSettings | undefined): settings is DropRecordSettings {
  return mode === 'enforce' && settings !== undefined;
}

/** Rules of the drop-record chain of one direction: record, then drop whatever happens. */
export function dropRecordChainRules(direction: Direction): string[] {
  return [
    ...recordRules(direction, (family) => `@${dropRecordMapName(direction, family)}`, (set, addr, port) => `update ${set} { meta l4proto . ${port} . ${addr} counter : meta time }`, 'drop', fixedComments.dropRecord),
    `counter drop comment "${fixedComments.dropRecord} unrecorded"`,
  ];
}

/** The maps and chains, as table body lines (part of the table skeleton: a change of size or timeout is a full replace). */
export function dropRecordLines(settings: DropRecordSettings): string[] {
  const lines: string[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const addr = `${family === 'ipv4' ? 'ip' : 'ip6'} ${direction === 'ingress' ? 'saddr' : 'daddr'}`;
      lines.push(
        `\tmap ${dropRecordMapName(direction, family)} {`,
        `\t\ttypeof meta l4proto . th dport . ${addr} : meta time`,
        `\t\tsize ${settings.size}`,
        '\t\tflags dynamic,timeout',
        `\t\ttimeout ${settings.timeoutSeconds}s`,
        `\t\tcomment "nodewall drop records ${direction}"`,
        '\t}',
      );
    }
  }
  for (const direction of ['ingress', 'egress'] as const) {
    lines.push(`\tchain ${dropRecordChainNames[direction]} {`, ...dropRecordChainRules(direction).map((r) => `\t\t${r}`), '\t}');
  }
  return lines;
}
