// Config `rollout` (agent), the part about health probes:
//
//   rollout:
//     probes:                 # TCP endpoints that must stay reachable across a tightening change
//       - 192.0.2.10:6443     # IPv4:PORT
//       - "[2001:db8::10]:22" # [IPv6]:PORT
//       - etcd-1.example:2379 # DNS name:PORT (resolved at every probe; a failed lookup is a failed probe)
//       - kube-apiserver      # the API server the Kubernetes source talks to (needs a kubernetes source)
//     probeSeconds: 10        # how long a probe that passed before may take to pass again (1..600)
//
// Another part of the same block (rollout.confirm, rollout.confirmSeconds) belongs to commit-confirm.

import { isIP } from 'node:net';

export type ProbeTarget =
  | { readonly kind: 'tcp'; readonly text: string; readonly host: string; readonly port: number }
  | { readonly kind: 'kube-apiserver'; readonly text: 'kube-apiserver' };

export interface RolloutSettings {
  readonly probes: readonly ProbeTarget[];
  /** Absent = defaultProbeSeconds. */
  readonly probeSeconds?: number;
  /** manual: each change waits for `nodewall confirm` and is rolled back at the deadline (default off; rollout-confirm.ts). */
  readonly confirm?: 'off' | 'manual';
  /** The deadline of a manual change, in seconds (default 120). */
  readonly confirmSeconds?: number;
}

export const defaultProbeSeconds = 10;
/** Probes are TCP connects made before and after every tightening change: a handful, not a scan. */
export const maxProbes = 32;

export class ProbeSyntaxError extends Error {
  override readonly name = 'ProbeSyntaxError';
  /** 0-based offset of the part at fault. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

// RFC 1123 host name: labels of letters, digits and hyphens, not starting or ending with a hyphen.
const dnsName = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function port(s: string, offset: number): number {
  if (!/^[0-9]{1,5}$/.test(s) || (s.length > 1 && s.startsWith('0')) || Number(s) < 1 || Number(s) > 65535) {
    throw new ProbeSyntaxError(`"${s}" is not a TCP port (1 to 65535)`, offset);
  }
  return Number(s);
}

/** One entry of rollout.probes. Throws ProbeSyntaxError naming the part at fault. */
export function parseProbeTarget(text: string): ProbeTarget {
  if (text === 'kube-apiserver') return { kind: 'kube-apiserver', text };
  const expect = 'expected HOST:PORT (IPv4 "192.0.2.10:6443", "[2001:db8::10]:22", a DNS name "etcd-1.example:2379") or kube-apiserver';
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new ProbeSyntaxError(`missing "]" after the IPv6 address: ${expect}`, 0);
    const host = text.slice(1, close);
    if (isIP(host) !== 6) throw new ProbeSyntaxError(`"${host}" is not an IPv6 address`, 1);
    if (text[close + 1] !== ':') throw new ProbeSyntaxError(`missing ":PORT" after "]": ${expect}`, close + 1);
    const p = port(text.slice(close + 2), close + 2);
    return { kind: 'tcp', text: `[${host}]:${p}`, host, port: p };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw new ProbeSyntaxError(`no port: ${expect}`, 0);
  const host = text.slice(0, colon);
  if (host.includes(':')) throw new ProbeSyntaxError(`an IPv6 address needs brackets: "[${host}]:${text.slice(colon + 1)}"`, 0);
  if (host === '') throw new ProbeSyntaxError(`no host: ${expect}`, 0);
  if (isIP(host) !== 4 && (!dnsName.test(host) || /^[0-9.]+$/.test(host))) {
    throw new ProbeSyntaxError(`"${host}" is neither an IPv4 address nor a DNS name`, 0);
  }
  const p = port(text.slice(colon + 1), colon + 1);
  return { kind: 'tcp', text: `${host}:${p}`, host, port: p };
}

/** host:port of a Kubernetes API server URL ("https://192.0.2.50:6443", "https://api.example"); undefined when unusable. */
export function apiServerEndpoint(server: string | undefined): { host: string; port: number } | undefined {
  if (server === undefined || server === '') return undefined;
  let u: URL;
  try {
    u = new URL(server);
  } catch {
    return undefined;
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (host === '') return undefined;
  const p = u.port !== '' ? Number(u.port) : u.protocol === 'http:' ? 80 : 443;
  return { host, port: p };
}
