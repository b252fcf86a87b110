import test from 'ava';
import { auditLines, parseAuditSet, recordFlow } from '../../src/agent/audit-records.js';
import type { Flow, Verdict } from '../../src/verdict/types.js';
import { model } from './fixtures.js';

// As printed by nft 1.0.6 for `nft -j list set inet nodewall nw_audit_in_v4`.
const json = JSON.stringify({ nftables: [
  { metainfo: { version: '1.0.6', json_schema_version: 1 } },
  { set: { family: 'inet', name: 'nw_audit_in_v4', table: 'nodewall', type: ['ipv4_addr', 'inet_proto', 'inet_service'], flags: ['timeout'], timeout: 600,
    elem: [
      { elem: { val: { concat: ['203.0.113.7', 'vrrp', 0] }, expires: 599 } },
      { elem: { val: { concat: ['203.0.113.6', 'icmp', 2048] }, expires: 598 } },
      { elem: { val: { concat: ['203.0.113.5', 'tcp', 8080] }, expires: 597 } },
      { elem: { val: { concat: ['203.0.113.9', 'tcp', 8080] }, expires: 590 } },
      { elem: { val: { concat: ['203.0.113.9', 6, 9090] } } },
    ] } },
] });

test('parseAuditSet reads peer, protocol (name or number), port and expiry', (t) => {
  const r = parseAuditSet(json, 'ingress');
  t.is(r.length, 5);
  t.deepEqual(r[0], { direction: 'ingress', peer: '203.0.113.7', proto: 112, port: 0, expires: 599 });
  t.deepEqual(r[4], { direction: 'ingress', peer: '203.0.113.9', proto: 6, port: 9090 });
});

test('records become flows: ICMP port is type*256+code', (t) => {
  const [vrrp, icmp, tcp] = parseAuditSet(json, 'ingress');
  t.deepEqual(recordFlow(icmp!), { direction: 'ingress', peer: '203.0.113.6', proto: 'icmp', icmpType: 8, icmpCode: 0 });
  t.deepEqual(recordFlow(tcp!), { direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 8080 });
  t.deepEqual(recordFlow(vrrp!), { direction: 'ingress', peer: '203.0.113.7', proto: 112 });
});

test('audit lines: would-deny, deciding rule from the model, count per port and rule', (t) => {
  const evaluate = (_m: unknown, f: Flow): Verdict => f.port === 9090
    ? { verdict: 'deny', enforced: true, reason: '', decidedBy: 'deny-entry', peerIdentities: [], matched: [{ policy: 'lock', rule: 'spec.ingressDeny[0]', action: 'deny', peer: null }] }
    : f.proto === 'icmp'
      ? { verdict: 'allow', enforced: true, reason: '', decidedBy: 'allow-entry', peerIdentities: [], matched: [] }
      : { verdict: 'deny', enforced: true, reason: '', decidedBy: 'default-deny', peerIdentities: [], matched: [] };
  const lines = auditLines(parseAuditSet(json, 'ingress'), model(), evaluate);
  const byPeerPort = (peer: string, port: number) => lines.find((l) => l.peer === peer && l.port === port);
  t.like(byPeerPort('203.0.113.5', 8080), { verdict: 'would-deny', policy: null, rule: 'default-deny', count: 2, kind: 'audit-record' });
  t.like(byPeerPort('203.0.113.9', 9090), { policy: 'lock', rule: 'spec.ingressDeny[0]', count: 1 });
  t.like(byPeerPort('203.0.113.6', 8), { proto: 'icmp', rule: 'recorded-before-last-change' });
});
