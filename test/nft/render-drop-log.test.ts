// logDrops (src/nft/render-drop-log.ts): a rate-limited log rule with the same match right before every rule
// that drops, never a verdict of its own; prefixes name the rule and stay within the kernel's limit.

import test from 'ava';
import { renderPlan } from '../../src/nft/render.js';
import { directionRules } from '../../src/nft/render-rules.js';
import { dropLogPrefix, dropLogRule, maxDropLogPrefixBytes } from '../../src/nft/render-drop-log.js';
import { parseConfig } from '../../src/inventory/config.js';
import { InputError, formatProblem } from '../../src/api/problem.js';
import { dropRecordsOf } from '../../src/inventory/types.js';
import { checkScript } from '../../src/nft/nft-exec.js';
import * as b from '../helpers/model-builders.js';
import { throwawayNetns } from './netns.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' });
const pods = b.identity('pods', ['198.51.100.5/32'], ['2001:db8:100::5/128'], { kind: 'endpoints' });
const longName = `a${'-very-long-policy-name'.repeat(10)}`.slice(0, 200);

function demo() {
  return b.model({
    sets: [world, pods],
    exclusions: { cluster: { v4: ['198.51.100.0/24'], v6: ['2001:db8:100::/64'] }, cluster_non_node: { v4: [], v6: [] } },
    ingress: b.enforced([b.allow('world', [b.tcp(22)], 'spec.ingress[0]'), b.deny('pods', [b.anyL4], 'spec.ingressDeny[0]', longName)]),
    egress: b.enforced([b.allow('pods', [b.udp(53)], 'spec.egress[0]')], true),
  });
}

test('every drop gets a log rule with the same match right before it; nothing else does', (t) => {
  for (const direction of ['ingress', 'egress'] as const) {
    const chain = direction === 'ingress' ? 'nw_drop_in' : 'nw_drop_out';
    const rules = directionRules(demo(), direction, 'enforce', true, true);
    const plain = directionRules(demo(), direction, 'enforce', true);
    t.deepEqual(rules.filter((r) => !r.includes('log prefix')), plain, `${direction}: the other rules are unchanged`);
    const drops = rules.map((r, i) => [r, i] as const).filter(([r]) => r.includes(`goto ${chain}`));
    t.true(drops.length >= (direction === 'ingress' ? 4 : 1));
    for (const [r, i] of drops) {
      const log = rules[i - 1] ?? '';
      const match = r.slice(0, r.indexOf('counter goto')).trim();
      t.true(log.startsWith(match), `${log} | ${r}`);
      t.regex(log, /limit rate 10\/minute burst 5 packets counter log prefix "nodewall drop [^"]+: " level warn comment "nodewall drop log"$/);
      // No verdict: a packet over the limit, and a logged one, go on to the drop below.
      t.false(/ (accept|drop|goto|jump|return)( |$)/.test(log.replace(/"[^"]*"/g, '""')), log);
    }
    t.is(rules.filter((r) => r.includes('log prefix')).length, drops.length, 'one log rule per drop rule');
  }
  const ingress = directionRules(demo(), 'ingress', 'enforce', true, true);
  t.true(ingress.some((r) => r.includes('log prefix "nodewall drop default-deny: "')));
  t.true(ingress.some((r) => r.includes('log prefix "nodewall drop datapath icmpv6 drop: "')));
  // Audit mode (also a pause) drops nothing: no log rules.
  t.false(directionRules(demo(), 'ingress', 'audit', false, true).some((r) => r.includes('log prefix')));
});

test('prefixes name the rule, stay within the kernel limit, and long names stay apart', (t) => {
  t.is(dropLogPrefix('edge spec.ingressDeny[0]'), 'nodewall drop edge spec.ingressDeny[0]: ');
  const a = dropLogPrefix(`${longName} spec.ingressDeny[0]`);
  const c = dropLogPrefix(`${longName} spec.ingressDeny[1]`);
  t.true(Buffer.byteLength(a) <= maxDropLogPrefixBytes && Buffer.byteLength(c) <= maxDropLogPrefixBytes);
  t.not(a, c);
  t.regex(a, /^nodewall drop a-very-long-policy-name.*~[0-9a-f]{8}: $/);
  t.is(dropLogRule('counter accept comment "x"', 'goto nw_drop_in'), undefined, 'accepts are never logged');
  // The cut never splits a character (a lone surrogate would reach nft as U+FFFD).
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  for (let i = 0; i < 8; i++) {
    const p = dropLogPrefix(`${'a'.repeat(i)}${'\u{1F600}'.repeat(40)} spec.ingress[0]`);
    t.true(Buffer.byteLength(p) <= maxDropLogPrefixBytes);
    t.notRegex(p, lone);
  }
});

test('logDrops in the config: off by default, folded into the drop-record settings; with dropRecords off it is an error at its line', (t) => {
  const file = '/etc/nodewall/nodewall.yaml';
  t.is(dropRecordsOf(parseConfig('', file))?.log, undefined);
  t.deepEqual(dropRecordsOf(parseConfig('logDrops: true\ndropRecords: {size: 10}\n', file)), { size: 10, timeoutSeconds: 3600, log: true });
  t.is(dropRecordsOf(parseConfig('logDrops: false\n', file))?.log, undefined);
  const problems = (text: string): string[] => {
    try {
      parseConfig(text, file);
    } catch (err) {
      if (err instanceof InputError) return err.problems.map(formatProblem);
      throw err;
    }
    return [];
  };
  t.deepEqual(problems('mode: enforce\ndropRecords: off\nlogDrops: true\n'), [`${file}:3:11: error: logDrops: needs drop records: remove \`dropRecords: off\` (or set logDrops: false)`]);
  t.regex(problems('logDrops: yes please\n')[0] ?? '', /logDrops/);
  const plan = renderPlan(demo(), { table: 'nodewall', mode: 'enforce', dropRecords: { size: 100, timeoutSeconds: 60, log: true } });
  t.true(plan.script.includes('log prefix "nodewall drop default-deny: "'));
  t.false(renderPlan(demo(), { table: 'nodewall', mode: 'enforce', dropRecords: { size: 100, timeoutSeconds: 60 } }).script.includes('log prefix'), 'the chain cache tells them apart');
});

test('nft -c accepts the ruleset with log rules', async (t) => {
  const ns = await throwawayNetns(t, 'dlog');
  const plan = renderPlan(demo(), { table: 'nodewall', mode: 'enforce', dropRecords: { size: 100, timeoutSeconds: 60, log: true } });
  await checkScript('/usr/sbin/nft', plan.script, { netns: ns });
  t.pass();
});
