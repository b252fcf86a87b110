import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import type { PeerRule, PortProtocol } from '../../src/api/types.js';
import type { L4Match } from '../../src/policy/model.js';
import { mergeRanges, parsePortNumber, portRange, resolveL4 } from '../../src/policy/resolve-l4.js';
import { l4Matches } from '../../src/verdict/evaluate.js';
import { config } from '../helpers/policy-builders.js';

const cfg = config();
const l4 = (r: PeerRule, c = cfg): L4Match[] => resolveL4(r, c).l4;
const tp = (...ports: PortProtocol[]): PeerRule => ({ toPorts: [{ ports }] });

test('no toPorts and no icmps = every protocol; empty lists count as absent', (t) => {
  t.deepEqual(l4({}), [{ kind: 'all' }]);
  t.deepEqual(l4({ toPorts: [] }), [{ kind: 'all' }]);
  t.deepEqual(l4({ icmps: [] }), [{ kind: 'all' }]);
});

test('toPorts: [{}] and ports: [] match nothing, with a note', (t) => {
  for (const r of [{ toPorts: [{}] }, { toPorts: [{ ports: [] }] }] as PeerRule[]) {
    const res = resolveL4(r, cfg);
    t.deepEqual(res.l4, []);
    t.regex(res.notes.join(' '), /matches nothing/);
  }
  const icmp = resolveL4({ icmps: [{}] }, cfg);
  t.deepEqual(icmp.l4, []);
  t.regex(icmp.notes.join(' '), /icmps/);
});

test('ANY and empty protocol expand to tcp, udp, sctp (no ICMP)', (t) => {
  const want: L4Match[] = [
    { kind: 'ports', proto: 'tcp', ranges: [[53, 53]] },
    { kind: 'ports', proto: 'udp', ranges: [[53, 53]] },
    { kind: 'ports', proto: 'sctp', ranges: [[53, 53]] },
  ];
  t.deepEqual(l4(tp({ port: '53', protocol: 'ANY' })), want);
  t.deepEqual(l4(tp({ port: '53' })), want);
  t.deepEqual(l4(tp({ port: '53', protocol: 'any' })), want, 'the Go parser is case-insensitive');
});

test('port 0 = all ports, with or without endPort', (t) => {
  t.deepEqual(l4(tp({ port: '0', protocol: 'TCP' })), [{ kind: 'ports', proto: 'tcp', ranges: [[0, 65535]] }]);
  t.deepEqual(l4(tp({ port: '0', endPort: 100, protocol: 'UDP' })), [{ kind: 'ports', proto: 'udp', ranges: [[0, 65535]] }]);
});

test('endPort ranges; endPort <= port is the single port', (t) => {
  t.deepEqual(l4(tp({ port: '8000', endPort: 8080, protocol: 'TCP' })), [{ kind: 'ports', proto: 'tcp', ranges: [[8000, 8080]] }]);
  t.deepEqual(l4(tp({ port: '8080', endPort: 8000, protocol: 'TCP' })), [{ kind: 'ports', proto: 'tcp', ranges: [[8080, 8080]] }]);
  t.deepEqual(l4(tp({ port: '8080', endPort: 8080, protocol: 'TCP' })), [{ kind: 'ports', proto: 'tcp', ranges: [[8080, 8080]] }]);
});

test('ports across toPorts entries are ORed and merged per protocol', (t) => {
  const r: PeerRule = { toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }, { port: '23', protocol: 'TCP' }] }, { ports: [{ port: '80', protocol: 'TCP' }, { port: '53', protocol: 'UDP' }] }] };
  t.deepEqual(l4(r), [
    { kind: 'ports', proto: 'tcp', ranges: [[22, 23], [80, 80]] },
    { kind: 'ports', proto: 'udp', ranges: [[53, 53]] },
  ]);
});

test('port strings: octal like Go, named ports match nothing', (t) => {
  t.is(parsePortNumber('010'), 8);
  t.is(parsePortNumber('80'), 80);
  t.is(parsePortNumber('0'), 0);
  t.is(parsePortNumber('65535'), 65535);
  t.is(parsePortNumber('65536'), undefined);
  t.is(parsePortNumber('09'), undefined);
  t.deepEqual(l4(tp({ port: '010', protocol: 'TCP' })), [{ kind: 'ports', proto: 'tcp', ranges: [[8, 8]] }]);
  const named = resolveL4(tp({ port: 'http', protocol: 'TCP' }), cfg);
  t.deepEqual(named.l4, []);
  t.regex(named.notes.join(' '), /named port "http"/);
  const mixed = resolveL4(tp({ port: 'https', protocol: 'TCP' }, { port: '22', protocol: 'TCP' }), cfg);
  t.deepEqual(mixed.l4, [{ kind: 'ports', proto: 'tcp', ranges: [[22, 22]] }]);
  t.deepEqual(portRange({ port: '0x50', protocol: 'TCP' }), undefined);
});

test('extended protocols only with enableExtendedIPProtocols', (t) => {
  const r = tp({ protocol: 'VRRP' }, { port: '0', protocol: 'GRE' });
  t.deepEqual(l4(r, config({ enableExtendedIPProtocols: true })), [
    { kind: 'proto', proto: 47, name: 'gre' },
    { kind: 'proto', proto: 112, name: 'vrrp' },
  ]);
  const off = resolveL4(r, cfg);
  t.deepEqual(off.l4, []);
  t.regex(off.notes.join(' '), /enableExtendedIPProtocols/);
  const all = l4(tp({ protocol: 'IGMP' }, { protocol: 'IPIP' }, { protocol: 'IPV6' }, { protocol: 'ESP' }, { protocol: 'AH' }), config({ enableExtendedIPProtocols: true }));
  t.deepEqual(all.map((m) => (m.kind === 'proto' ? m.proto : -1)), [2, 4, 41, 50, 51]);
});

test('icmps by number and by name per family; code ignored', (t) => {
  const r: PeerRule = {
    icmps: [
      { fields: [{ type: 8 }, { type: 'EchoReply', family: 'IPv4' }] },
      { fields: [{ type: 'EchoRequest', family: 'IPv6' }, { type: '129', family: 'IPv6' }] },
    ],
  };
  t.deepEqual(l4(r), [
    { kind: 'icmp', family: 'ipv4', types: [0, 8] },
    { kind: 'icmp', family: 'ipv6', types: [128, 129] },
  ]);
  const bad = resolveL4({ icmps: [{ fields: [{ type: 'PacketTooBig', family: 'IPv4' }, { type: 300 }] }] }, cfg);
  t.deepEqual(bad.l4, []);
  t.is(bad.notes.length, 2);
});

test('L7 content keeps its L4 part and says so', (t) => {
  const res = resolveL4({ toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }], l7: { http: false, dns: true, kafka: false, other: [] } }] }, cfg);
  t.deepEqual(res.l4, [{ kind: 'ports', proto: 'udp', ranges: [[53, 53]] }]);
  t.regex(res.notes.join(' '), /DNS/);
});

const portSpec = fc.record({
  port: fc.integer({ min: 0, max: 65535 }),
  endPort: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
  protocol: fc.constantFrom('TCP', 'UDP', 'SCTP', 'ANY', undefined),
});

function inSpec(s: { port: number; endPort: number | undefined; protocol: string | undefined }, proto: string, port: number): boolean {
  const protos = s.protocol === undefined || s.protocol === 'ANY' ? ['tcp', 'udp', 'sctp'] : [s.protocol.toLowerCase()];
  if (!protos.includes(proto)) return false;
  if (s.port === 0) return true;
  const end = s.endPort !== undefined && s.endPort > s.port ? s.endPort : s.port;
  return port >= s.port && port <= end;
}

testProp(
  'a port matches an entry iff it lies in one of the written ranges',
  [fc.array(portSpec, { minLength: 1, maxLength: 6 }), fc.constantFrom('tcp', 'udp', 'sctp'), fc.integer({ min: 0, max: 65535 })],
  (t, specs, proto, port) => {
    const rule: PeerRule = {
      toPorts: [
        {
          ports: specs.map((s) => ({
            port: String(s.port),
            ...(s.endPort === undefined ? {} : { endPort: s.endPort }),
            ...(s.protocol === undefined ? {} : { protocol: s.protocol }),
          })),
        },
      ],
    };
    const ms = l4(rule);
    const got = ms.some((m) => l4Matches(m, proto, { direction: 'ingress', peer: '192.0.2.1', proto, port }));
    t.is(got, specs.some((s) => inSpec(s, proto, port)));
  },
);

testProp('mergeRanges keeps membership and yields sorted disjoint ranges', [fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 50 })), { maxLength: 8 }), fc.integer({ min: 0, max: 260 })], (t, raw, p) => {
  const rs = raw.map(([lo, w]) => [lo, lo + w] as [number, number]);
  const merged = mergeRanges(rs);
  t.is(merged.some(([lo, hi]) => p >= lo && p <= hi), rs.some(([lo, hi]) => p >= lo && p <= hi));
  for (let i = 1; i < merged.length; i++) t.true(merged[i]![0] > merged[i - 1]![1] + 1);
});

test('named port notes depend on the direction', (t) => {
  t.regex(resolveL4(tp({ port: 'dns', protocol: 'UDP' }), cfg, 'egress').notes.join(), /peers' container ports/);
  t.regex(resolveL4(tp({ port: 'dns', protocol: 'UDP' }), cfg, 'ingress').notes.join(), /host endpoint/);
});
