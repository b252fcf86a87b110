// L4 and L7 checks of a policy entry (reference §2.3, §2.4): toPorts, ports,
// protocols, L7 rules and ICMP fields, with nodewall's warnings for named
// ports, DNS rules and TLS inspection on host rules.
import type { ICMPRule, PortProtocol, PortRule, RuleListName } from './types.js';
import { childPath } from './field-path.js';
import { isDenyList } from './peer-fields.js';
import { CRD_REJECTED_ICMP_NAME, ICMPV4_TYPES, ICMPV6_TYPES, icmpTypeNumber } from './icmp-types.js';
import { err, warn, type Ctx } from './validate-context.js';

export const CRD_PROTOCOLS: readonly string[] = ['TCP', 'UDP', 'SCTP', 'VRRP', 'IGMP', 'GRE', 'IPIP', 'IPV6', 'ESP', 'AH', 'ANY'];
export const EXTENDED_PROTOCOLS: readonly string[] = ['VRRP', 'IGMP', 'GRE', 'IPIP', 'IPV6', 'ESP', 'AH'];
const MAX_PORTS = 40;
const MAX_ICMP_FIELDS = 40;

// The CRD's `port` pattern; the numeric branch is anchored only at the start and
// the name branch only at the end, exactly as in the CRD (reference §1.5).
const CRD_PORT_PATTERN = /^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})|([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$/;

/** IANA service name: 1..15 of [a-z0-9-], at least one letter, no leading/trailing/double hyphen. */
export function isServiceName(port: string): boolean {
  return port.length <= 15 && /^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$/.test(port) && /[a-zA-Z]/.test(port);
}

/** Go strconv.ParseUint(s, 0, 16): decimal, 0x hex, 0o / leading-0 octal, 0b binary, `_` only after a prefix. */
export function parseGoPort(s: string): number | undefined {
  let digits = s;
  let base = 10;
  const lower = s.toLowerCase();
  if (lower.startsWith('0x')) { base = 16; digits = s.slice(2); }
  else if (lower.startsWith('0o')) { base = 8; digits = s.slice(2); }
  else if (lower.startsWith('0b')) { base = 2; digits = s.slice(2); }
  else if (s.length > 1 && s.startsWith('0')) { base = 8; digits = s.slice(1); }
  if (base !== 10) {
    if (digits.startsWith('_')) digits = digits.slice(1);
    if (/__|_$/.test(digits)) return undefined;
    digits = digits.replace(/_/g, '');
  }
  const valid = { 2: /^[01]+$/, 8: /^[0-7]+$/, 10: /^[0-9]+$/, 16: /^[0-9a-fA-F]+$/ }[base as 2 | 8 | 10 | 16];
  if (digits === '' || !valid.test(digits)) return undefined;
  const n = Number.parseInt(digits, base);
  return n <= 0xffff ? n : undefined;
}

export function validatePortRule(ctx: Ctx, r: PortRule, path: string, list: RuleListName, host: boolean): void {
  const ingress = list === 'ingress' || list === 'ingressDeny';
  const deny = isDenyList(list);
  const portsPath = childPath(path, 'ports');
  if ((r.ports?.length ?? 0) > MAX_PORTS) err(ctx, portsPath, `too many ports, the max is ${MAX_PORTS}`, 'ports-too-many');
  r.ports?.forEach((pp, i) => validatePortProtocol(ctx, pp, childPath(portsPath, i), ingress, deny, host));
  if (r.l7 !== undefined) validateL7(ctx, r, path, ingress, host);
}

function validatePortProtocol(ctx: Ctx, pp: PortProtocol, path: string, ingress: boolean, deny: boolean, host: boolean): void {
  const portPath = childPath(path, 'port');
  const protocol = pp.protocol ?? '';
  if (pp.protocol !== undefined && !CRD_PROTOCOLS.includes(protocol)) {
    const upper = protocol.toUpperCase();
    err(ctx, childPath(path, 'protocol'), CRD_PROTOCOLS.includes(upper)
      ? `protocol ${JSON.stringify(protocol)} must be upper-case (${upper}): the CRD enum is case-sensitive, so the API server rejects it`
      : `invalid protocol ${JSON.stringify(protocol)}, must be { tcp | udp | sctp | vrrp | igmp | gre | ipip | ipv6 | esp | ah | any }`,
    'protocol-invalid');
  }
  if (pp.endPort !== undefined && (pp.endPort < 0 || pp.endPort > 65535)) {
    err(ctx, childPath(path, 'endPort'), `endPort ${pp.endPort} is out of range 0..65535 (CRD)`, 'endport-range');
  }
  const port = pp.port ?? '';
  if (port === '') {
    if (!ctx.cfg.enableExtendedIPProtocols) err(ctx, portPath, 'port must be specified', 'port-missing');
    return;
  }
  if (!CRD_PORT_PATTERN.test(port)) {
    err(ctx, portPath, `port ${JSON.stringify(port)} does not match the CRD pattern (a number up to 65535 or a service name)`,
      'port-pattern');
    return;
  }
  if (isServiceName(port)) {
    if (host) {
      warn(ctx, portPath, ingress
        ? `named port ${JSON.stringify(port)} cannot be resolved for the host endpoint (it has no container ports): ` +
            `this entry ${deny ? 'denies' : 'allows'} nothing (Cilium most likely behaves the same)`
        : `named port ${JSON.stringify(port)} is resolved by Cilium against the peer pods' container ports; nodewall cannot ` +
            `resolve it: this entry ${deny ? 'denies nothing here; traffic Cilium would deny' : 'allows nothing here; traffic Cilium would allow'} ` +
            `to peer ports named ${port} will be ${deny ? 'ALLOWED' : 'DROPPED'}`,
      'unsupported/named-port');
    }
    return;
  }
  const n = parseGoPort(port);
  // Cilium compares the string: "00" is not "0" here.
  if (EXTENDED_PROTOCOLS.includes(protocol.toUpperCase()) && port !== '0') {
    err(ctx, portPath, 'port must be empty or 0', 'port-extended');
    return;
  }
  if (n === undefined) {
    err(ctx, portPath, `unable to parse port: strconv.ParseUint: parsing ${JSON.stringify(port)}: ` +
      (/^[0-9]+$/.test(port) && !port.startsWith('0') ? 'value out of range' : 'invalid syntax'), 'port-parse');
    return;
  }
  const decimal = /^[0-9]+$/.test(port) ? Number.parseInt(port, 10) : undefined;
  if (decimal !== undefined && decimal !== n) {
    warn(ctx, portPath, `port ${JSON.stringify(port)} has a leading zero, so Cilium reads it as octal: port ${n}, not ${decimal}`,
      'lint/octal-port');
  }
  if (pp.endPort !== undefined && pp.endPort !== 0 && n !== 0 && pp.endPort < n) {
    warn(ctx, childPath(path, 'endPort'),
      `endPort ${pp.endPort} is smaller than port ${n}: Cilium (and nodewall) use the single port ${n}, not a range`,
      'lint/end-port-below-port');
  }
}

function validateL7(ctx: Ctx, r: PortRule, path: string, ingress: boolean, host: boolean): void {
  const l7 = r.l7;
  if (l7 === undefined) return;
  const rulesPath = childPath(path, 'rules');
  const hasRules = l7.http || l7.dns || l7.kafka || l7.other.includes('l7proto') || l7.other.includes('l7');
  // Cilium refuses any L7 rule type on host ingress, not only HTTP and DNS.
  if (host && ingress && hasRules) {
    err(ctx, rulesPath, 'L7 policy is not supported on host ingress yet', 'l7-host-ingress');
  } else if (ingress && l7.dns) {
    err(ctx, rulesPath, 'DNS rules are not allowed on ingress', 'l7-dns-ingress');
  }
  if (host && !ingress && l7.http) err(ctx, rulesPath, 'L7 protocol HTTP is not supported on host egress yet', 'l7-host-egress');
  if (host && !ingress && l7.kafka) err(ctx, rulesPath, 'L7 protocol Kafka is not supported on host egress yet', 'l7-host-egress');
  const ports = r.ports ?? [];
  if (l7.dns) {
    if (ports.length === 0) err(ctx, path, 'port 53 must be specified for DNS rules', 'l7-dns-port');
    ports.forEach((pp, i) => {
      const start = pp.port === undefined || isServiceName(pp.port) ? undefined : parseGoPort(pp.port);
      if (start !== undefined && (pp.endPort ?? 0) > start) {
        err(ctx, childPath(childPath(childPath(path, 'ports'), i), 'endPort'), 'DNS rules do not support port ranges', 'l7-dns-range');
      }
    });
  }
  if (hasRules) {
    ports.forEach((pp, i) => {
      const pp_ = childPath(childPath(path, 'ports'), i);
      // Checked before the protocol is normalised: ANY and an omitted protocol are refused too.
      if (!l7.dns && pp.protocol !== 'TCP') {
        err(ctx, childPath(pp_, 'protocol'), `L7 rules can only apply to TCP (not ${pp.protocol ?? ''}) except for DNS rules` +
          (pp.protocol === undefined ? ' (an omitted protocol means ANY)' : ''), 'l7-protocol');
      }
      if (pp.port === '0') err(ctx, childPath(pp_, 'port'), 'L7 rules can not be used when a port is 0', 'l7-port-zero');
    });
  }
  if (l7.other.includes('l7') && !l7.other.includes('l7proto')) {
    err(ctx, rulesPath, "'l7' may only be specified when a 'l7proto' is also specified", 'l7-proto');
  }
  if ([l7.http, l7.kafka, l7.dns, l7.other.includes('l7proto')].filter(Boolean).length > 1) {
    err(ctx, rulesPath, 'multiple L7 protocol rule types specified in single rule', 'l7-multiple');
  }
  if (l7.other.includes('listener')) {
    if (ingress) err(ctx, childPath(path, 'listener'), 'Listener is not allowed on ingress (listener)', 'l7-listener');
    else if (hasRules) err(ctx, childPath(path, 'listener'), 'Listener is not allowed with L7 rules (listener)', 'l7-listener');
  }
  l7.serverNames?.forEach((s, i) => {
    if (s === '') err(ctx, childPath(childPath(path, 'serverNames'), i), 'empty server name is not allowed', 'l7-server-name');
  });
  if (l7.serverNames !== undefined && hasRules && !l7.other.includes('terminatingTLS')) {
    err(ctx, childPath(path, 'serverNames'), 'ServerNames are not allowed with L7 rules without TLS termination', 'l7-server-names');
  }
  if (!host) return;
  if (!ingress && l7.dns) {
    const portsList = ports.map((pp) => `${pp.port ?? '0'}/${pp.protocol ?? 'ANY'}`).join(', ');
    warn(ctx, rulesPath,
      `DNS rules are not applied by nodewall (no DNS proxy): the L4 part is honoured, so this entry allows all DNS ` +
        `queries on ${portsList || 'port 53'} to these peers; Cilium would allow only names matching ` +
        `${(l7.dnsPatterns ?? []).map((s) => JSON.stringify(s)).join(', ') || '(no pattern)'}`,
      'unsupported/dns-rules');
  }
  const tls = l7.other.filter((o) => o !== 'l7proto' && o !== 'l7');
  if (tls.length > 0) {
    warn(ctx, childPath(path, tls[0] ?? 'rules'),
      `${tls.join(', ')} ${tls.length > 1 ? 'are' : 'is'} not applied by nodewall (L3/L4 only): this entry allows all ` +
        'traffic on its ports, Cilium would additionally inspect it (TLS/SNI) and drop what does not match',
      'unsupported/tls');
  }
}

export function validateICMPRule(ctx: Ctx, r: ICMPRule, path: string): void {
  const fieldsPath = childPath(path, 'fields');
  if ((r.fields?.length ?? 0) > MAX_ICMP_FIELDS) err(ctx, fieldsPath, `too many types, the max is ${MAX_ICMP_FIELDS}`, 'icmp-too-many');
  r.fields?.forEach((f, i) => {
    const fp = childPath(fieldsPath, i);
    const family = f.family ?? 'IPv4';
    if (family !== 'IPv4' && family !== 'IPv6') {
      err(ctx, childPath(fp, 'family'), `wrong family: ${family}`, 'icmp-family');
      return;
    }
    const tp = childPath(fp, 'type');
    if (typeof f.type === 'number') {
      if (f.type < 0 || f.type > 255) {
        warn(ctx, tp, `ICMP type ${f.type} is outside 0..255: Cilium accepts it but it never matches any packet (nor in nodewall)`,
          'lint/icmp-type-range');
      }
      return;
    }
    if (f.type === CRD_REJECTED_ICMP_NAME) {
      const n = family === 'IPv6' ? ICMPV6_TYPES[f.type] : ICMPV4_TYPES[f.type];
      err(ctx, tp, `ICMP type name ${f.type} is rejected by the API server (the CRD pattern misspells it); write the number ${n} instead`,
        'icmp-type-crd');
      return;
    }
    if (/^[0-9]+$/.test(f.type)) {
      if (!/^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/.test(f.type)) {
        err(ctx, tp, `ICMP type ${JSON.stringify(f.type)} does not match the CRD pattern (0..255 or a type name)`, 'icmp-type-crd');
      }
      return;
    }
    if (icmpTypeNumber(f.type, family) === undefined) {
      err(ctx, tp, `ICMP type ${f.type} not found in ${family}`, 'icmp-type-name');
    }
  });
}
