// Makes a FakeApiServer (listening on this process's loopback) reachable at
// the same address, 127.0.0.1:PORT, inside a lab network namespace, so an agent
// started with `ip netns exec` can use the kubeconfig the server writes (the
// certificate's IP SAN stays valid). Two plain TCP forwarders joined by a unix
// socket, which crosses namespaces because the filesystem is shared:
//   agent (netns) -> 127.0.0.1:PORT forwarder (child process in netns)
//     -> unix socket -> forwarder (this process) -> 127.0.0.1:PORT fake server
// TLS is end to end. When the fake server is closed, every forwarded
// connection is reset and new ones fail at once, as with an API server gone.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** Runs inside the namespace (node -e, CommonJS): argv = [socket path, port, listen address]. Exits when stdin closes. */
const forwarderScript = `
const net = require('node:net');
const [sock, port, host] = process.argv.slice(1);
const server = net.createServer((c) => {
  const up = net.connect(sock);
  const end = () => { c.destroy(); up.destroy(); };
  c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
  c.pipe(up); up.pipe(c);
});
server.listen(Number(port), host, () => process.stdout.write('ready\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

function pipeBoth(a: Socket, b: Socket): void {
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.on('error', end);
    s.on('close', end);
  }
  a.pipe(b);
  b.pipe(a);
}

/**
 * Forward 127.0.0.1:`port` (or `listen`:`port`, an address the namespace has) inside `netns` to
 * 127.0.0.1:`port` here; torn down with the test.
 */
export async function forwardIntoNetns(t: ExecutionContext, netns: string, port: number, listen = '127.0.0.1'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-int-fwd-'));
  const sockPath = join(dir, 'api.sock');
  const open = new Set<Socket>();
  const host: Server = createServer((c) => {
    const up = connect(port, '127.0.0.1');
    open.add(c);
    c.on('close', () => open.delete(c));
    pipeBoth(c, up);
  });
  await new Promise<void>((resolve, reject) => {
    host.once('error', reject);
    host.listen(sockPath, () => resolve());
  });
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', forwarderScript, sockPath, String(port), listen], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('close', r));
      child.stdin.end();
      const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(kill);
    }
    for (const s of open) s.destroy();
    await new Promise((r) => host.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`netns forwarder not ready within 30 s: ${stderr}`)), 30_000);
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`netns forwarder exited (${code}): ${stderr}`));
    });
  });
}
