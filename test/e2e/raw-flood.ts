// A bounded raw-packet sender for floods of distinct peers: TCP SYNs from `count` distinct IPv6 source
// addresses of a documentation /96 (2001:db8:...), sent from the lab's peer namespace with a raw socket
// (Python's, since Node has none). Paced (a millisecond every 200 packets) so the receiving veth backlog
// keeps up; every retry loop is bounded. Never leaves the lab's namespaces: the peer routes only to the node.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const sender = String.raw`
import socket, struct, sys, time
dst, prefix, count, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if not (dst.lower().startswith('2001:db8:') and prefix.lower().startswith('2001:db8:')): sys.exit('documentation addresses only')
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
dstb = socket.inet_pton(socket.AF_INET6, dst)
base = socket.inet_pton(socket.AF_INET6, prefix)[:12]
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
sent = 0
for i in range(count):
    src = base + struct.pack('!I', i + 1)
    tcp = struct.pack('!HHIIBBHHH', 40000 + (i % 20000), port, i, 0, 5 << 4, 0x02, 65535, 0, 0)
    c = csum(src + dstb + struct.pack('!I3xB', len(tcp), 6) + tcp)
    tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    pkt = struct.pack('!IHBB', 6 << 28, len(tcp), 6, 64) + src + dstb + tcp
    for attempt in range(2000):
        try:
            s.sendto(pkt, (dst, 0))
            break
        except OSError:
            time.sleep(0.001)
    else:
        sys.exit('send keeps failing after %d packets' % sent)
    sent += 1
    if sent % 200 == 0: time.sleep(0.001)
print(sent)
`;

/** Send `count` SYNs to [dst]:port from distinct sources prefix::1, prefix::2, ... inside `netns`; returns packets sent. */
export async function floodDistinctPeers(netns: string, dst: string, prefix: string, count: number, port: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-flood-'));
  try {
    const file = join(dir, 'flood.py');
    await writeFile(file, sender);
    const { stdout } = await run('ip', ['netns', 'exec', netns, 'python3', file, dst, prefix, String(count), String(port)], { timeout: 300_000 });
    return Number(stdout.trim());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
