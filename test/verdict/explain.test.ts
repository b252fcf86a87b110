import test from 'ava';
import { buildHostModel } from '../../src/policy/build-model.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { explainText } from '../../src/verdict/explain.js';
import type { Flow } from '../../src/verdict/types.js';
import { baseInventory, ccnp, config, hostRule, ports } from '../helpers/policy-builders.js';

const pol = [
  ccnp('ssh', hostRule({ ingress: [{ entities: ['world'], ...ports('22/TCP') }] })),
  ccnp('no-telnet', hostRule({ ingressDeny: [{ entities: ['world'], ...ports('22-23/TCP') }] })),
];

test('deny entry: names the policy and rule, identities, matched list and the direction reason', (t) => {
  const m = buildHostModel(pol, baseInventory(), config(), 'enforce');
  const flow: Flow = { direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22 };
  const text = explainText(evaluate(m, flow), m, flow);
  t.regex(text, /^ingress tcp port 22 from 203\.0\.113\.5: DENY \(node node-a\)/);
  t.regex(text, /decided by: policy no-telnet spec\.ingressDeny\[0\] \(deny entry, peer world \(entity:world\)\)/);
  t.regex(text, /resolves to: world \(entity:world\)/);
  t.regex(text, /- allow ssh spec\.ingress\[0\], peer world/);
  t.regex(text, /ingress policy: enforced, default deny\. ingress is enforced with default deny because no-telnet spec, ssh spec have/);
  t.regex(text, /policies selecting node-a: no-telnet, ssh/);
});

test('default deny, datapath, not enforced and audit mode explanations', (t) => {
  const m = buildHostModel(pol, baseInventory(), config(), 'audit');
  const f1: Flow = { direction: 'ingress', peer: '192.0.2.2', proto: 'udp', port: 53 };
  const t1 = explainText(evaluate(m, f1), m, f1);
  t.regex(t1, /decided by: default deny/);
  t.regex(t1, /mode audit: nodewall would drop this packet but lets it pass/);
  const dry = buildHostModel(pol, baseInventory(), config(), 'dry-run');
  t.regex(explainText(evaluate(dry, f1), dry, f1), /mode dry-run: the ruleset is not applied/);
  t.regex(t1, /resolves to: no identity set/);
  const f2: Flow = { direction: 'ingress', peer: '2001:db8::2', proto: 'icmpv6', icmpType: 137 };
  t.regex(explainText(evaluate(m, f2), m, f2), /datapath exception.*always dropped/);
  const f3: Flow = { direction: 'egress', peer: '192.0.2.1', proto: 'tcp', port: 1 };
  const t3 = explainText(evaluate(m, f3), m, f3);
  t.regex(t3, /egress is not enforced/);
  t.regex(t3, /192\.0\.2\.1 is an address of this node/);
  t.regex(t3, /egress policy: not enforced/);
});

test('entry notes are shown for the deciding entry', (t) => {
  const m = buildHostModel([ccnp('dns', hostRule({ egress: [{ entities: ['world'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }], l7: { http: false, dns: true, kafka: false, other: [] } }] }] }))], baseInventory(), config(), 'enforce');
  const f: Flow = { direction: 'egress', peer: '203.0.113.53', proto: 'udp', port: 53 };
  t.regex(explainText(evaluate(m, f), m, f), /note: L7 content \(DNS\)/);
});

test('cluster addresses inside a CIDR peer are explained', (t) => {
  const m = buildHostModel([ccnp('nodes', hostRule({ ingress: [{ cidr: ['192.0.2.0/24'], ...ports('22/TCP') }] }))], baseInventory(), config(), 'enforce');
  const f: Flow = { direction: 'ingress', peer: '192.0.2.2', proto: 'tcp', port: 22 };
  const text = explainText(evaluate(m, f), m, f);
  t.regex(text, /not matched by cidr_[0-9a-f]{8} \(cidr:192\.0\.2\.0\/24\): 192\.0\.2\.2 is a cluster address/);
  const w: Flow = { ...f, peer: '192.0.2.77' };
  t.notRegex(explainText(evaluate(m, w), m, w), /not matched by cidr_/);
});

test('a port-only entry is explained as any peer', (t) => {
  const m = buildHostModel([ccnp('ssh', hostRule({ ingress: [ports('22/TCP')] }))], baseInventory(), config(), 'enforce');
  const f: Flow = { direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22 };
  t.regex(explainText(evaluate(m, f), m, f), /decided by: policy ssh spec\.ingress\[0\] \(allow entry, any peer\)/);
});
