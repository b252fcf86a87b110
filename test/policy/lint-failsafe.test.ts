// validate: a deny overridden by a failsafe is a warning at the deny entry; a failsafe for 22/TCP also
// silences the SSH lockout warning.

import test from 'ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { formatProblem, type Problem } from '../../src/api/problem.js';
import { parseFailsafeEntry } from '../../src/policy/failsafe.js';
import { lintPolicies } from '../../src/policy/lint.js';
import { baseInventory, config } from '../helpers/policy-builders.js';

const policy = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: lockdown
spec:
  nodeSelector: {}
  ingressDeny:
  - fromCIDR: [192.0.2.0/24]
    toPorts:
    - ports: [{ port: "6443", protocol: TCP }]
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "8000", endPort: 9000, protocol: UDP }]
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: "80", protocol: TCP }]
`;

function lint(ingress: readonly string[]): Problem[] {
  const r = loadManifestText(policy, 'p.yaml');
  const failsafe = { ingress: ingress.map((s) => parseFailsafeEntry(s, 'ingress')), egress: [] };
  return lintPolicies(r.policies, baseInventory(), config({ failsafe }));
}

const overrides = (ps: readonly Problem[]) => ps.filter((p) => p.code === 'lint/failsafe-overrides-deny').map(formatProblem);

test('a failsafe overlapping a deny: warning at the deny entry, naming the failsafe', (t) => {
  const ps = overrides(lint(['tcp/6443 from 192.0.2.128/25', 'udp/8500', 'tcp/22']));
  t.is(ps.length, 2);
  t.regex(ps[0] ?? '', /^p\.yaml:8:5: warning: policy lockdown: spec\.ingressDeny\[0\]: this deny does not apply to ingress traffic that failsafe `tcp\/6443 from 192\.0\.2\.128\/25` \(config failsafe\.ingress\[0\]\) accepts/);
  t.regex(ps[1] ?? '', /^p\.yaml:11:5: warning: policy lockdown: spec\.ingressDeny\[1\]: .*failsafe `udp\/8500` \(config failsafe\.ingress\[1\]\)/);
});

test('no overlap, no warning: other port, other protocol, disjoint peer', (t) => {
  t.deepEqual(overrides(lint(['tcp/6444', 'udp/6443', 'tcp/6443 from 198.51.100.0/24', 'tcp/8500', 'udp/9001'])), []);
  t.deepEqual(overrides(lint([])), []);
});

test('a failsafe for 22/TCP silences the SSH lockout warning', (t) => {
  t.is(lint([]).filter((p) => p.code === 'lint/ssh-lockout').length, 1);
  t.is(lint(['tcp/22']).filter((p) => p.code === 'lint/ssh-lockout').length, 0);
  t.is(lint(['tcp/22 from 192.0.2.0/24']).filter((p) => p.code === 'lint/ssh-lockout').length, 1, 'a CIDR-scoped failsafe does not count');
});

test('peer overlap either way and in both families; an adjacent prefix does not overlap', (t) => {
  t.is(overrides(lint(['tcp/6443 from 192.0.0.0/16'])).length, 1, 'the failsafe peer contains the deny peer');
  t.is(overrides(lint(['tcp/6443 from 192.0.2.7/32'])).length, 1, 'the deny peer contains the failsafe peer');
  t.deepEqual(overrides(lint(['tcp/6443 from 192.0.3.0/24', 'tcp/6443 from 192.0.1.255/32'])), [], 'adjacent prefixes');
  t.is(overrides(lint(['udp/8500 from 2001:db8::/32'])).length, 1, 'world holds IPv6 prefixes too');
  t.deepEqual(overrides(lint(['tcp/6443 from 2001:db8::/32'])), [], 'the CIDR deny has no IPv6 prefix');
});
