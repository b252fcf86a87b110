import test from 'ava';
import { join } from 'node:path';
import { corpusDir, repoRoot } from '../helpers/repo.js';
import { runCli } from '../helpers/run-cli.js';

const config = join(repoRoot(), 'test', 'fixtures', 'cli', 'nodewall.yaml');
const demo = join(corpusDir(), 'cilium-demo-host-policy.yaml');

interface TraceJson {
  verdict: 'allow' | 'deny';
  enforced: boolean;
  reason: string;
  matched: { policy: string; rule: string; action: string }[];
}

async function trace(args: string[]): Promise<{ code: number; json: TraceJson; stderr: string }> {
  const r = await runCli(['trace', '--config', config, '--source', demo, '--output', 'json', ...args]);
  return { code: r.code, json: JSON.parse(r.stdout || '{}') as TraceJson, stderr: r.stderr };
}

test('SSH from the world is allowed by the port-only rule of the demo policy', async (t) => {
  const r = await trace(['--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '22']);
  t.is(r.code, 0, r.stderr);
  t.is(r.json.verdict, 'allow');
  t.true(r.json.enforced);
  t.deepEqual(r.json.matched[0], { policy: 'demo-host-policy', rule: 'spec.ingress[1]', action: 'allow', peer: null } as never);
});

test('other ingress from the world is denied by default deny', async (t) => {
  const r = await trace(['--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '8080']);
  t.is(r.code, 0, r.stderr);
  t.is(r.json.verdict, 'deny');
  t.true(r.json.enforced);
  t.deepEqual(r.json.matched, []);
});

test('ICMP echo request by name is allowed, echo reply type is not', async (t) => {
  const req = await trace(['--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'icmp', '--icmp-type', 'EchoRequest']);
  t.is(req.json.verdict, 'allow');
  t.is(req.json.matched[0]?.rule, 'spec.ingress[2]');
  const ts = await trace(['--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'icmp', '--icmp-type', '13']);
  t.is(ts.json.verdict, 'deny');
});

test('egress is not enforced by an ingress-only policy', async (t) => {
  const r = await trace(['--direction', 'egress', '--peer', '203.0.113.7', '--proto', 'udp', '--port', '53']);
  t.is(r.json.verdict, 'allow');
  t.false(r.json.enforced);
});

test('a node the policy does not select is not enforced', async (t) => {
  const r = await runCli([
    'trace', '--config', config, '--source', demo, '--output', 'json', '--node-labels', 'node-access=none',
    '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '8080',
  ]);
  const json = JSON.parse(r.stdout) as TraceJson;
  t.is(json.verdict, 'allow');
  t.false(json.enforced);
});

test('the text output names the policy, the rule and the default-deny reason', async (t) => {
  const allow = await runCli(['trace', '--config', config, '--source', demo, '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '22']);
  t.is(allow.code, 0);
  t.regex(allow.stdout, /allow/i);
  t.regex(allow.stdout, /demo-host-policy/);
  t.regex(allow.stdout, /spec\.ingress\[1\]/);
  const deny = await runCli(['trace', '--config', config, '--source', demo, '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '8080']);
  t.regex(deny.stdout, /deny/i);
  t.regex(deny.stdout, /default.deny/i);
});

for (const [name, args] of [
  ['missing --port for tcp', ['--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp']],
  ['peer is not an IP', ['--direction', 'ingress', '--peer', 'example', '--proto', 'tcp', '--port', '22']],
  ['icmp with an IPv6 peer', ['--direction', 'ingress', '--peer', '2001:db8::7', '--proto', 'icmp', '--icmp-type', '8']],
  ['unknown ICMP name', ['--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'icmp', '--icmp-type', 'PacketTooBig']],
  ['bad direction', ['--direction', 'sideways', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '22']],
] as const) {
  test(`usage error (exit 2): ${name}`, async (t) => {
    const r = await runCli(['trace', '--config', config, '--source', demo, ...args]);
    t.is(r.code, 2, r.stdout + r.stderr);
    t.regex(r.stderr, /nodewall: /);
  });
}

test('invalid policies give exit 1 but the verdict is still computed without them', async (t) => {
  const bad = join(corpusDir(), 'cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml');
  const r = await runCli(['trace', '--config', config, '--source', demo, '--source', bad, '--output', 'json',
    '--direction', 'ingress', '--peer', '203.0.113.7', '--proto', 'tcp', '--port', '22']);
  t.is(r.code, 1);
  t.is((JSON.parse(r.stdout) as TraceJson).verdict, 'allow');
  t.regex(r.stderr, /NODE_WITHOUT_CILIUM_IP/);
});
