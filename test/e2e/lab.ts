// Namespace lab: `node` (the host under test, 192.0.2.1 / 2001:db8::1) and
// `peer` (any documentation address on demand) joined by a veth pair. Probes
// send real packets and report what got through. Rulesets are loaded INSIDE
// the node namespace; the host's own ruleset is never touched.

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { runNft, type NftOutput } from '../../src/nft/nft-exec.js';
import type { Direction } from '../../src/api/types.js';
import { normalizeElement } from '../../src/nft/set-delta.js';

export const nftPath = '/usr/sbin/nft';
export const nodeV4 = '192.0.2.1';
export const nodeV6 = '2001:db8::1';

export type ProbeProto = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp' | number;

export interface Probe {
  readonly direction: Direction;
  /** Source address for ingress, destination for egress; must be a documentation address. */
  readonly peer: string;
  readonly proto: ProbeProto;
  readonly port?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

export type ProbeResult = 'allow' | 'deny' | 'unsendable';

const docRanges = [/^192\.0\.2\.\d+$/, /^198\.51\.100\.\d+$/, /^203\.0\.113\.\d+$/, /^2001:db8:/i];

export function isDocAddress(addr: string): boolean {
  return docRanges.some((r) => r.test(addr));
}

/** Why a probe cannot be sent by this lab, or undefined when it can. */
export function unsendableReason(p: Probe): string | undefined {
  if (!isDocAddress(p.peer)) return `peer ${p.peer} is not a documentation address`;
  if (p.peer === nodeV4 || p.peer === nodeV6) return 'peer is the node itself';
  const v6 = p.peer.includes(':');
  if (p.proto === 'tcp' || p.proto === 'udp' || p.proto === 'sctp') return p.port === undefined || p.port === 0 ? 'no port' : undefined;
  if (p.proto === 'icmp') return v6 ? 'ICMPv4 to an IPv6 peer' : undefined;
  if (p.proto === 'icmpv6') return v6 ? undefined : 'ICMPv6 to an IPv4 peer';
  if ([1, 6, 17, 58, 132].includes(p.proto)) return `protocol number ${p.proto} without its port or type`;
  return undefined;
}

/** Probes the lab sends as raw IP packets (socat) and detects with an observer table behind nodewall's chains. */
function isRaw(p: Probe): boolean {
  if (p.proto === 'icmp') return (p.icmpType ?? 8) !== 8;
  if (p.proto === 'icmpv6') return (p.icmpType ?? 128) !== 128;
  return p.proto !== 'tcp' && p.proto !== 'udp';
}

const rawMarker = 0xabcd;

/** IP payload of a raw probe and the 16 bits the observer records for it (th sport). */
function rawPacket(p: Probe): { proto: number; payload: Buffer; key: number } {
  if (p.proto === 'icmp' || p.proto === 'icmpv6') {
    const type = p.icmpType ?? 0;
    const code = p.icmpCode ?? 0;
    const b = Buffer.alloc(16);
    b.writeUInt8(type, 0);
    b.writeUInt8(code, 1);
    b.write('nodewall', 8);
    if (p.proto === 'icmp') b.writeUInt16BE(inetChecksum(b), 2); // ICMPv6: the kernel fills the checksum
    return { proto: p.proto === 'icmp' ? 1 : 58, payload: b, key: type * 256 + code };
  }
  const b = Buffer.alloc(16);
  b.writeUInt16BE(rawMarker, 0);
  if (p.proto === 'sctp') b.writeUInt16BE(p.port ?? 0, 2);
  return { proto: p.proto === 'sctp' ? 132 : Number(p.proto), payload: b, key: rawMarker };
}

function inetChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * A raw probe of a protocol the receiver does not speak (GRE, VRRP) makes its kernel answer with "protocol
 * unreachable"; with the probe untracked that error is not `related` and would be judged (and, in audit mode,
 * recorded) as a flow of its own. Kernel-generated errors quote an IP header at offset 8, probes do not.
 */
const unreachableDrops = [
  'icmp type destination-unreachable icmp code prot-unreachable @th,64,8 0x45 drop',
  'icmpv6 type parameter-problem icmpv6 code 1 @th,64,4 6 drop',
];

const peerQuietScript = [
  'table inet nwlab {',
  '\tchain quiet {',
  '\t\ttype filter hook output priority raw; policy accept;',
  ...unreachableDrops.map((r) => `\t\t${r}`),
  '\t}',
  '}',
  '',
].join('\n');

const observerScript = [
  'table inet nwobs {',
  ...['in_v4', 'in_v6', 'out_v4', 'out_v6'].map(
    (n) => `\tset ${n} { type ${n.endsWith('v4') ? 'ipv4_addr' : 'ipv6_addr'} . inet_proto . inet_service; flags dynamic; }`,
  ),
  // Every probe stands for a new flow (what `trace` evaluates). TCP, UDP and ICMP echo get fresh ports or ids;
  // other protocols and ICMP types would be tied by conntrack to earlier probes (a GRE probe out to X looks like the
  // reply to a GRE probe in from X), so they bypass conntrack here.
  ...['prerouting', 'output'].flatMap((hook) => [
    `\tchain notrack_${hook} {`,
    `\t\ttype filter hook ${hook} priority raw; policy accept;`,
    ...(hook === 'output' ? unreachableDrops.map((r) => `\t\t${r}`) : []),
    '\t\tmeta l4proto { tcp, udp } return',
    '\t\ticmp type { echo-request, echo-reply } return',
    '\t\ticmpv6 type { echo-request, echo-reply } return',
    '\t\tnotrack',
    '\t}',
  ]),
  '\tchain in {',
  '\t\ttype filter hook input priority 100; policy accept;',
  '\t\tupdate @in_v4 { ip saddr . meta l4proto . th sport }',
  '\t\tupdate @in_v6 { ip6 saddr . meta l4proto . th sport }',
  '\t}',
  '\tchain out {',
  '\t\ttype filter hook output priority 100; policy accept;',
  '\t\tupdate @out_v4 { ip daddr . meta l4proto . th sport }',
  '\t\tupdate @out_v6 { ip6 daddr . meta l4proto . th sport }',
  '\t}',
  '}',
  '',
].join('\n');

function sh(cmd: string, args: readonly string[], stdin?: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`, { cause: err }));
      else resolve(stdout);
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/** One lab-agent process inside a namespace. */
class Agent {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = '';
  readonly ready: Promise<unknown>;

  private readonly child: ChildProcessWithoutNullStreams;

  constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child;
    this.ready = new Promise((resolve, reject) => this.pending.set(0, { resolve, reject }));
    child.stdout.on('data', (b: Buffer) => {
      this.buffer += b.toString();
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const msg = JSON.parse(line) as { id: number; ok: boolean; result?: unknown; error?: string };
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.ok) p?.resolve(msg.result);
        else p?.reject(new Error(msg.error));
      }
    });
    child.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('lab agent exited'));
      this.pending.clear();
    });
  }

  call(cmd: Record<string, unknown>): Promise<string> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`lab agent: no answer to ${JSON.stringify(cmd)}`));
      }, 15_000);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(String(v));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(`${JSON.stringify({ id, ...cmd })}\n`);
    });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      const kill = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      this.child.once('close', () => {
        clearTimeout(kill);
        resolve();
      });
      this.child.stdin.end();
    });
  }
}

function startAgent(netns: string): Agent {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'lab-agent.js');
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, script], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Agent(child);
}

/** Labs alive at once in one test process (each holds two namespaces and two node processes). */
const maxLabs = 6;
let liveLabs = 0;
const waiting: (() => void)[] = [];

function acquireLabSlot(): Promise<void> {
  if (liveLabs < maxLabs) {
    liveLabs++;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiting.push(() => resolve()));
}

function releaseLabSlot(): void {
  const next = waiting.shift();
  if (next !== undefined) next();
  else liveLabs--;
}

export class Lab {
  readonly nodeNs: string;
  readonly peerNs: string;
  /** Milliseconds a probe waits before calling the flow dropped. */
  timeoutMs = 400;
  private node: Agent | undefined;
  private peer: Agent | undefined;
  private readonly peerAddrs = new Map<string, Promise<void>>();
  private readonly listening = new Map<string, Promise<void>>();
  /** Raw probes share the observer table, so they run one at a time. */
  private rawQueue: Promise<unknown> = Promise.resolve();
  private observer: Promise<void> | undefined;

  private constructor(tag: string) {
    const rand = randomBytes(3).toString('hex');
    this.nodeNs = `nwt-nft-${tag}-${rand}-n`;
    this.peerNs = `nwt-nft-${tag}-${rand}-p`;
  }

  /** A fresh lab, torn down by t.teardown even when the test fails. At most `maxLabs` live per test file. */
  static async create(t: ExecutionContext, tag: string): Promise<Lab> {
    await acquireLabSlot();
    const lab = new Lab(tag);
    t.teardown(async () => {
      try {
        await lab.destroy();
      } finally {
        releaseLabSlot();
      }
    });
    await lab.setup();
    return lab;
  }

  private async setup(): Promise<void> {
    const { nodeNs: n, peerNs: p } = this;
    await sh('ip', ['netns', 'add', n]);
    await sh('ip', ['netns', 'add', p]);
    // No DAD (addresses usable at once), no reverse-path filter (peers hold many source addresses).
    const sysctls = ['ipv6/conf/all/accept_dad', 'ipv6/conf/default/accept_dad', 'ipv4/conf/all/rp_filter', 'ipv4/conf/default/rp_filter'];
    for (const ns of [n, p]) {
      await sh('ip', ['netns', 'exec', ns, 'sh', '-c', sysctls.map((k) => `echo 0 > /proc/sys/net/${k}`).join(' && ')]);
    }
    const batch = [
      `link add nw0 netns ${n} type veth peer name nw1 netns ${p}`,
    ].join('\n');
    await sh('ip', ['-batch', '-'], `${batch}\n`);
    await sh('ip', ['-n', n, '-batch', '-'], [
      'link set lo up',
      'link set nw0 up',
      `addr add ${nodeV4}/24 dev nw0`,
      `addr add ${nodeV6}/64 dev nw0 nodad`,
      'route add 198.51.100.0/24 dev nw0',
      'route add 203.0.113.0/24 dev nw0',
      'route add 2001:db8::/32 dev nw0',
      '',
    ].join('\n'));
    await sh('ip', ['-n', p, '-batch', '-'], [
      'link set lo up',
      'link set nw1 up',
      `route add ${nodeV4}/32 dev nw1`,
      `route add ${nodeV6}/128 dev nw1`,
      '',
    ].join('\n'));
    this.node = startAgent(n);
    this.peer = startAgent(p);
    await Promise.all([this.node.ready, this.peer.ready]);
  }

  /** Give the peer namespace this source address (documentation ranges only). */
  addPeerAddress(addr: string): Promise<void> {
    return this.addPeerAddresses([addr]);
  }

  /** Several at once (one `ip -batch`); safe to call concurrently. */
  async addPeerAddresses(addrs: Iterable<string>): Promise<void> {
    const all = [...new Set(addrs)];
    for (const a of all) if (!isDocAddress(a)) throw new Error(`lab: ${a} is not a documentation address`);
    const todo = all.filter((a) => !this.peerAddrs.has(a));
    if (todo.length > 0) {
      const lines = todo.map((a) => (a.includes(':') ? `addr add ${a}/128 dev nw1 nodad` : `addr add ${a}/32 dev nw1`));
      const done = sh('ip', ['-n', this.peerNs, '-batch', '-'], `${lines.join('\n')}\n`).then(() => undefined);
      for (const a of todo) this.peerAddrs.set(a, done);
    }
    await Promise.all(all.map((a) => this.peerAddrs.get(a)));
  }

  /** nft inside the node namespace. */
  nft(args: readonly string[], stdin?: string): Promise<NftOutput> {
    return runNft(nftPath, args, { netns: this.nodeNs, ...(stdin === undefined ? {} : { stdin }) });
  }

  /** `nft -f -` inside the node namespace. */
  async load(script: string): Promise<void> {
    await this.nft(['-f', '-'], script);
  }

  /** Run a command inside a lab namespace. */
  exec(side: 'node' | 'peer', cmd: string, args: readonly string[]): Promise<string> {
    return sh('ip', ['netns', 'exec', side === 'node' ? this.nodeNs : this.peerNs, cmd, ...args]);
  }

  private agent(side: 'node' | 'peer'): Agent {
    const a = side === 'node' ? this.node : this.peer;
    if (a === undefined) throw new Error('lab not set up');
    return a;
  }

  /** Start a TCP echo or UDP echo server on `side` (all addresses, both families). */
  async listen(side: 'node' | 'peer', proto: 'tcp' | 'udp', port: number, address?: string): Promise<void> {
    const key = `${side}/${proto}/${address ?? '*'}/${port}`;
    let started = this.listening.get(key);
    if (started === undefined) {
      started = this.agent(side)
        .call({ op: 'listen', proto, port, ...(address === undefined ? {} : { address }) })
        .then(() => undefined);
      this.listening.set(key, started);
    }
    await started;
  }

  /** Send one flow; 'allow' when it got through (connected / refused / reply), 'deny' on timeout. */
  async probe(p: Probe): Promise<ProbeResult> {
    if (unsendableReason(p) !== undefined) return 'unsendable';
    await this.addPeerAddress(p.peer);
    if (isRaw(p)) {
      const run = this.rawQueue.then(() => this.rawProbe(p));
      this.rawQueue = run.catch(() => undefined);
      return run;
    }
    const v6 = p.peer.includes(':');
    const nodeAddr = v6 ? nodeV6 : nodeV4;
    const [client, server] = p.direction === 'ingress' ? (['peer', 'node'] as const) : (['node', 'peer'] as const);
    const dst = p.direction === 'ingress' ? nodeAddr : p.peer;
    const src = p.direction === 'ingress' ? p.peer : nodeAddr;
    let outcome: string;
    if (p.proto === 'tcp' || p.proto === 'udp') {
      // The peer holds many addresses: its UDP server must answer from the one that was asked.
      await this.listen(server, p.proto, p.port ?? 0, server === 'peer' && p.proto === 'udp' ? p.peer : undefined);
      outcome = await this.agent(client).call({ op: p.proto, dst, src, port: p.port, timeoutMs: this.timeoutMs });
    } else {
      outcome = await this.agent(client).call({ op: 'ping', dst, src, timeoutMs: this.timeoutMs });
    }
    if (outcome === 'connected' || outcome === 'refused' || outcome === 'reply') return 'allow';
    if (outcome === 'timeout') return 'deny';
    throw new Error(`lab probe ${JSON.stringify(p)}: ${outcome}`);
  }

  /**
   * Sends one raw IP packet (any ICMP type, SCTP, GRE, VRRP, ...) with socat and reports whether it got past
   * nodewall's chain: an observer table at priority 100 records (address, protocol, th sport) of every packet
   * nodewall accepted (accept in one base chain continues to the next; drop ends the packet).
   */
  private async rawProbe(p: Probe): Promise<ProbeResult> {
    this.observer ??= Promise.all([
      this.nft(['-f', '-'], observerScript),
      runNft(nftPath, ['-f', '-'], { netns: this.peerNs, stdin: peerQuietScript }),
    ]).then(() => undefined);
    await this.observer;
    const v6 = p.peer.includes(':');
    const dir = p.direction === 'ingress' ? 'in' : 'out';
    const set = `${dir}_${v6 ? 'v6' : 'v4'}`;
    await this.nft(['-f', '-'], ['in_v4', 'in_v6', 'out_v4', 'out_v6'].map((n) => `flush set inet nwobs ${n}`).join('\n') + '\n');
    const { proto, payload, key } = rawPacket(p);
    const nodeAddr = v6 ? nodeV6 : nodeV4;
    const [ns, dst, src] = p.direction === 'ingress' ? [this.peerNs, nodeAddr, p.peer] : [this.nodeNs, p.peer, nodeAddr];
    const addr = (a: string) => (v6 ? `[${a}]` : a);
    try {
      await sh('ip', ['netns', 'exec', ns, 'socat', '-u', 'STDIN', `IP${v6 ? 6 : 4}-SENDTO:${addr(dst)}:${proto},bind=${addr(src)}`], payload);
    } catch (err) {
      // A locally generated packet dropped by the output hook fails sendto() with EPERM.
      if (p.direction === 'egress' && err instanceof Error && err.message.includes('Operation not permitted')) return 'deny';
      throw err;
    }
    // The packet is normally through both chains when socat returns; a loaded machine may defer the receive
    // softirq, so a re-check (probeSure, long timeoutMs) keeps looking until timeoutMs.
    const wanted = `${normalizeElement(p.peer)} ${proto} ${key}`;
    const deadline = performance.now() + this.timeoutMs;
    for (let wait = 100; ; wait = 200) {
      await new Promise((r) => setTimeout(r, wait));
      const listing = (await this.nft(['-n', '-j', 'list', 'set', 'inet', 'nwobs', set])).stdout;
      if (observedKeys(listing).includes(wanted)) return 'allow';
      if (this.timeoutMs <= 400 || performance.now() >= deadline) return 'deny';
    }
  }

  /**
   * probe(), but a drop where `expected` is allow is re-checked once with a long wait: a loaded machine can
   * delay an answer past timeoutMs, while an unexpected allow can never be a timing artefact.
   */
  async probeSure(p: Probe, expected: 'allow' | 'deny'): Promise<ProbeResult> {
    const first = await this.probe(p);
    if (first !== 'deny' || expected === 'deny') return first;
    const saved = this.timeoutMs;
    this.timeoutMs = Math.max(saved, 2000);
    try {
      return await this.probe(p);
    } finally {
      this.timeoutMs = saved;
    }
  }

  /** Open a TCP connection from the peer (src) to the node and keep it; returns its id. */
  async openIngress(src: string, port: number): Promise<number> {
    await this.addPeerAddress(src);
    await this.listen('node', 'tcp', port);
    const r = await this.agent('peer').call({ op: 'open', dst: src.includes(':') ? nodeV6 : nodeV4, src, port, timeoutMs: this.timeoutMs });
    if (!r.startsWith('conn:')) throw new Error(`lab: connection from ${src} to port ${port}: ${r}`);
    return Number(r.slice(5));
  }

  /** Send data over a held connection; true when it came back. */
  async echo(conn: number, timeoutMs = this.timeoutMs): Promise<boolean> {
    return (await this.agent('peer').call({ op: 'echo', conn, timeoutMs })) === 'echoed';
  }

  async closeConn(conn: number): Promise<void> {
    await this.agent('peer').call({ op: 'close', conn });
  }

  async destroy(): Promise<void> {
    await Promise.allSettled([this.node?.stop(), this.peer?.stop()]);
    for (const ns of [this.nodeNs, this.peerNs]) {
      await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  }
}

function observedKeys(json: string): string[] {
  const doc = JSON.parse(json) as { nftables?: { set?: { elem?: unknown[] } }[] };
  const out: string[] = [];
  for (const item of doc.nftables ?? []) {
    for (const e of item.set?.elem ?? []) {
      const parts = (e as { concat?: unknown[] }).concat;
      if (Array.isArray(parts) && parts.length === 3) out.push(`${normalizeElement(String(parts[0]))} ${String(parts[1])} ${String(parts[2])}`);
    }
  }
  return out;
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return out;
}
