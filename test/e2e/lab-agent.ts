// Runs inside one lab network namespace (started by lab.ts with nsenter) and
// executes probe commands read as JSON lines on stdin: servers (TCP echo, UDP
// echo), clients (TCP connect, UDP send/receive, ping) and held TCP
// connections. Every operation is bounded by a timeout; the process exits when
// stdin closes.

import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

interface Command {
  readonly id: number;
  readonly op: 'listen' | 'tcp' | 'udp' | 'ping' | 'open' | 'echo' | 'close';
  readonly proto?: 'tcp' | 'udp';
  readonly port?: number;
  readonly dst?: string;
  readonly src?: string;
  readonly address?: string;
  readonly conn?: number;
  readonly timeoutMs?: number;
}

const servers = new Map<string, Server | UdpSocket>();
const conns = new Map<number, Socket>();
const accepted = new Set<Socket>();
let nextConn = 1;

function reply(id: number, result: unknown, error?: string): void {
  process.stdout.write(`${JSON.stringify(error === undefined ? { id, ok: true, result } : { id, ok: false, error })}\n`);
}

/** `address` undefined = all addresses. UDP echo servers on a host with several addresses must bind one
 *  address each, or replies leave from the primary address and miss the client's connected socket. */
function listen(proto: 'tcp' | 'udp', port: number, address: string | undefined): Promise<string> {
  const key = `${proto}/${address ?? '*'}/${port}`;
  if (servers.has(key)) return Promise.resolve('already');
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const server = createServer((sock) => {
        accepted.add(sock);
        sock.on('error', () => sock.destroy());
        sock.on('close', () => accepted.delete(sock));
        sock.pipe(sock);
      });
      server.once('error', reject);
      server.listen({ host: address ?? '::', port, ipv6Only: false }, () => {
        servers.set(key, server);
        resolve('listening');
      });
    } else {
      const sock = createSocket(address === undefined ? { type: 'udp6', ipv6Only: false } : { type: address.includes(':') ? 'udp6' : 'udp4' });
      sock.once('error', reject);
      sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
      sock.bind(port, address ?? '::', () => {
        servers.set(key, sock);
        resolve('listening');
      });
    }
  });
}

function tcpConnect(dst: string, port: number, src: string | undefined, timeoutMs: number, keep: boolean): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: dst, port, ...(src === undefined ? {} : { localAddress: src }) });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve('timeout');
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      if (keep) {
        const id = nextConn++;
        conns.set(id, sock);
        sock.on('error', () => undefined);
        resolve(`conn:${id}`);
      } else {
        sock.destroy();
        resolve('connected');
      }
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : `error:${err.code ?? err.message}`);
    });
  });
}

function echo(conn: number, timeoutMs: number): Promise<string> {
  const sock = conns.get(conn);
  if (sock === undefined || sock.destroyed) return Promise.resolve('closed');
  return new Promise((resolve) => {
    const payload = `nodewall-${Date.now()}-${Math.random()}`;
    let got = '';
    const onData = (b: Buffer) => {
      got += b.toString();
      if (got.includes(payload)) done('echoed');
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    function done(r: string) {
      clearTimeout(timer);
      sock?.off('data', onData);
      resolve(r);
    }
    sock.on('data', onData);
    sock.write(payload);
  });
}

function udpProbe(dst: string, port: number, src: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = createSocket(dst.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    function finish(r: string) {
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        /* already closed */
      }
      resolve(r);
    }
    sock.on('message', () => finish('reply'));
    sock.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'refused' : `error:${err.code ?? err.message}`));
    sock.bind({ port: 0, ...(src === undefined ? {} : { address: src }) }, () => {
      sock.connect(port, dst, () => sock.send('nodewall-probe'));
    });
  });
}

function ping(dst: string, src: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const args = ['-n', '-c1', `-W${Math.max(timeoutMs, 100) / 1000}`, ...(src === undefined ? [] : ['-I', src]), dst];
    const child = spawn('ping', args, { stdio: 'ignore' });
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 2000);
    child.on('error', (err) => {
      clearTimeout(kill);
      resolve(`error:${err.message}`);
    });
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve(code === 0 ? 'reply' : 'timeout');
    });
  });
}

async function run(c: Command): Promise<unknown> {
  const timeoutMs = c.timeoutMs ?? 500;
  switch (c.op) {
    case 'listen':
      return listen(c.proto ?? 'tcp', c.port ?? 0, c.address);
    case 'tcp':
      return tcpConnect(c.dst ?? '', c.port ?? 0, c.src, timeoutMs, false);
    case 'open':
      return tcpConnect(c.dst ?? '', c.port ?? 0, c.src, timeoutMs, true);
    case 'echo':
      return echo(c.conn ?? 0, timeoutMs);
    case 'close': {
      conns.get(c.conn ?? 0)?.destroy();
      conns.delete(c.conn ?? 0);
      return 'closed';
    }
    case 'udp':
      return udpProbe(c.dst ?? '', c.port ?? 0, c.src, timeoutMs);
    case 'ping':
      return ping(c.dst ?? '', c.src, timeoutMs);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let c: Command;
  try {
    c = JSON.parse(line) as Command;
  } catch (err) {
    reply(-1, null, `bad command: ${String(err)}`);
    return;
  }
  run(c).then(
    (r) => reply(c.id, r),
    (err: unknown) => reply(c.id, null, err instanceof Error ? err.message : String(err)),
  );
});
rl.on('close', () => {
  for (const s of conns.values()) s.destroy();
  for (const s of accepted) s.destroy();
  for (const s of servers.values()) s.close();
  process.exit(0);
});
process.stdout.write(`${JSON.stringify({ id: 0, ok: true, result: 'ready' })}\n`);
