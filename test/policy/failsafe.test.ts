// The failsafe entry grammar (src/policy/failsafe.ts) and its config errors at file:line:col.

import test from 'ava';
import { InputError, formatProblem } from '../../src/api/problem.js';
import { parseConfig } from '../../src/inventory/config.js';
import { FailsafeSyntaxError, failsafeMatches, parseFailsafeEntry } from '../../src/policy/failsafe.js';
import { parseAddress } from '../../src/policy/cidr.js';

test('valid entries: proto, port or range, optional peer; canonical text', (t) => {
  t.deepEqual(parseFailsafeEntry('tcp/22', 'ingress'), { text: 'tcp/22', proto: 'tcp', ports: [22, 22], peer: null });
  t.deepEqual(parseFailsafeEntry('tcp/6443 from 192.0.2.0/24', 'ingress'), { text: 'tcp/6443 from 192.0.2.0/24', proto: 'tcp', ports: [6443, 6443], peer: '192.0.2.0/24' });
  t.deepEqual(parseFailsafeEntry('udp/53 to 198.51.100.53', 'egress'), { text: 'udp/53 to 198.51.100.53/32', proto: 'udp', ports: [53, 53], peer: '198.51.100.53/32' });
  t.deepEqual(parseFailsafeEntry('sctp/30000-32767', 'egress'), { text: 'sctp/30000-32767', proto: 'sctp', ports: [30000, 32767], peer: null });
  t.deepEqual(parseFailsafeEntry('  tcp/22   from   2001:DB8:0::/32 ', 'ingress'), { text: 'tcp/22 from 2001:db8::/32', proto: 'tcp', ports: [22, 22], peer: '2001:db8::/32' });
  t.is(parseFailsafeEntry('tcp/1-65535', 'ingress').text, 'tcp/1-65535');
  t.is(parseFailsafeEntry('tcp/22 from 2001:db8::1', 'ingress').peer, '2001:db8::1/128');
});

const bad: readonly [string, 'ingress' | 'egress', RegExp, number][] = [
  ['', 'ingress', /empty entry/, 0],
  ['22', 'ingress', /expected PROTO\/PORT/, 0],
  ['icmp/8', 'ingress', /protocol "icmp" is not a failsafe protocol .*ICMP is not supported/, 0],
  ['TCP/22', 'ingress', /protocol "TCP" is not a failsafe protocol \(tcp, udp or sctp, lower case/, 0],
  ['tcp/', 'ingress', /missing port after "tcp\/"/, 4],
  ['tcp/0', 'ingress', /port 0 is out of range/, 4],
  ['tcp/65536', 'ingress', /port 65536 is out of range/, 4],
  ['tcp/022', 'ingress', /"022" is not a port/, 4],
  ['tcp/ssh', 'ingress', /"ssh" is not a port/, 4],
  ['tcp/100-50', 'ingress', /backwards/, 4],
  ['tcp/100-x', 'ingress', /"x" is not a port/, 8],
  ['tcp/22 to 192.0.2.1', 'ingress', /"to" does not fit failsafe\.ingress/, 7],
  ['udp/53 from 192.0.2.1', 'egress', /"from" does not fit failsafe\.egress/, 7],
  ['tcp/22 via 192.0.2.1', 'ingress', /expected "from CIDR" after the port, got "via"/, 7],
  ['tcp/22 from', 'ingress', /missing address or CIDR after "from"/, 11],
  ['tcp/22 from 192.0.2.1/24', 'ingress', /host bits set: did you mean 192\.0\.2\.0\/24\?/, 12],
  ['tcp/22 from 300.0.0.1', 'ingress', /"300\.0\.0\.1" is not an IPv4\/IPv6 address or CIDR/, 12],
  ['tcp/22 from 192.0.2.0/24 198.51.100.0/24', 'ingress', /one peer per entry/, 25],
  ['tcp/22\tfrom 192.0.2.1', 'ingress', /unexpected character U\+0009/, 6],
];

for (const [text, dir, re, offset] of bad) {
  test(`bad ${dir} entry ${JSON.stringify(text)}`, (t) => {
    const err = t.throws(() => parseFailsafeEntry(text, dir), { instanceOf: FailsafeSyntaxError });
    t.regex(err?.message ?? '', re);
    t.is(err?.offset, offset);
  });
}

test('matching: protocol, port range and peer prefix', (t) => {
  const e = parseFailsafeEntry('tcp/6443-6444 from 192.0.2.0/24', 'ingress');
  t.true(failsafeMatches(e, 'tcp', 6443, parseAddress('192.0.2.7')));
  t.true(failsafeMatches(e, 'tcp', 6444, parseAddress('192.0.2.255')));
  t.false(failsafeMatches(e, 'tcp', 6445, parseAddress('192.0.2.7')));
  t.false(failsafeMatches(e, 'udp', 6443, parseAddress('192.0.2.7')));
  t.false(failsafeMatches(e, 'tcp', 6443, parseAddress('198.51.100.7')));
  t.false(failsafeMatches(e, 'tcp', 6443, parseAddress('2001:db8::7')));
  t.false(failsafeMatches(e, 'tcp', undefined, parseAddress('192.0.2.7')));
  const any = parseFailsafeEntry('udp/53', 'egress');
  t.true(failsafeMatches(any, 'udp', 53, parseAddress('2001:db8::53')));
  t.true(failsafeMatches(any, 'udp', 53, parseAddress('203.0.113.53')));
});

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, '/c/nodewall.yaml');
  } catch (e) {
    if (e instanceof InputError) return e.problems.map(formatProblem);
    throw e;
  }
  return [];
}

test('config: failsafe lists parse into the config; none = key absent', (t) => {
  const c = parseConfig('failsafe:\n  ingress: [tcp/22, "tcp/6443 from 192.0.2.0/24"]\n  egress:\n    - udp/53 to 198.51.100.53\n', '/c/n.yaml');
  t.deepEqual(c.failsafe?.ingress.map((e) => e.text), ['tcp/22', 'tcp/6443 from 192.0.2.0/24']);
  t.deepEqual(c.failsafe?.egress.map((e) => e.text), ['udp/53 to 198.51.100.53/32']);
  t.is(parseConfig('failsafe: {ingress: [], egress: []}\n', '/c/n.yaml').failsafe, undefined);
  t.is(parseConfig('mode: audit\n', '/c/n.yaml').failsafe, undefined);
});

test('config: a bad failsafe entry is an error at the token, file:line:col', (t) => {
  t.deepEqual(problemsOf('mode: audit\nfailsafe:\n  ingress:\n    - tcp/22 frm 192.0.2.0/24\n'), [
    '/c/nodewall.yaml:4:14: error: failsafe.ingress[0]: "tcp/22 frm 192.0.2.0/24": expected "from CIDR" after the port, got "frm"',
  ]);
  // Quoted: the column still points at the token.
  t.deepEqual(problemsOf('failsafe:\n  egress: ["udp/53 to 198.51.100.1/24"]\n'), [
    '/c/nodewall.yaml:2:23: error: failsafe.egress[0]: "udp/53 to 198.51.100.1/24": "198.51.100.1/24" has host bits set: did you mean 198.51.100.0/24?',
  ]);
  t.deepEqual(problemsOf('failsafe:\n  inbound: [tcp/22]\n'), ['/c/nodewall.yaml:2:3: error: failsafe.inbound: unknown key (known: ingress, egress)']);
  t.deepEqual(problemsOf('failsafe:\n  ingress: tcp/22\n'), ['/c/nodewall.yaml:2:12: error: failsafe.ingress: must be a list']);
  t.deepEqual(problemsOf('failsafe:\n  ingress: [22]\n'), ['/c/nodewall.yaml:2:13: error: failsafe.ingress[0]: must be a string, got a number (22)']);
});

test('config: at most 256 failsafe entries per direction', (t) => {
  const list = (n: number) => Array.from({ length: n }, (_, i) => `tcp/${i + 1}`).join(', ');
  t.deepEqual(problemsOf(`failsafe:\n  ingress: [${list(256)}]\n`), []);
  t.deepEqual(problemsOf(`failsafe:\n  ingress: [${list(257)}]\n`), [
    '/c/nodewall.yaml:2:12: error: failsafe.ingress: at most 256 entries (got 257): list management ports and networks, not services',
  ]);
});
