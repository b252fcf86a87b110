// Staged records: each record evaluated under both models; only changed verdicts become lines,
// and a record is evaluated once per model however often the agent reads the sets.

import test from 'ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { stagedLines, stagedLiveLines, unseen } from '../../src/agent/staged-records.js';
import { sock } from './fixtures.js';
import type { AuditRecord } from '../../src/agent/audit-records.js';
import { mergeConfig, parseConfig } from '../../src/inventory/config.js';
import { buildState } from '../../src/pipeline.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { policyYaml } from '../e2e/agent-harness.js';

const staged = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: tighten
  annotations: {nodewall.io/stage: audit}
spec:
  nodeSelector: {}
  ingressDeny:
    - fromCIDR: [203.0.113.0/25]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`;

function model() {
  const config = mergeConfig(parseConfig('mode: enforce\nnodeName: node-a\n', 'c.yaml'), {});
  return buildState({ config, load: loadManifestText(`${policyYaml('base', [22, 8080])}---\n${staged}`, 'p.yaml'), nodeName: 'node-a' }).model;
}

const rec = (peer: string, port: number, proto = 6): AuditRecord => ({ direction: 'ingress', peer, proto, port });

test('only records whose verdict the staged policy changes become lines, with both verdicts', (t) => {
  const m = model();
  const lines = stagedLines([rec('203.0.113.9', 8080), rec('203.0.113.200', 8080), rec('203.0.113.9', 22), rec('203.0.113.9', 7000), rec('203.0.113.9', 8080, 17)], m, evaluate);
  t.deepEqual(lines, [{
    direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 8080, verdict: 'would-deny', policy: 'tighten', rule: 'spec.ingressDeny[0]',
    kind: 'staged-record', staged: 'would deny (staged: tighten spec.ingressDeny[0])', enforcedVerdict: 'allow',
  }]);
});

test('unseen: a record is evaluated once per model; a new model evaluates again', (t) => {
  const m = model();
  const rs = [rec('203.0.113.9', 8080), rec('203.0.113.10', 8080)];
  t.is(unseen(m, rs).length, 2);
  t.deepEqual(unseen(m, [...rs, rec('203.0.113.11', 8080)]), [rec('203.0.113.11', 8080)]);
  t.is(unseen(model(), rs).length, 2);
});

test('dry-run: live connections whose verdict the staged policy changes, and no others', (t) => {
  const m = model();
  const lines = stagedLiveLines(m, {
    sockets: [
      sock({ state: 'listen', localAddress: '0.0.0.0', localPort: 8080 }),
      sock({ state: 'established', localPort: 8080, remoteAddress: '203.0.113.9', remotePort: 50000 }),
      sock({ state: 'established', localPort: 8080, remoteAddress: '203.0.113.200', remotePort: 50001 }),
      sock({ state: 'established', localPort: 22, remoteAddress: '203.0.113.9', remotePort: 50002 }),
    ],
    processes: new Map(),
  }, evaluate);
  const conns = lines.filter((l) => l.kind === 'connection');
  t.deepEqual(conns.map((l) => [l.peer, l.port, l.verdict, l.staged, l.enforcedVerdict]), [
    ['203.0.113.9', 8080, 'would-deny', 'would deny (staged: tighten spec.ingressDeny[0])', 'allow'],
  ]);
  // the listener on 8080 is reported for the staged policy's CIDR identity (a representative address)
  t.true(lines.some((l) => l.kind === 'listener' && l.port === 8080 && l.verdict === 'would-deny'));
  t.false(lines.some((l) => l.port === 22));
});
