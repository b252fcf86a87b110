// Sockets from /proc/net/{tcp,tcp6,udp,udp6}, parsed without a subprocess.
// systeminformation's networkConnections() never reports UDP on Linux
// (toolchain §5), so this parser is the source of truth for UDP and a
// cross-check for TCP.

import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';

export type SocketProto = 'tcp' | 'udp';

/** Kernel socket states (include/net/tcp_states.h). UDP uses established (connected) and close (bound). */
const stateNames: Readonly<Record<string, string>> = {
  '01': 'established', '02': 'syn-sent', '03': 'syn-recv', '04': 'fin-wait1', '05': 'fin-wait2',
  '06': 'time-wait', '07': 'close', '08': 'close-wait', '09': 'last-ack', '0A': 'listen', '0B': 'closing',
  '0C': 'new-syn-recv',
};

export interface ProcSocket {
  readonly proto: SocketProto;
  readonly family: 4 | 6;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** "established", "listen", "close", ... or the hex code when unknown. */
  readonly state: string;
  readonly uid: number;
  readonly inode: number;
}

/**
 * Parse the text of one /proc/net/{tcp,tcp6,udp,udp6} file. Lines that do not
 * have the expected shape are skipped (the header, a truncated last line).
 * `littleEndian` is the byte order of the kernel that wrote the file.
 */
export function parseProcNet(text: string, proto: SocketProto, littleEndian = endianness() === 'LE'): ProcSocket[] {
  const out: ProcSocket[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0] ?? '')) continue;
    const local = parseEndpoint(f[1] ?? '', littleEndian);
    const remote = parseEndpoint(f[2] ?? '', littleEndian);
    const st = (f[3] ?? '').toUpperCase();
    if (local === undefined || remote === undefined || !/^[0-9A-F]{2}$/.test(st)) continue;
    out.push({
      proto,
      family: local.family,
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
      state: stateNames[st] ?? st,
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return out;
}

function parseEndpoint(text: string, littleEndian: boolean): { address: string; port: number; family: 4 | 6 } | undefined {
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(text);
  if (m === null) return undefined;
  const hex = m[1] ?? '';
  const port = parseInt(m[2] ?? '', 16);
  // The address is an array of 32-bit words, each printed in host byte order.
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  if (bytes.length === 4) return { address: bytes.join('.'), port, family: 4 };
  // A v4-mapped address (dual-stack socket) is an IPv4 peer.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return { address: bytes.slice(12).join('.'), port, family: 4 };
  }
  return { address: formatIPv6(bytes), port, family: 6 };
}

/** RFC 5952 text form of 16 bytes: lower case, longest run (>= 2) of zero groups as "::". */
export function formatIPv6(bytes: readonly number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Read and parse all four files under `dir` (default /proc/net); a missing file (no IPv6) counts as empty. */
export async function readProcNet(dir = '/proc/net'): Promise<ProcSocket[]> {
  const files: readonly [string, SocketProto][] = [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']];
  const parts = await Promise.all(files.map(async ([name, proto]) => {
    try {
      return parseProcNet(await readFile(join(dir, name), 'utf8'), proto);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }));
  return parts.flat();
}

export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}
