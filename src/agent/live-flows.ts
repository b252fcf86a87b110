// Turn the node's live sockets into the flows the policy decides.
//
// - A TCP connection whose local port is a listening port is inbound
//   (ingress, port = local port); any other connection is outbound (egress,
//   port = remote port). Connected UDP sockets count as outbound.
// - A listener (TCP LISTEN, bound unconnected UDP) has no peer. It is
//   reported once per identity set of the model that has addresses of the
//   listener's family, with a representative address of that set as peer
//   (the first usable address of its first prefix that is not excluded), so
//   the report says e.g. "tcp/22 from world: would-deny, from kube-apiserver:
//   would-allow". With no identity set of that family, one line with a world
//   documentation address stands for "any peer".
// - Loopback traffic is skipped: host policies do not apply to it.

import type { Flow } from '../verdict/types.js';
import type { HostModel, IdentitySet } from '../policy/model.js';
import { formatIPv6 as formatIPv6Bytes, isLoopback, isUnspecified, type ProcSocket } from './proc-net.js';

export interface LiveFlow {
  readonly flow: Flow;
  readonly kind: 'connection' | 'listener';
  /** "addr:port" of the local end. */
  readonly local: string;
  /** For listeners: the identity set the representative peer stands for ("any" when none). */
  readonly peerSet?: string;
  /** Owning process, when known (systeminformation). */
  readonly process?: string;
}

const activeTcp = new Set(['established', 'syn-recv', 'syn-sent']);

export function liveFlows(sockets: readonly ProcSocket[], model: HostModel, processes?: ReadonlyMap<string, string>): LiveFlow[] {
  const listeners = sockets.filter(isListener);
  // By protocol and port only: a dual-stack "::" listener shows its IPv4 sessions as IPv4 (v4-mapped).
  const listening = new Set(listeners.map((s) => `${s.proto}|${s.localPort}`));
  const out: LiveFlow[] = [];
  for (const s of sockets) {
    const local = endpoint(s.localAddress, s.localPort);
    const process = processes?.get(socketKey(s));
    const extra = process === undefined ? {} : { process };
    if (isListener(s)) {
      for (const [peer, peerSet] of representativePeers(model, s)) {
        out.push({ flow: { direction: 'ingress', peer, proto: s.proto, port: s.localPort }, kind: 'listener', local, peerSet, ...extra });
      }
      continue;
    }
    if (isLoopback(s.remoteAddress) || isUnspecified(s.remoteAddress) || s.remotePort === 0) continue;
    if (s.proto === 'tcp' && !activeTcp.has(s.state)) continue;
    if (s.proto === 'udp' && s.state !== 'established') continue;
    const inbound = s.proto === 'tcp' && listening.has(`tcp|${s.localPort}`);
    const flow: Flow = inbound
      ? { direction: 'ingress', peer: s.remoteAddress, proto: s.proto, port: s.localPort }
      : { direction: 'egress', peer: s.remoteAddress, proto: s.proto, port: s.remotePort };
    out.push({ flow, kind: 'connection', local, ...extra });
  }
  return out;
}

export function isListener(s: ProcSocket): boolean {
  if (isLoopback(s.localAddress)) return false;
  if (s.proto === 'tcp') return s.state === 'listen';
  return s.state === 'close' && isUnspecified(s.remoteAddress) && s.remotePort === 0;
}

/** Key shared with systeminformation's connection list: proto|local|remote. */
export function socketKey(s: { proto: string; localAddress: string; localPort: number; remoteAddress: string; remotePort: number }): string {
  return `${s.proto}|${s.localAddress}|${s.localPort}|${s.remoteAddress}|${s.remotePort}`;
}

function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

const anyPeer = { 4: '203.0.113.1', 6: '2001:db8:ffff::1' } as const;

/** [address, set name] pairs standing for every identity the listener can be reached from. */
export function representativePeers(model: HostModel, s: Pick<ProcSocket, 'family' | 'localAddress'>): [string, string][] {
  // A "::" listener is dual-stack unless bindv6only: it also takes IPv4 peers.
  const families: (4 | 6)[] = s.family === 4 ? [4] : isUnspecified(s.localAddress) ? [4, 6] : [6];
  const out: [string, string][] = [];
  for (const family of families) {
    let found = false;
    for (const set of Object.values(model.sets).sort((a, b) => a.name.localeCompare(b.name))) {
      const addr = representativeAddress(set, family, model);
      if (addr === undefined) continue;
      out.push([addr, set.name]);
      found = true;
    }
    if (!found) out.push([anyPeer[family], 'any']);
  }
  return out;
}

/** First address of the set (skipping a network address of a prefix shorter than /31) that is not excluded. */
export function representativeAddress(set: IdentitySet, family: 4 | 6, model: HostModel, avoid?: ReadonlySet<string>): string | undefined {
  const prefixes = family === 4 ? set.v4 : set.v6;
  const excluded = set.exclude === undefined ? [] : (family === 4 ? model.exclusions[set.exclude].v4 : model.exclusions[set.exclude].v6);
  for (const p of prefixes) {
    const parsed = parsePrefix(p);
    if (parsed === undefined) continue;
    // For "everything" (world, all), a documentation address reads better than 0.0.0.1.
    if (parsed.len === 0) {
      const doc = parseAddress(anyPeer[family]);
      if (doc !== undefined && !excluded.some((e) => contains(e, doc, parsed.bits))) return anyPeer[family];
    }
    const size = 1n << BigInt(parsed.bits - parsed.len);
    const first = size > 2n ? parsed.base + 1n : parsed.base;
    // Bounded: try a few candidates spread over the prefix to step out of excluded holes.
    const step = size > 64n ? size / 64n : 1n;
    for (let i = 0n, cand = first; i < 64n && cand < parsed.base + size; i++, cand += step) {
      const text = formatAddress(cand, parsed.bits);
      if (!excluded.some((e) => contains(e, cand, parsed.bits)) && avoid?.has(text) !== true) return text;
    }
  }
  return undefined;
}

interface Parsed { base: bigint; len: number; bits: 32 | 128 }

export function parsePrefix(cidr: string): Parsed | undefined {
  const [addr, lenText] = cidr.split('/');
  if (addr === undefined) return undefined;
  const value = parseAddress(addr);
  if (value === undefined) return undefined;
  const bits = addr.includes(':') ? 128 : 32;
  const len = lenText === undefined ? bits : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > bits) return undefined;
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - len)) - 1n);
  return { base: value & mask, len, bits };
}

export function parseAddress(text: string): bigint | undefined {
  if (!text.includes(':')) {
    const parts = text.split('.');
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
    return parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n);
  }
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl >= 0) { head = text.slice(0, dbl); tail = text.slice(dbl + 2); }
  const hs = head === '' ? [] : head.split(':');
  const ts = tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two groups.
  const expand = (groups: string[]): string[] | undefined => {
    const last = groups[groups.length - 1];
    if (last?.includes('.')) {
      const v4 = parseAddress(last);
      if (v4 === undefined) return undefined;
      return [...groups.slice(0, -1), (v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16)];
    }
    return groups;
  };
  const h = expand(hs);
  const t = dbl >= 0 ? expand(ts) : [];
  if (h === undefined || t === undefined) return undefined;
  const missing = 8 - h.length - t.length;
  if ((dbl >= 0 && missing < 1) || (dbl < 0 && missing !== 0)) return undefined;
  const all = [...h, ...Array<string>(Math.max(missing, 0)).fill('0'), ...t];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function contains(cidr: string, value: bigint, bits: 32 | 128): boolean {
  const p = parsePrefix(cidr);
  if (p === undefined || p.bits !== bits) return false;
  const shift = BigInt(p.bits - p.len);
  return (value >> shift) === (p.base >> shift);
}

function formatAddress(value: bigint, bits: 32 | 128): string {
  if (bits === 32) return [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn)).join('.');
  const bytes: number[] = [];
  for (let s = 120n; s >= 0n; s -= 8n) bytes.push(Number((value >> s) & 0xffn));
  return formatIPv6Bytes(bytes);
}
