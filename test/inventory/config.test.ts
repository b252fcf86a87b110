import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { InputError, formatProblem } from '../../src/api/problem.js';
import { defaultConfig, loadConfig, mergeConfig, parseConfig } from '../../src/inventory/config.js';

function problemsOf(text: string, file = '/etc/nodewall/nodewall.yaml'): string[] {
  const err = (() => {
    try {
      parseConfig(text, file);
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  if (!(err instanceof InputError)) throw new Error(`expected InputError, got ${String(err)}`);
  return err.problems.map(formatProblem);
}

test('empty text gives the defaults, dry-run mode first of all', (t) => {
  const c = parseConfig('', '/etc/nodewall/nodewall.yaml');
  t.is(c.mode, 'dry-run');
  t.is(c.file, '/etc/nodewall/nodewall.yaml');
  t.deepEqual(c.nft, { path: '/usr/sbin/nft', table: 'nodewall', timeoutSeconds: 120 });
  t.is(c.stateDir, '/var/lib/nodewall');
  t.is(c.clusterName, 'default');
  t.is(c.policyEnforcement, 'default');
  t.is(c.labelFilter, 'cilium');
  t.true(c.allowICMPFragNeeded && c.enableICMPRules && c.enableNonDefaultDenyPolicies);
  t.false(c.enableExtendedIPProtocols || c.enableNodeSelectorLabels);
  t.is(c.nodeName, undefined);
  t.deepEqual(parseConfig('# only a comment\n', 'x.yaml').sources, []);
});

test('every key is read', (t) => {
  const c = parseConfig(
    `nodeName: node-a
nodeLabels: {role: edge, zone: 1, node-role.kubernetes.io/control-plane: ""}
clusterName: prod
clusterPodCIDRs: [198.51.100.7/24, "2001:DB8:100::/64"]
apiServerAddresses: [192.0.2.50, "2001:db8:0::50"]
policyEnforcement: always
labelFilter: none
policyCIDRMatchMode: nodes
enableExtendedIPProtocols: true
enableNodeSelectorLabels: true
enableICMPRules: false
allowICMPFragNeeded: false
enableNonDefaultDenyPolicies: false
sources: [policies, /srv/extra.yaml, ../shared/p.yaml]
mode: enforce
nft: {path: /usr/local/sbin/nft, table: hostfw, timeoutSeconds: 30}
stateDir: /run/nodewall
`,
    '/etc/nodewall/nodewall.yaml',
  );
  t.is(c.nodeName, 'node-a');
  t.deepEqual(c.nodeLabels, { role: 'edge', zone: '1', 'node-role.kubernetes.io/control-plane': '' });
  t.is(c.clusterName, 'prod');
  t.deepEqual(c.clusterPodCIDRs, ['198.51.100.0/24', '2001:db8:100::/64']);
  t.deepEqual(c.apiServerAddresses, ['192.0.2.50', '2001:db8::50']);
  t.is(c.policyEnforcement, 'always');
  t.is(c.labelFilter, 'none');
  t.is(c.policyCIDRMatchMode, 'nodes');
  t.true(c.enableExtendedIPProtocols);
  t.true(c.enableNodeSelectorLabels);
  t.false(c.enableICMPRules);
  t.false(c.allowICMPFragNeeded);
  t.false(c.enableNonDefaultDenyPolicies);
  t.deepEqual(c.sources, ['/etc/nodewall/policies', '/srv/extra.yaml', '/etc/shared/p.yaml']);
  t.is(c.mode, 'enforce');
  t.deepEqual(c.nft, { path: '/usr/local/sbin/nft', table: 'hostfw', timeoutSeconds: 30 });
  t.is(c.stateDir, '/run/nodewall');
});

test('policyCIDRMatchMode accepts an empty string, null and the list form', (t) => {
  t.is(parseConfig('policyCIDRMatchMode: ""', 'c.yaml').policyCIDRMatchMode, '');
  t.is(parseConfig('policyCIDRMatchMode:', 'c.yaml').policyCIDRMatchMode, '');
  t.is(parseConfig('policyCIDRMatchMode: [nodes]', 'c.yaml').policyCIDRMatchMode, 'nodes');
  t.is(parseConfig('policyCIDRMatchMode: []', 'c.yaml').policyCIDRMatchMode, '');
  t.deepEqual(problemsOf('policyCIDRMatchMode: [pods]', 'c.yaml'), ['c.yaml:1:22: error: policyCIDRMatchMode: must be "", "nodes" or [nodes]']);
});

test('nft.maxElementsPerTransaction: a bounded number, absent by default', (t) => {
  t.is(parseConfig('nft: {table: fw}', 'c.yaml').nft.maxElementsPerTransaction, undefined);
  t.is(parseConfig('nft: {maxElementsPerTransaction: 200000}', 'c.yaml').nft.maxElementsPerTransaction, 200000);
  t.deepEqual(problemsOf('nft:\n  maxElementsPerTransaction: 10\n', 'c.yaml'), ['c.yaml:2:30: error: nft.maxElementsPerTransaction: must be a whole number from 1000 to 10000000']);
  t.is(problemsOf('nft: {maxElementsPerTransaction: lots}\n', 'c.yaml').length, 1);
  t.is(problemsOf('nft: {maxElementsPerTransaction: 1500.5}\n', 'c.yaml').length, 1);
});

test('nft.launcher: true or false, absent by default (the agent then uses the launcher); anything else names file:line:col', (t) => {
  t.is(parseConfig('nft: {table: fw}', 'c.yaml').nft.launcher, undefined);
  t.is(parseConfig('nft: {launcher: false}', 'c.yaml').nft.launcher, false);
  t.is(parseConfig('nft: {launcher: true}', 'c.yaml').nft.launcher, true);
  t.deepEqual(problemsOf('nft:\n  table: fw\n  launcher: "no"\n', 'c.yaml'), ['c.yaml:3:13: error: nft.launcher: must be true or false']);
  t.deepEqual(problemsOf('nft:\n  launcher: 1\n', 'c.yaml'), ['c.yaml:2:13: error: nft.launcher: must be true or false']);
  t.deepEqual(problemsOf('nft:\n  launcher:\n', 'c.yaml'), ['c.yaml:2:12: error: nft.launcher: must be true or false']);
  t.deepEqual(problemsOf('nft: {launchr: true}\n', 'c.yaml'), ['c.yaml:1:7: error: nft.launchr: unknown key (known: path, table, timeoutSeconds, maxElementsPerTransaction, launcher)']);
});

test('nft settings keep the default for the key not given', (t) => {
  t.deepEqual(parseConfig('nft: {table: fw}', 'c.yaml').nft, { path: '/usr/sbin/nft', table: 'fw', timeoutSeconds: 120 });
});

test('unknown keys are errors with file:line:col and a suggestion', (t) => {
  const ps = problemsOf('mode: audit\nnodename: a\nfoo: 1\n', '/c/nodewall.yaml');
  t.is(ps.length, 2);
  t.is(ps[0], '/c/nodewall.yaml:2:1: error: nodename: unknown key (did you mean "nodeName"?)');
  t.regex(ps[1] ?? '', /^\/c\/nodewall\.yaml:3:1: error: foo: unknown key \(known: nodeName, nodeLabels, .*, stateDir\b.*\)$/);
  t.deepEqual(problemsOf('nft:\n  path: /usr/sbin/nft\n  tabel: x\n', 'c.yaml'), ['c.yaml:3:3: error: nft.tabel: unknown key (known: path, table, timeoutSeconds, maxElementsPerTransaction, launcher)']);
});

test('bad values are errors at the value position', (t) => {
  t.deepEqual(
    problemsOf(
      `mode: enforcing
policyEnforcement: sometimes
enableICMPRules: "yes"
clusterPodCIDRs:
  - 10.0.0.0/8
  - 010.0.0.0/8
  - 10.0.0.1
apiServerAddresses: [192.0.2.1/32]
nodeLabels: {"bad key!": x, ok: "bad value!"}
nft: {path: usr/sbin/nft, table: "1x"}
stateDir: relative/dir
nodeName: ""
sources: notalist
`,
      'n.yaml',
    ),
    [
      'n.yaml:1:7: error: mode: must be one of "enforce", "audit", "dry-run"',
      'n.yaml:2:20: error: policyEnforcement: must be one of "default", "always", "never"',
      'n.yaml:3:18: error: enableICMPRules: must be true or false',
      'n.yaml:6:5: error: clusterPodCIDRs[1]: invalid CIDR: netip.ParsePrefix("010.0.0.0/8"): ParseAddr("010.0.0.0"): IPv4 field has octet with leading zero',
      'n.yaml:7:5: error: clusterPodCIDRs[2]: invalid CIDR: netip.ParsePrefix("10.0.0.1"): no \'/\'',
      'n.yaml:8:22: error: apiServerAddresses[0]: invalid IP address: ParseAddr("192.0.2.1/32"): unexpected character (at "/32")',
      'n.yaml:9:14: error: nodeLabels["bad key!"]: invalid label key: Invalid value: "bad key!": name part must consist of alphanumeric ' +
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')",
      'n.yaml:9:33: error: nodeLabels.ok: invalid label value: Invalid value: "bad value!": a valid label must be an empty string or ' +
        "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or " +
        "'my_value', or '12345')",
      'n.yaml:10:13: error: nft.path: must be an absolute path, got "usr/sbin/nft"',
      'n.yaml:10:34: error: nft.table: "1x" is not a valid nft table name (letter, then letters, digits, "_", "-")',
      'n.yaml:11:11: error: stateDir: must be an absolute path, got "relative/dir"',
      'n.yaml:12:11: error: nodeName: must not be empty',
      'n.yaml:13:10: error: sources: must be a list',
    ],
  );
});

test('YAML syntax errors and duplicate keys are reported with positions', (t) => {
  const dup = problemsOf('mode: audit\nmode: enforce\n', 'd.yaml');
  t.deepEqual(dup, ['d.yaml:2:1: error: mode: duplicate key "mode", also set at line 1, column 1: keep only one of them']);
  const syntax = problemsOf('nodeLabels: {a: b\n', 's.yaml');
  t.true(syntax.length >= 1);
  t.regex(syntax[0] ?? '', /^s\.yaml:\d+:\d+: error: /);
  t.deepEqual(problemsOf('- a\n- b\n', 'l.yaml'), ['l.yaml:1:1: error: the config must be a map of keys']);
});

test('InputError carries a summary message', (t) => {
  const err = t.throws(() => parseConfig('mode: x\nfoo: 1\n', 'e.yaml'), { instanceOf: InputError });
  t.is(err?.message, 'e.yaml: invalid config (2 problems)');
  t.is(err?.problems[0]?.code, 'config/bad-value');
  t.is(err?.problems[1]?.code, 'config/unknown-key');
});

test('loadConfig reads a file, resolves sources beside it, and reports a missing explicit file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodewall-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'nodewall.yaml');
  await writeFile(file, 'sources: [policies]\nmode: audit\n');
  const c = await loadConfig(file);
  t.is(c.mode, 'audit');
  t.deepEqual(c.sources, [join(dir, 'policies')]);
  t.is(c.file, file);
  const missing = await t.throwsAsync(loadConfig(join(dir, 'nope.yaml')), { instanceOf: InputError });
  t.is(missing?.problems[0]?.code, 'config/read');
  t.is(missing?.problems[0]?.pos.file, join(dir, 'nope.yaml'));
});

test('loadConfig without a path gives defaults when /etc/nodewall/nodewall.yaml is absent', async (t) => {
  const { access } = await import('node:fs/promises');
  const present = await access('/etc/nodewall/nodewall.yaml').then(
    () => true,
    () => false,
  );
  const c = await loadConfig();
  if (present) t.is(c.file, '/etc/nodewall/nodewall.yaml');
  else t.deepEqual(c, defaultConfig);
});

test('mergeConfig: given values replace, labels layer, undefined is ignored', (t) => {
  const base = parseConfig('nodeName: a\nnodeLabels: {role: edge, zone: z1}\nsources: [/p]\n', '/etc/nodewall/nodewall.yaml');
  const m = mergeConfig(base, { nodeName: 'b', nodeLabels: { zone: 'z2' }, sources: ['/q'], mode: undefined });
  t.is(m.nodeName, 'b');
  t.deepEqual(m.nodeLabels, { role: 'edge', zone: 'z2' });
  t.deepEqual(m.sources, ['/q']);
  t.is(m.mode, 'dry-run');
  t.is(base.nodeName, 'a', 'base untouched');
  t.deepEqual(mergeConfig(base, {}), base);
});

test('rollout: confirm and confirmSeconds, validated with file:line:col', (t) => {
  t.is(parseConfig('', '/c.yaml').rollout, undefined);
  t.deepEqual(parseConfig('rollout:\n  confirm: manual\n  confirmSeconds: 45\n', '/c.yaml').rollout, { probes: [], confirm: 'manual', confirmSeconds: 45 });
  t.deepEqual(parseConfig('rollout: {confirm: off}\n', '/c.yaml').rollout, { probes: [], confirm: 'off' });
  t.deepEqual(parseConfig('rollout: {confirm: false}\n', '/c.yaml').rollout, { probes: [], confirm: 'off' });
  t.deepEqual(problemsOf('rollout:\n  confirm: auto\n  confirmSeconds: 1.5\n  confirmSecs: 3\n', '/c.yaml'), [
    '/c.yaml:2:12: error: rollout.confirm: must be one of "off", "manual"',
    '/c.yaml:3:19: error: rollout.confirmSeconds: must be a whole number from 1 to 86400',
    '/c.yaml:4:3: error: rollout.confirmSecs: unknown key (known: confirm, confirmSeconds, probes, probeSeconds)',
  ]);
  t.deepEqual(problemsOf('rollout: manual\n', '/c.yaml'), ['/c.yaml:1:10: error: rollout: must be a map']);
  t.deepEqual(problemsOf('rollout: {constructor: 1}\n', '/c.yaml'), ['/c.yaml:1:11: error: rollout.constructor: unknown key (known: confirm, confirmSeconds, probes, probeSeconds)']);
});
