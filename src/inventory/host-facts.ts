// Facts about the machine nodewall runs on. os.networkInterfaces() is used
// rather than systeminformation: it lists every address of every interface
// (systeminformation keeps one per family) and spawns nothing.

import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { canonicalAddress, parseAddress } from '../policy/cidr.js';

/**
 * Every address of every interface of this machine, canonical and sorted,
 * except:
 * - loopback (127.0.0.0/8, ::1): traffic to it never leaves the host, and
 *   nodewall's ruleset exempts the loopback interface anyway;
 * - IPv6 link-local (fe80::/10): the same fe80:: address can exist on many
 *   hosts and interfaces (it is only unique per link), so as a member of the
 *   `host` set it would claim peers' addresses as our own. Cilium's node
 *   discovery does not report them either.
 * The rest (node IPs, cilium_host router IP, secondary and bridge addresses)
 * all belong to the `host` identity (reference §4.3).
 */
export function localAddresses(ifaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const list of Object.values(ifaces)) {
    for (const info of list ?? []) {
      if (info.internal) continue;
      const addr = info.address.split('%')[0] ?? info.address;
      if (isLoopback(addr) || isIPv6LinkLocal(addr)) continue;
      try {
        out.add(canonicalAddress(addr));
      } catch {
        // An address the OS reports but we cannot parse cannot be matched either.
      }
    }
  }
  return [...out].sort(compareAddressText);
}

function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1';
}

function isIPv6LinkLocal(addr: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(addr);
}

/** IPv4 first, then numerically. */
function compareAddressText(a: string, b: string): number {
  const pa = parseAddress(a);
  const pb = parseAddress(b);
  if (pa.family !== pb.family) return pa.family === 'ipv4' ? -1 : 1;
  return pa.bits < pb.bits ? -1 : pa.bits > pb.bits ? 1 : 0;
}

/** This machine's hostname, the default node name. */
export function hostName(): string {
  return hostname();
}
