// Who can reach each listening socket: for every peer class that matters to this node's rules (each identity
// set of the model: entities, endpoint and node selectors, CIDR rules; plus "world" when no rule names it), one
// representative address is evaluated as an ingress flow to the listener's port, and the classes are grouped by
// verdict and deciding rule:
//
//   tcp/22 on 0.0.0.0: allowed from cluster, kube-apiserver (demo-host-policy spec.ingress[0]); denied from world (default deny)
//
// The evaluator decides (the same one `trace` and the kernel follow), so the report cannot disagree with them.

import type { HostModel, IdentitySet } from '../policy/model.js';
import { familyWidth, formatAddress, parsePrefix } from '../policy/cidr.js';
import type { FailsafeEntry } from '../policy/failsafe.js';
import type { Flow, Verdict } from '../verdict/types.js';
import { isListener, representativeAddress, socketKey } from './live-flows.js';
import { isUnspecified, type ProcSocket } from './proc-net.js';

export interface PeerClass {
  /** What the class is, for humans: "cluster", "kube-apiserver", "cidr:10.0.0.0/8", "world". */
  readonly identity: string;
  /** Identity set name in the model, or "world" for the class no rule names. */
  readonly set: string;
  /** The representative address evaluated. */
  readonly peer: string;
}

export interface ReachGroup {
  readonly verdict: 'allow' | 'deny';
  readonly decidedBy: Verdict['decidedBy'];
  readonly policy: string | null;
  readonly rule: string;
  /** "demo-host-policy spec.ingress[0]", "default deny", ... */
  readonly decidedByText: string;
  readonly identities: readonly PeerClass[];
}

export interface ListenerReach {
  readonly proto: 'tcp' | 'udp';
  readonly port: number;
  readonly local: string;
  readonly process?: string;
  readonly groups: readonly ReachGroup[];
  /** The one-line summary. */
  readonly text: string;
}

/** Most addresses of other sets a representative steps around (bounds the work on nodes with many pods). */
const maxAvoided = 10_000;

const worldPeer = { 4: '203.0.113.1', 6: '2001:db8:ffff::1' } as const;

function identityName(s: IdentitySet): string {
  const label = s.label.startsWith('entity:') ? s.label.slice('entity:'.length) : s.label;
  return label.length > 80 ? `${label.slice(0, 77)}...` : label;
}

/** One representative address per identity set with addresses of `family`, plus "world" when no set is the world. */
export function peerClasses(model: HostModel, family: 4 | 6): PeerClass[] {
  const out: PeerClass[] = [];
  let world = false;
  // This node's own addresses reach it over loopback (never filtered), and an address another set names too would
  // stand for both: prefer an address that is neither, then one that is not the node's, then any.
  const host = new Set(model.hostAddresses);
  const sets = Object.values(model.sets).sort((a, b) => a.name.localeCompare(b.name));
  for (const s of sets) {
    const others = new Set(host);
    for (const o of sets) {
      if (o === s) continue;
      // Single addresses only, and a bounded number of them: enough to step around the small entity sets.
      for (const p of family === 4 ? o.v4 : o.v6) {
        if (others.size >= maxAvoided) break;
        if (p.endsWith(family === 4 ? '/32' : '/128')) others.add(p.slice(0, p.lastIndexOf('/')));
      }
    }
    const peer = representativeAddress(s, family, model, others) ?? representativeAddress(s, family, model, host) ?? representativeAddress(s, family, model);
    if (peer === undefined) continue;
    if (s.label === 'entity:world' || s.label === 'entity:all') world = true;
    out.push({ identity: identityName(s), set: s.name, peer });
  }
  if (!world) out.push({ identity: 'world', set: 'world', peer: worldPeer[family] });
  return out;
}

function decidedByText(v: Verdict): string {
  const first = v.matched[0];
  switch (v.decidedBy) {
    case 'allow-entry':
    case 'deny-entry':
      return first === undefined ? v.decidedBy : `${first.policy} ${first.rule}`;
    case 'failsafe':
      return `failsafe ${first?.rule ?? ''}`.trimEnd();
    case 'default-deny':
      return 'default deny';
    case 'default-allow':
      return 'no entry matched, no default deny';
    case 'not-enforced':
      return 'ingress not enforced';
    case 'datapath':
      return v.verdict === 'allow' && /own \(or a loopback\) address/.test(v.reason) ? 'this node: over loopback, never filtered' : 'datapath';
  }
}

/**
 * Failsafe entries with a peer CIDR that cover this listener's port: one class each ("failsafe 192.0.2.0/24"), so
 * the report names who the failsafe lets in even where no policy names that network (a failsafe without a peer
 * covers every class already, and shows as their deciding rule).
 */
export function failsafeClasses(model: HostModel, proto: 'tcp' | 'udp', port: number, family: 4 | 6): PeerClass[] {
  const out: PeerClass[] = [];
  const host = new Set(model.hostAddresses);
  for (const e of model.failsafe.ingress) {
    if (e.peer === null || e.proto !== proto || port < e.ports[0] || port > e.ports[1]) continue;
    const peer = failsafePeer(e, family, host);
    if (peer !== undefined) out.push({ identity: `failsafe ${e.peer}`, set: 'failsafe', peer });
  }
  return out;
}

/** An address of the entry's prefix that is not the node's own (first host address when there is one), or undefined. */
function failsafePeer(e: FailsafeEntry, family: 4 | 6, host: ReadonlySet<string>): string | undefined {
  if (e.peer === null) return undefined;
  const p = parsePrefix(e.peer);
  if (p.family !== (family === 4 ? 'ipv4' : 'ipv6')) return undefined;
  const size = 1n << BigInt(familyWidth(p.family) - p.len);
  for (let i = size > 2n ? 1n : 0n, n = 0; i < size && n < 4; i++, n++) {
    const text = formatAddress(p.family, p.bits + i);
    if (!host.has(text)) return text;
  }
  return undefined;
}

/** Evaluate every class against one listener port and group by verdict and deciding rule (allowed groups first). */
export function reachGroups(model: HostModel, proto: 'tcp' | 'udp', port: number, classes: readonly PeerClass[], evaluate: (m: HostModel, f: Flow) => Verdict): ReachGroup[] {
  const groups = new Map<string, { verdict: 'allow' | 'deny'; decidedBy: Verdict['decidedBy']; policy: string | null; rule: string; text: string; ids: PeerClass[] }>();
  for (const c of classes) {
    const v = evaluate(model, { direction: 'ingress', peer: c.peer, proto, port });
    const first = v.matched[0];
    const byEntry = (v.decidedBy === 'allow-entry' || v.decidedBy === 'deny-entry') && first !== undefined;
    const policy = byEntry ? first.policy : null;
    const rule = byEntry ? first.rule : v.decidedBy;
    const key = `${v.verdict}|${v.decidedBy}|${policy ?? ''}|${rule}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { verdict: v.verdict, decidedBy: v.decidedBy, policy, rule, text: decidedByText(v), ids: [] }));
    if (!g.ids.some((x) => x.identity === c.identity)) g.ids.push(c);
  }
  return [...groups.values()]
    .sort((a, b) => (a.verdict === b.verdict ? 0 : a.verdict === 'allow' ? -1 : 1))
    .map((g) => ({ verdict: g.verdict, decidedBy: g.decidedBy, policy: g.policy, rule: g.rule, decidedByText: g.text, identities: g.ids }));
}

export function reachText(proto: string, port: number, localAddress: string, groups: readonly ReachGroup[]): string {
  const parts = groups.map((g) => `${g.verdict === 'allow' ? 'allowed' : 'denied'} from ${g.identities.map((i) => i.identity).join(', ')} (${g.decidedByText})`);
  return `${proto}/${port} on ${localAddress}: ${parts.join('; ')}`;
}

/** One report per listening socket (loopback-only listeners are left out: no peer can reach them). */
export function listenerReach(
  model: HostModel,
  sockets: readonly ProcSocket[],
  evaluate: (m: HostModel, f: Flow) => Verdict,
  processes?: ReadonlyMap<string, string>,
): ListenerReach[] {
  const out = new Map<string, ListenerReach>();
  const classCache = new Map<4 | 6, PeerClass[]>();
  const classesOf = (f: 4 | 6) => {
    let c = classCache.get(f);
    if (c === undefined) classCache.set(f, (c = peerClasses(model, f)));
    return c;
  };
  for (const s of sockets) {
    if (!isListener(s)) continue;
    const key = `${s.proto}|${s.localAddress}|${s.localPort}`;
    if (out.has(key)) continue;
    // A "::" listener is dual-stack unless bindv6only: it takes IPv4 peers too.
    const families: (4 | 6)[] = s.family === 4 ? [4] : isUnspecified(s.localAddress) ? [4, 6] : [6];
    const classes = families.flatMap((f) => [...classesOf(f), ...failsafeClasses(model, s.proto, s.localPort, f)]);
    const groups = reachGroups(model, s.proto, s.localPort, classes, evaluate);
    const process = processes?.get(socketKey(s));
    out.set(key, {
      proto: s.proto, port: s.localPort, local: s.localAddress, ...(process === undefined ? {} : { process }),
      groups, text: reachText(s.proto, s.localPort, s.localAddress, groups),
    });
  }
  return [...out.values()].sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port || a.local.localeCompare(b.local));
}
