// Failsafe entries (config `failsafe.ingress` / `failsafe.egress`): traffic accepted before any policy
// rule, in every mode, so that a wrong policy cannot cut SSH or the API server (Calico's failsafe ports).
//
// Grammar of one entry (one YAML string; tokens separated by one or more spaces):
//
//   entry   = proto "/" ports [ " " dirword " " peer ]
//   proto   = "tcp" | "udp" | "sctp"                  (lower case)
//   ports   = port | port "-" port                   (decimal, 1..65535, low <= high)
//   dirword = "from"  (ingress entries only: the source address)
//           | "to"    (egress entries only: the destination address)
//   peer    = IPv4 or IPv6 address (a /32 or /128) | CIDR without host bits
//
// Examples: "tcp/22", "tcp/6443 from 192.0.2.0/24", "udp/53 to 198.51.100.53", "tcp/30000-32767",
// "tcp/22 from 2001:db8::/32". ICMP is not a failsafe protocol: ICMP errors, frag-needed and neighbour
// discovery already pass by the datapath rules; echo is policy's business. One peer per entry: write
// several entries for several networks. No entry = the model's verdicts are exactly Cilium's.

import type { Direction } from '../api/types.js';
import { CidrError, addressInPrefix, formatPrefix, hostPrefix, parsePrefixDetailed, type Address } from './cidr.js';

export interface FailsafeEntry {
  /** The entry as the operator wrote it, canonicalised ("tcp/22 from 192.0.2.0/24"): what trace, list and audit show. */
  readonly text: string;
  readonly proto: 'tcp' | 'udp' | 'sctp';
  /** Inclusive port range; [22, 22] for a single port. */
  readonly ports: readonly [number, number];
  /** Canonical CIDR of the peer (source for ingress, destination for egress), or null = any address of both families. */
  readonly peer: string | null;
}

export interface Failsafes {
  readonly ingress: readonly FailsafeEntry[];
  readonly egress: readonly FailsafeEntry[];
}

/** No failsafes: one shared object, so models built without any compare (and cache) equal. */
export const noFailsafes: Failsafes = Object.freeze({ ingress: Object.freeze([]), egress: Object.freeze([]) });

/** Per direction: failsafes are a handful of management ports, each an nft rule before every policy. */
export const maxFailsafeEntries = 256;

export class FailsafeSyntaxError extends Error {
  override readonly name = 'FailsafeSyntaxError';
  /** 0-based offset into the entry text of the token at fault. */
  readonly offset: number;
  constructor(message: string, offset: number, options?: { cause?: unknown }) {
    super(message, options);
    this.offset = offset;
  }
}

const protos = ['tcp', 'udp', 'sctp'] as const;

function parsePort(s: string, offset: number): number {
  if (!/^[0-9]{1,5}$/.test(s) || (s.length > 1 && s.startsWith('0'))) {
    throw new FailsafeSyntaxError(`"${s}" is not a port (a decimal number from 1 to 65535)`, offset);
  }
  const n = Number(s);
  if (n < 1 || n > 65535) throw new FailsafeSyntaxError(`port ${n} is out of range (1 to 65535)`, offset);
  return n;
}

/**
 * One entry of `failsafe.<direction>`. Throws FailsafeSyntaxError naming the token at fault and its
 * offset in `text`, with what is expected.
 */
export function parseFailsafeEntry(text: string, direction: Direction): FailsafeEntry {
  const word = direction === 'ingress' ? 'from' : 'to';
  const other = direction === 'ingress' ? 'to' : 'from';
  const tokens: { s: string; at: number }[] = [];
  for (const m of text.matchAll(/[^ ]+/g)) tokens.push({ s: m[0], at: m.index });
  const bad = /[^\x21-\x7e ]/.exec(text);
  if (bad !== null) throw new FailsafeSyntaxError(`unexpected character U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')} (only printable ASCII and spaces)`, bad.index);
  const head = tokens[0];
  if (head === undefined) throw new FailsafeSyntaxError(`empty entry: expected PROTO/PORT[ ${word} CIDR], e.g. "tcp/22"`, 0);
  const slash = head.s.indexOf('/');
  if (slash < 0) throw new FailsafeSyntaxError(`"${head.s}": expected PROTO/PORT or PROTO/LOW-HIGH, e.g. "tcp/22" or "tcp/30000-32767"`, head.at);
  const protoText = head.s.slice(0, slash);
  const proto = protos.find((p) => p === protoText);
  if (proto === undefined) {
    throw new FailsafeSyntaxError(`protocol "${protoText}" is not a failsafe protocol (tcp, udp or sctp, lower case; ICMP is not supported)`, head.at);
  }
  const portText = head.s.slice(slash + 1);
  const portAt = head.at + slash + 1;
  if (portText === '') throw new FailsafeSyntaxError(`missing port after "${proto}/"`, portAt);
  const dash = portText.indexOf('-');
  const lo = parsePort(dash < 0 ? portText : portText.slice(0, dash), portAt);
  const hi = dash < 0 ? lo : parsePort(portText.slice(dash + 1), portAt + dash + 1);
  if (hi < lo) throw new FailsafeSyntaxError(`port range ${lo}-${hi} is backwards (low-high)`, portAt);
  const ports = lo === hi ? `${lo}` : `${lo}-${hi}`;
  if (tokens.length === 1) return { text: `${proto}/${ports}`, proto, ports: [lo, hi], peer: null };
  const kw = tokens[1] as { s: string; at: number };
  if (kw.s === other) {
    throw new FailsafeSyntaxError(`"${other}" does not fit failsafe.${direction}: ${direction} entries name the ${direction === 'ingress' ? 'source' : 'destination'} with "${word} CIDR"`, kw.at);
  }
  if (kw.s !== word) throw new FailsafeSyntaxError(`expected "${word} CIDR" after the port, got "${kw.s}"`, kw.at);
  const peerTok = tokens[2];
  if (peerTok === undefined) throw new FailsafeSyntaxError(`missing address or CIDR after "${word}"`, kw.at + kw.s.length);
  if (tokens.length > 3) {
    const extra = tokens[3];
    throw new FailsafeSyntaxError(`unexpected "${extra?.s ?? ''}": one peer per entry (write one entry per network)`, extra?.at ?? 0);
  }
  let peer: string;
  try {
    if (peerTok.s.includes('/')) {
      const { prefix, hadHostBits } = parsePrefixDetailed(peerTok.s);
      if (hadHostBits) throw new FailsafeSyntaxError(`"${peerTok.s}" has host bits set: did you mean ${formatPrefix(prefix)}?`, peerTok.at);
      peer = formatPrefix(prefix);
    } else {
      peer = formatPrefix(hostPrefix(peerTok.s));
    }
  } catch (err) {
    if (err instanceof FailsafeSyntaxError) throw err;
    if (err instanceof CidrError) throw new FailsafeSyntaxError(`"${peerTok.s}" is not an IPv4/IPv6 address or CIDR: ${err.message}`, peerTok.at, { cause: err });
    throw err;
  }
  return { text: `${proto}/${ports} ${word} ${peer}`, proto, ports: [lo, hi], peer };
}

/** The family a failsafe entry applies to, or undefined for both. */
export function failsafeFamily(e: FailsafeEntry): 'ipv4' | 'ipv6' | undefined {
  if (e.peer === null) return undefined;
  return e.peer.includes(':') ? 'ipv6' : 'ipv4';
}

const prefixCache = new WeakMap<FailsafeEntry, ReturnType<typeof parsePrefixDetailed>['prefix']>();

/** Does `e` accept a flow of `proto` to `port` with `peer` (source on ingress, destination on egress)? */
export function failsafeMatches(e: FailsafeEntry, proto: string | number, port: number | undefined, peer: Address): boolean {
  if (proto !== e.proto || port === undefined || port < e.ports[0] || port > e.ports[1]) return false;
  if (e.peer === null) return true;
  let p = prefixCache.get(e);
  if (p === undefined) {
    p = parsePrefixDetailed(e.peer).prefix;
    prefixCache.set(e, p);
  }
  return addressInPrefix(peer, p);
}
