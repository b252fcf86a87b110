// A bounded sender that runs inside the lab's node namespace for as long as the test applies rulesets, and
// counts what the node's OUTPUT hook did to its packets: a locally generated packet that netfilter drops
// fails sendto() with EPERM, one it lets through returns normally. So the counts are the kernel's verdicts,
// taken without any of nodewall's own records. Python, since Node has no raw sockets; every loop bounded
// (a packet count and a maximum time), and the test kills it in teardown whatever happens.

import { spawn, type ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';

/** What the sender sends: an MLDv2 report to ff02::16 out of one link, or UDP to a documentation address. */
export type SendTarget =
  | { readonly kind: 'mld'; readonly ifname: string }
  | { readonly kind: 'udp'; readonly dst: string; readonly port: number };

export interface SendCounts {
  /** sendto() returned: the OUTPUT hook accepted the packet. */
  readonly passed: number;
  /** sendto() failed with EPERM: netfilter dropped the packet. */
  readonly eperm: number;
  /** Other errors (ENOBUFS, EAGAIN ...) by errno name: neither verdict, ignored by the tests. */
  readonly other: Readonly<Record<string, number>>;
  /** Why it ended: 'signal' (stopped by the test), 'count' (maxPackets reached) or 'time' (maxSeconds). */
  readonly stoppedBy: 'signal' | 'count' | 'time';
  readonly seconds: number;
}

const sender = String.raw`
import errno, json, signal, socket, sys, time
kind, dst, port, ifname = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
max_seconds, max_packets = float(sys.argv[5]), int(sys.argv[6])
if max_packets <= 0: max_packets = -1  # no limit
if kind == 'mld':
    if dst != 'ff02::16': sys.exit('mld: ff02::16 only')
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    addr = (dst, 0, 0, socket.if_nametoindex(ifname))
    payload = bytes([143, 0, 0, 0, 0, 0, 0, 0])  # MLDv2 report without records; the kernel fills the checksum
elif kind == 'udp':
    if not dst.lower().startswith('2001:db8:'): sys.exit('udp: documentation addresses only')
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    addr = (dst, port)
    payload = b'nodewall commit window'
else:
    sys.exit('unknown kind ' + kind)
stopped = []
signal.signal(signal.SIGTERM, lambda *_: stopped.append('signal'))
signal.signal(signal.SIGINT, lambda *_: stopped.append('signal'))
passed = eperm = attempts = 0
other = {}
start = time.monotonic()
deadline = start + max_seconds
send = s.sendto
while not stopped:
    if attempts == max_packets:
        stopped.append('count')
        break
    if attempts & 1023 == 0 and time.monotonic() > deadline:
        stopped.append('time')
        break
    attempts += 1
    # No function call per packet: it costs a third of the rate.
    try:
        send(payload, addr)
        passed += 1
    except OSError as e:
        if e.errno == errno.EPERM:
            eperm += 1
        else:
            name = errno.errorcode.get(e.errno, str(e.errno))
            other[name] = other.get(name, 0) + 1
    if attempts == 1:
        print('ready', flush=True)
print(json.dumps({'passed': passed, 'eperm': eperm, 'other': other, 'stoppedBy': stopped[0], 'seconds': time.monotonic() - start}), flush=True)
`;

export interface SendLoopOptions {
  /** The sender ends by itself after this long even if never stopped. */
  readonly maxSeconds?: number;
  /** ... or after this many send attempts (0: no limit). */
  readonly maxPackets?: number;
}

/** One running sender. `stop()` ends it and returns its counts; `kill()` is for teardown. */
export class SendLoop {
  private readonly child: ChildProcess;
  private readonly exited: Promise<string>;
  private stdout = '';

  private constructor(child: ChildProcess) {
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    this.exited = new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        if (code === 0) resolve(this.stdout);
        else reject(new Error(`sender exited with ${code ?? signal}: ${stderr.trim()}`));
      });
    });
    this.exited.catch(() => undefined);
  }

  /** Starts a sender in `netns`; resolves once it has made its first send attempt. Killed by t.teardown. */
  static async start(t: ExecutionContext, netns: string, target: SendTarget, opts: SendLoopOptions = {}): Promise<SendLoop> {
    const [dst, port, ifname] = target.kind === 'mld' ? ['ff02::16', 0, target.ifname] : [target.dst, target.port, '-'];
    const args = [String(port), ifname, String(opts.maxSeconds ?? 120), String(opts.maxPackets ?? 0)];
    const child = spawn('ip', ['netns', 'exec', netns, 'python3', '-c', sender, target.kind, dst, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const loop = new SendLoop(child);
    t.teardown(() => loop.kill());
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (b: Buffer) => {
        loop.stdout += b.toString();
        if (loop.stdout.startsWith('ready\n')) resolve();
      });
      loop.exited.then(() => resolve(), reject);
    });
    return loop;
  }

  /** Stops the sender (SIGTERM; it prints its counts and exits) and returns the counts. */
  async stop(): Promise<SendCounts> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.counts();
  }

  /** The counts of a sender that ends by itself (maxPackets). */
  async counts(): Promise<SendCounts> {
    const out = await this.exited;
    const last = out.trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as SendCounts;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Sends `packets` packets from `netns` and returns the counts (to check that the detection works). */
export async function sendPackets(t: ExecutionContext, netns: string, target: SendTarget, packets: number): Promise<SendCounts> {
  const loop = await SendLoop.start(t, netns, target, { maxPackets: packets });
  return loop.counts();
}

/** Counts as one line for t.log. */
export function countsText(c: SendCounts): string {
  const other = Object.entries(c.other).map(([k, n]) => `${k} ${n}`).join(', ');
  return `${c.passed} passed, ${c.eperm} EPERM${other === '' ? '' : `, other: ${other}`} (${Math.round((c.passed + c.eperm) / Math.max(c.seconds, 1e-3) / 1000)}k/s, ${c.seconds.toFixed(1)} s, ended by ${c.stoppedBy})`;
}
