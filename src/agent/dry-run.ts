// Dry-run: nothing is written to the kernel. The agent reports, for every
// live connection and listening socket of the node, the verdict the model
// would give (see live-flows.ts for how sockets become flows), once per
// distinct flow and outcome.

import si from 'systeminformation';
import type { HostModel } from '../policy/model.js';
import type { Flow, Verdict } from '../verdict/types.js';
import { liveFlows, socketKey } from './live-flows.js';
import { readProcNet, type ProcSocket } from './proc-net.js';
import { dedupeKey, verdictLine, type Deduper, type VerdictLine } from './verdict-line.js';

export interface ConnectionSnapshot {
  readonly sockets: ProcSocket[];
  /** socketKey -> "name(pid)" from systeminformation, when it knows the owner. */
  readonly processes: Map<string, string>;
  /** systeminformation failed or found no tool (netstat/ss): the report still has /proc/net. */
  readonly siError?: string;
}

const siStates: Readonly<Record<string, string>> = { LISTEN: 'listen', ESTABLISHED: 'established', SYN_RECV: 'syn-recv', SYN_SENT: 'syn-sent' };

function unmap(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * /proc/net/{tcp,tcp6,udp,udp6} for every socket (si misses UDP), merged with
 * systeminformation's TCP list, which adds the owning process and any TCP
 * socket /proc did not show.
 */
export async function snapshotConnections(procDir?: string): Promise<ConnectionSnapshot> {
  const sockets = await readProcNet(procDir);
  const known = new Set(sockets.map(socketKey));
  const processes = new Map<string, string>();
  let siError: string | undefined;
  try {
    for (const c of await si.networkConnections()) {
      if (!c.protocol.startsWith('tcp')) continue;
      const state = siStates[c.state];
      const localPort = Number(c.localPort);
      if (state === undefined || !Number.isInteger(localPort)) continue;
      const remotePort = c.peerPort === '*' ? 0 : Number(c.peerPort);
      const s: ProcSocket = {
        proto: 'tcp',
        family: c.localAddress.includes(':') && !c.localAddress.toLowerCase().startsWith('::ffff:') ? 6 : 4,
        localAddress: unmap(c.localAddress === '*' ? '0.0.0.0' : c.localAddress),
        localPort,
        remoteAddress: unmap(c.peerAddress === '*' ? '0.0.0.0' : c.peerAddress),
        remotePort: Number.isInteger(remotePort) ? remotePort : 0,
        state,
        uid: -1,
        inode: 0,
      };
      const key = socketKey(s);
      if (c.process !== '' || (c.pid ?? 0) > 0) processes.set(key, c.pid ? `${c.process}(${c.pid})` : c.process);
      if (!known.has(key)) {
        known.add(key);
        sockets.push(s);
      }
    }
  } catch (err) {
    siError = err instanceof Error ? err.message : String(err);
  }
  return { sockets, processes, ...(siError === undefined ? {} : { siError }) };
}

/** Every verdict line for a snapshot, without duplicates, in a stable order. */
export function verdictReport(
  model: HostModel,
  snapshot: Pick<ConnectionSnapshot, 'sockets' | 'processes'>,
  evaluate: (model: HostModel, flow: Flow) => Verdict,
): VerdictLine[] {
  const byKey = new Map<string, VerdictLine>();
  for (const lf of liveFlows(snapshot.sockets, model, snapshot.processes)) {
    const line = verdictLine(lf, evaluate(model, lf.flow));
    byKey.set(dedupeKey(line), line);
  }
  return [...byKey.values()].sort(compareLines);
}

/** The lines not reported before (and remember them). */
export function freshLines(lines: readonly VerdictLine[], deduper: Deduper): VerdictLine[] {
  return lines.filter((l) => deduper.fresh(dedupeKey(l)));
}

export function summarize(lines: readonly VerdictLine[]): { connections: number; listeners: number; wouldAllow: number; wouldDeny: number } {
  return {
    connections: lines.filter((l) => l.kind === 'connection').length,
    listeners: lines.filter((l) => l.kind === 'listener').length,
    wouldAllow: lines.filter((l) => l.verdict === 'would-allow').length,
    wouldDeny: lines.filter((l) => l.verdict === 'would-deny').length,
  };
}

function compareLines(a: VerdictLine, b: VerdictLine): number {
  return (
    a.kind.localeCompare(b.kind) ||
    a.direction.localeCompare(b.direction) ||
    a.proto.localeCompare(b.proto) ||
    (a.port ?? -1) - (b.port ?? -1) ||
    a.peer.localeCompare(b.peer) ||
    (a.local ?? '').localeCompare(b.local ?? '')
  );
}

/** Fixed-width table for `nodewall audit`. */
export function formatTable(lines: readonly VerdictLine[]): string {
  const header = ['KIND', 'DIRECTION', 'PEER', 'PROTO', 'PORT', 'LOCAL', 'VERDICT', 'POLICY', 'RULE'];
  const rows = lines.map((l) => [
    l.kind,
    l.direction,
    l.peerSet === undefined ? l.peer : `${l.peer} (${l.peerSet})`,
    l.proto,
    l.port === undefined ? '-' : String(l.port),
    l.local ?? '-',
    l.verdict,
    l.policy ?? '-',
    l.rule + (l.count === undefined ? '' : ` x${l.count}`),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
