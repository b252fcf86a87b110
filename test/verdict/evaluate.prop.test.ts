// Differential property: buildHostModel + evaluate against a direct reading of
// the reference (§4.1, §4.3, §4.4, §5, §6.3-6.7), written without identity sets,
// for random host rules in one direction (the other must stay untouched).
import { fc, testProp } from '@fast-check/ava';
import type { Direction, PeerRule, PolicyDocument } from '../../src/api/types.js';
import type { EnforcementMode } from '../../src/inventory/types.js';
import { buildHostModel } from '../../src/policy/build-model.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { baseInventory, ccnp, config, hostRule, type RuleSpec } from '../helpers/policy-builders.js';

// The base inventory, classified by hand.
const host = ['192.0.2.1'];
const remote = ['192.0.2.2', '192.0.2.3'];
const health = ['192.0.2.101', '192.0.2.102'];
const api = ['192.0.2.2', '192.0.2.50'];
const isPod = (a: string): boolean => a.startsWith('198.51.100.');
const clusterExcl = (a: string): boolean => host.includes(a) || remote.includes(a) || health.includes(a) || isPod(a);
const addresses = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.50', '192.0.2.101', '198.51.100.10', '198.51.100.200', '203.0.113.5', '10.1.2.3'];
const cidrs: Record<string, (a: string) => boolean> = {
  '192.0.2.0/24': (a) => a.startsWith('192.0.2.'),
  '203.0.113.0/24': (a) => a.startsWith('203.0.113.'),
  '10.0.0.0/8': (a) => a.startsWith('10.'),
  '198.51.100.0/24': isPod,
  '0.0.0.0/0': () => true,
};
const entities: Record<string, (a: string) => boolean> = {
  world: (a) => !clusterExcl(a),
  host: (a) => host.includes(a),
  'remote-node': (a) => remote.includes(a),
  health: (a) => health.includes(a),
  'kube-apiserver': (a) => api.includes(a),
  cluster: (a) => clusterExcl(a) || api.includes(a),
  all: () => true,
  none: () => false,
};

type Peer = { kind: 'absent' } | { kind: 'entities'; names: string[] } | { kind: 'cidr'; list: string[] };
type L4 = { kind: 'absent' } | { kind: 'empty' } | { kind: 'ports'; ports: { port: number; endPort?: number; protocol?: string }[] };
interface EntrySpec { peer: Peer; l4: L4 }

const peerArb: fc.Arbitrary<Peer> = fc.oneof(
  fc.constant<Peer>({ kind: 'absent' }),
  fc.array(fc.constantFrom(...Object.keys(entities)), { maxLength: 2 }).map((names): Peer => ({ kind: 'entities', names })),
  fc.array(fc.constantFrom(...Object.keys(cidrs)), { maxLength: 2 }).map((list): Peer => ({ kind: 'cidr', list })),
);
const portArb = fc.record(
  { port: fc.constantFrom(0, 22, 53, 80, 443, 8000), endPort: fc.constantFrom(0, 25, 8080), protocol: fc.constantFrom('TCP', 'UDP', 'ANY') },
  { requiredKeys: ['port'] },
);
const l4Arb: fc.Arbitrary<L4> = fc.oneof(
  fc.constant<L4>({ kind: 'absent' }),
  fc.constant<L4>({ kind: 'empty' }),
  fc.array(portArb, { minLength: 1, maxLength: 3 }).map((ports): L4 => ({ kind: 'ports', ports })),
);
const entryArb = fc.record({ peer: peerArb, l4: l4Arb });
const ruleArb = fc.record({
  selects: fc.constantFrom('all', 'worker', 'infra'),
  dd: fc.constantFrom(undefined, true, false),
  allow: fc.array(entryArb, { maxLength: 3 }),
  deny: fc.array(entryArb, { maxLength: 2 }),
});
type RuleArb = { selects: string; dd: boolean | undefined; allow: EntrySpec[]; deny: EntrySpec[] };

function toPeerRule(e: EntrySpec): PeerRule {
  const out: { -readonly [K in keyof PeerRule]: PeerRule[K] } = {};
  if (e.peer.kind === 'entities') out.entities = e.peer.names;
  if (e.peer.kind === 'cidr') out.cidr = e.peer.list;
  if (e.l4.kind === 'empty') out.toPorts = [{}];
  if (e.l4.kind === 'ports') {
    out.toPorts = [{ ports: e.l4.ports.map((p) => ({ port: String(p.port), ...(p.endPort === undefined ? {} : { endPort: p.endPort }), ...(p.protocol === undefined ? {} : { protocol: p.protocol }) })) }];
  }
  return out;
}

function toPolicy(r: RuleArb, i: number, dir: Direction): PolicyDocument {
  const spec: RuleSpec = hostRule({
    nodeSelector: r.selects === 'all' ? {} : { matchLabels: { role: r.selects } },
    ...(r.dd === undefined ? {} : { enableDefaultDeny: { [dir]: r.dd } }),
    ...(r.allow.length > 0 ? { [dir]: r.allow.map(toPeerRule) } : {}),
    ...(r.deny.length > 0 ? { [dir === 'ingress' ? 'ingressDeny' : 'egressDeny']: r.deny.map(toPeerRule) } : {}),
  });
  return ccnp(`p${i}`, spec);
}

function oracleEntry(e: EntrySpec, peer: string, proto: string, port: number): boolean {
  let peerOk: boolean;
  if (e.peer.kind === 'absent') {
    if (e.l4.kind === 'absent') return false; // `{}`: matches nothing
    peerOk = true;
  } else if (e.peer.kind === 'entities') {
    if (e.peer.names.length === 0) return false;
    peerOk = e.peer.names.some((n) => entities[n]!(peer));
  } else {
    if (e.peer.list.length === 0) return false;
    peerOk = e.peer.list.some((c) => cidrs[c]!(peer) && !clusterExcl(peer));
  }
  if (!peerOk) return false;
  if (e.l4.kind === 'absent') return true;
  if (e.l4.kind === 'empty') return false;
  return e.l4.ports.some((p) => {
    const protos = p.protocol === 'ANY' || p.protocol === undefined ? ['tcp', 'udp', 'sctp'] : [p.protocol.toLowerCase()];
    if (!protos.includes(proto)) return false;
    if (p.port === 0) return true;
    const end = p.endPort !== undefined && p.endPort > p.port ? p.endPort : p.port;
    return port >= p.port && port <= end;
  });
}

function oracle(rules: RuleArb[], mode: EnforcementMode, peer: string, proto: string, port: number): 'allow' | 'deny' {
  if (mode === 'never') return 'allow';
  if (host.includes(peer)) return 'allow'; // the node's own address travels over lo, never filtered
  const selected = rules.filter((r) => r.selects !== 'infra'); // node-a has role=worker
  const withEntries = selected.filter((r) => r.allow.length + r.deny.length > 0);
  if (mode === 'default' && withEntries.length === 0) return 'allow';
  if (selected.some((r) => r.deny.some((e) => oracleEntry(e, peer, proto, port)))) return 'deny';
  if (selected.some((r) => r.allow.some((e) => oracleEntry(e, peer, proto, port)))) return 'allow';
  const defaultDeny = mode === 'always' || withEntries.some((r) => r.dd !== false);
  return defaultDeny ? 'deny' : 'allow';
}

testProp(
  'model + evaluate agree with a direct reading of the reference',
  [
    fc.array(ruleArb, { maxLength: 4 }),
    fc.constantFrom<Direction>('ingress', 'egress'),
    fc.constantFrom<EnforcementMode>('default', 'default', 'always', 'never'),
    fc.array(fc.tuple(fc.constantFrom(...addresses), fc.constantFrom('tcp', 'udp'), fc.constantFrom(22, 24, 53, 80, 443, 8000, 8080, 9000)), { minLength: 1, maxLength: 10 }),
  ],
  (t, rules, dir, mode, flows) => {
    const model = buildHostModel(rules.map((r, i) => toPolicy(r, i, dir)), baseInventory(), config({ policyEnforcement: mode }), 'enforce');
    const other: Direction = dir === 'ingress' ? 'egress' : 'ingress';
    for (const [peer, proto, port] of flows) {
      const got = evaluate(model, { direction: dir, peer, proto: proto as 'tcp' | 'udp', port }).verdict;
      t.is(got, oracle(rules, mode, peer, proto, port), `${dir} ${proto}/${port} ${peer}`);
      // the other direction only depends on the mode
      t.is(evaluate(model, { direction: other, peer, proto: proto as 'tcp' | 'udp', port }).verdict, mode === 'always' && !host.includes(peer) ? 'deny' : 'allow');
    }
  },
  { numRuns: 300 },
);
