import { isIP } from 'node:net';
import { icmpTypeNumber } from '../api/icmp-types.js';
import type { Direction } from '../api/types.js';
import type { Flow, FlowProto } from '../verdict/types.js';
import { UsageError } from './options.js';

export interface FlowArgs {
  direction: Direction;
  peer: string;
  proto: string;
  port?: number | undefined;
  icmpType?: string | undefined;
  icmpCode?: number | undefined;
}

const portProtos = new Set(['tcp', 'udp', 'sctp']);

/** Check the trace flags and build the Flow; every mistake is a UsageError naming the flag. */
export function parseFlow(a: FlowArgs): Flow {
  const family = isIP(a.peer);
  if (family === 0) throw new UsageError(`--peer: "${a.peer}" is not an IP address`);
  const proto = a.proto.toLowerCase();
  let flowProto: FlowProto;
  if (/^\d+$/.test(proto)) {
    flowProto = Number(proto);
    if (flowProto > 255) throw new UsageError(`--proto: protocol number ${proto} is above 255`);
  } else if (portProtos.has(proto) || proto === 'icmp' || proto === 'icmpv6') {
    flowProto = proto as FlowProto;
  } else {
    throw new UsageError(`--proto: "${a.proto}" is not tcp, udp, sctp, icmp, icmpv6 or a protocol number`);
  }
  if (proto === 'icmp' && family === 6) throw new UsageError('--proto icmp needs an IPv4 --peer (use icmpv6)');
  if (proto === 'icmpv6' && family === 4) throw new UsageError('--proto icmpv6 needs an IPv6 --peer (use icmp)');

  if (portProtos.has(proto)) {
    if (a.port === undefined) throw new UsageError(`--port is required for ${proto}`);
    if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) {
      throw new UsageError(`--port: ${a.port} is not a port number (0-65535)`);
    }
    if (a.icmpType !== undefined) throw new UsageError(`--icmp-type does not apply to ${proto}`);
    return { direction: a.direction, peer: a.peer, proto: flowProto, port: a.port };
  }
  if (a.port !== undefined) throw new UsageError(`--port does not apply to ${proto}`);
  if (proto === 'icmp' || proto === 'icmpv6') {
    if (a.icmpType === undefined) throw new UsageError(`--icmp-type is required for ${proto}`);
    const fam = proto === 'icmp' ? 'IPv4' : 'IPv6';
    const raw = /^\d+$/.test(a.icmpType) ? Number(a.icmpType) : a.icmpType;
    const type = icmpTypeNumber(raw, fam);
    if (type === undefined || type > 255) {
      throw new UsageError(`--icmp-type: "${a.icmpType}" is not an ${fam} ICMP type (a number 0-255 or a name such as EchoRequest)`);
    }
    const code = a.icmpCode;
    if (code !== undefined && (!Number.isInteger(code) || code < 0 || code > 255)) {
      throw new UsageError(`--icmp-code: ${code} is not 0-255`);
    }
    return { direction: a.direction, peer: a.peer, proto: flowProto, icmpType: type, ...(code === undefined ? {} : { icmpCode: code }) };
  }
  return { direction: a.direction, peer: a.peer, proto: flowProto };
}
