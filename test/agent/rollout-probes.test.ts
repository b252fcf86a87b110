// Rollout probes: the probe grammar and its config errors, when a change counts as tightening, which
// policies a change involves, and the retry window that keeps one lost SYN from rolling back.

import test from 'ava';
import { createServer } from 'node:net';
import { InputError, formatProblem } from '../../src/api/problem.js';
import { parseConfig } from '../../src/inventory/config.js';
import { ProbeSyntaxError, apiServerEndpoint, parseProbeTarget } from '../../src/agent/rollout-config.js';
import { changedPolicies, mayTighten, probeEndpoints, probeOnce, probeWithin, type ProbeOutcome } from '../../src/agent/rollout-probes.js';
import { parseFailsafeEntry } from '../../src/policy/failsafe.js';
import * as b from '../helpers/model-builders.js';

test('probe targets: IPv4, [IPv6], DNS names, kube-apiserver', (t) => {
  t.deepEqual(parseProbeTarget('192.0.2.10:6443'), { kind: 'tcp', text: '192.0.2.10:6443', host: '192.0.2.10', port: 6443 });
  t.deepEqual(parseProbeTarget('[2001:db8::10]:22'), { kind: 'tcp', text: '[2001:db8::10]:22', host: '2001:db8::10', port: 22 });
  t.deepEqual(parseProbeTarget('etcd-1.example:2379'), { kind: 'tcp', text: 'etcd-1.example:2379', host: 'etcd-1.example', port: 2379 });
  t.deepEqual(parseProbeTarget('kube-apiserver'), { kind: 'kube-apiserver', text: 'kube-apiserver' });
  for (const [s, re] of [
    ['192.0.2.10', /no port/],
    ['2001:db8::10:22', /IPv6 address needs brackets/],
    ['[2001:db8::10]22', /missing ":PORT" after "\]"/],
    ['[192.0.2.1]:22', /is not an IPv6 address/],
    ['192.0.2.10:0', /"0" is not a TCP port/],
    ['192.0.2.10:70000', /"70000" is not a TCP port/],
    ['300.1.1.1:22', /neither an IPv4 address nor a DNS name/],
    ['-bad-.example:22', /neither an IPv4 address nor a DNS name/],
    [':22', /no host/],
  ] as const) {
    t.throws(() => parseProbeTarget(s), { instanceOf: ProbeSyntaxError, message: re }, s);
  }
});

test('kube-apiserver resolves from the source server URL', (t) => {
  t.deepEqual(apiServerEndpoint('https://192.0.2.50:6443'), { host: '192.0.2.50', port: 6443 });
  t.deepEqual(apiServerEndpoint('https://[2001:db8::50]'), { host: '2001:db8::50', port: 443 });
  t.deepEqual(apiServerEndpoint('https://api.example'), { host: 'api.example', port: 443 });
  t.is(apiServerEndpoint('not a url'), undefined);
  t.is(apiServerEndpoint(undefined), undefined);
  const eps = probeEndpoints([parseProbeTarget('kube-apiserver'), parseProbeTarget('192.0.2.1:22')], undefined);
  t.deepEqual(eps.unresolved, ['kube-apiserver']);
  t.deepEqual(probeEndpoints([parseProbeTarget('kube-apiserver')], 'https://192.0.2.50:6443').endpoints, [{ name: 'kube-apiserver', host: '192.0.2.50', port: 6443 }]);
});

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, '/c/n.yaml');
  } catch (e) {
    if (e instanceof InputError) return e.problems.map(formatProblem);
    throw e;
  }
  return [];
}

test('config rollout: parsed; bad entries at file:line:col; kube-apiserver needs a kubernetes source', (t) => {
  const c = parseConfig('rollout:\n  probes: ["192.0.2.10:6443", "[2001:db8::1]:22"]\n  probeSeconds: 5\n', '/c/n.yaml');
  t.deepEqual(c.rollout?.probes.map((p) => p.text), ['192.0.2.10:6443', '[2001:db8::1]:22']);
  t.is(c.rollout?.probeSeconds, 5);
  t.deepEqual(problemsOf('rollout:\n  probes:\n    - 192.0.2.10:99999\n'), ['/c/n.yaml:3:18: error: rollout.probes[0]: "192.0.2.10:99999": "99999" is not a TCP port (1 to 65535)']);
  t.deepEqual(problemsOf('rollout:\n  probes: [kube-apiserver]\n'), [
    '/c/n.yaml:2:12: error: rollout.probes: "kube-apiserver" probes the API server of the kubernetes source, and `sources` has none: add `- kubernetes: {...}` to sources, or probe the API server as HOST:PORT',
  ]);
  t.deepEqual(problemsOf('sources:\n  - kubernetes: {inCluster: true}\nrollout:\n  probes: [kube-apiserver]\n'), []);
  t.deepEqual(problemsOf('rollout:\n  probes: [192.0.2.1:22, 192.0.2.1:22]\n'), ['/c/n.yaml:2:26: error: rollout.probes[1]: "192.0.2.1:22" is listed twice']);
  t.deepEqual(problemsOf('rollout:\n  probeSeconds: 0\n'), ['/c/n.yaml:2:17: error: rollout.probeSeconds: must be a whole number from 1 to 600']);
  t.deepEqual(problemsOf('rollout:\n  probe: []\n'), ['/c/n.yaml:2:3: error: rollout.probe: unknown key (known: confirm, confirmSeconds, probes, probeSeconds)']);
  const many = Array.from({ length: 33 }, (_, i) => `192.0.2.${i + 1}:22`).join(', ');
  t.regex(problemsOf(`rollout:\n  probes: [${many}]\n`)[0] ?? '', /at most 32 probes \(got 33\)/);
});

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
const api = b.identity('api', ['192.0.2.50/32']);
const api2 = b.identity('api', ['192.0.2.50/32', '192.0.2.51/32']);
const base = b.model({ sets: [world, api], ingress: b.enforced([b.allow('world', [b.tcp(22)], 'spec.ingress[0]', 'ssh')]), egress: b.enforced([b.allow('api', [b.tcp(6443)], 'spec.egress[0]', 'apis')]) });

test('mayTighten: only enforce mode; new deny, lost allow, narrowed peer, default deny, failsafe removed', (t) => {
  t.false(mayTighten(base, 'enforce', base, 'enforce'));
  t.false(mayTighten(base, 'enforce', base, 'audit'), 'audit never drops');
  t.true(mayTighten(base, 'audit', base, 'enforce'), 'switching to enforce');
  const moreAllow = b.model({ sets: [world, api2], ingress: base.ingress, egress: b.enforced([b.allow('api', [b.tcp(6443)], 'spec.egress[0]', 'apis'), b.allow('world', [b.tcp(53)], 'spec.egress[1]', 'apis')]) });
  t.false(mayTighten(base, 'enforce', moreAllow, 'enforce'), 'a wider allow and a new allow do not tighten');
  t.true(mayTighten(moreAllow, 'enforce', base, 'enforce'), 'lost allow and narrowed peer tighten');
  const withDeny = b.model({ sets: [world, api], ingress: b.enforced([b.deny('world', [b.tcp(23)], 'spec.ingressDeny[0]', 'x'), ...base.ingress.entries]), egress: base.egress });
  t.true(mayTighten(base, 'enforce', withDeny, 'enforce'));
  t.false(mayTighten(withDeny, 'enforce', base, 'enforce'), 'a removed deny loosens');
  const open = b.model({ sets: [world, api], ingress: base.ingress });
  t.true(mayTighten(open, 'enforce', base, 'enforce'), 'egress becomes enforced');
  t.false(mayTighten(base, 'enforce', open, 'enforce'));
  const fs = b.model({ sets: [world, api], ingress: base.ingress, egress: base.egress, failsafe: { ingress: [parseFailsafeEntry('tcp/22', 'ingress')], egress: [] } });
  t.true(mayTighten(fs, 'enforce', base, 'enforce'), 'a failsafe removed');
});

test('changedPolicies: policies whose entries or peer addresses changed', (t) => {
  const withDeny = b.model({ sets: [world, api], ingress: b.enforced([b.deny('world', [b.tcp(23)], 'spec.ingressDeny[0]', 'lock'), ...base.ingress.entries]), egress: base.egress });
  t.deepEqual(changedPolicies(base, withDeny), ['lock']);
  const moved = b.model({ sets: [world, api2], ingress: base.ingress, egress: base.egress });
  t.deepEqual(changedPolicies(base, moved), ['apis']);
  t.deepEqual(changedPolicies(base, base), []);
});

test('probeWithin retries until the probe passes (one lost SYN does not fail it) and gives up at the window', async (t) => {
  let clock = 0;
  const deps = (results: ProbeOutcome[]) => ({
    now: () => clock,
    sleep: async (ms: number) => {
      clock += ms;
    },
    once: async (_ep: unknown, timeoutMs: number) => {
      const r = results.shift() ?? { ok: false, error: 'timeout' };
      clock += r.ok ? 10 : timeoutMs;
      return r;
    },
  });
  const ep = { name: 'x', host: '192.0.2.1', port: 1 };
  const r1 = await probeWithin(ep, 10_000, deps([{ ok: false, error: 'timeout' }, { ok: true }]));
  t.true(r1.ok);
  t.is(r1.attempts, 2);
  clock = 0;
  const r2 = await probeWithin(ep, 10_000, deps([]));
  t.false(r2.ok);
  t.true(r2.attempts >= 3 && r2.attempts <= 5, `attempts ${r2.attempts}`);
  t.true(clock <= 10_000 + 2000, 'never past the window by more than one attempt');
});

test('probeOnce: connected, refused, DNS failure', async (t) => {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  t.deepEqual(await probeOnce({ name: 'a', host: '127.0.0.1', port }, 2000), { ok: true });
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  t.deepEqual(await probeOnce({ name: 'b', host: '127.0.0.1', port: closedPort }, 2000), { ok: false, error: 'ECONNREFUSED' });
  const dns = await probeOnce({ name: 'c', host: 'nodewall-test.invalid', port: 1 }, 2000);
  t.false(dns.ok);
  t.regex(dns.error ?? '', /^dns: /);
});
