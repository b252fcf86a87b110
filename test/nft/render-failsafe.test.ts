// Failsafe rules: after the datapath rules, before the not-enforced accept and every policy jump, accept in
// every mode; none configured = the ruleset is byte for byte what it was.

import test from 'ava';
import { checkScript } from '../../src/nft/nft-exec.js';
import { renderPlan } from '../../src/nft/render.js';
import { directionRules, failsafeRule } from '../../src/nft/render-rules.js';
import { splitComment } from '../../src/nft/read-kernel.js';
import { noFailsafes, parseFailsafeEntry, type Failsafes } from '../../src/policy/failsafe.js';
import * as b from '../helpers/model-builders.js';
import { throwawayNetns } from './netns.js';

const failsafe: Failsafes = {
  ingress: [parseFailsafeEntry('tcp/22', 'ingress'), parseFailsafeEntry('tcp/6443 from 192.0.2.0/24', 'ingress'), parseFailsafeEntry('sctp/30000-32767 from 2001:db8::/32', 'ingress')],
  egress: [parseFailsafeEntry('udp/53 to 198.51.100.53', 'egress')],
};
const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
const base = { sets: [world], ingress: b.enforced([b.deny('world', [b.anyL4], 'spec.ingressDeny[0]', 'lockdown'), b.allow('world', [b.tcp(80)], 'spec.ingress[0]', 'web')]), egress: b.enforced([]) };

test('failsafe rule texts', (t) => {
  t.is(failsafeRule(parseFailsafeEntry('tcp/22', 'ingress'), 'ingress'), 'tcp dport 22 counter accept comment "nodewall failsafe tcp/22"');
  t.is(failsafeRule(parseFailsafeEntry('tcp/6443 from 192.0.2.0/24', 'ingress'), 'ingress'), 'ip saddr 192.0.2.0/24 tcp dport 6443 counter accept comment "nodewall failsafe tcp/6443 from 192.0.2.0/24"');
  t.is(failsafeRule(parseFailsafeEntry('udp/53-54 to 2001:db8::53', 'egress'), 'egress'), 'ip6 daddr 2001:db8::53/128 udp dport 53-54 counter accept comment "nodewall failsafe udp/53-54 to 2001:db8::53/128"');
});

for (const mode of ['enforce', 'audit'] as const) {
  test(`${mode}: failsafes come after the datapath rules and before any policy rule, as accepts`, (t) => {
    const m = b.model({ ...base, failsafe });
    const rules = directionRules(m, 'ingress', mode);
    const first = rules.findIndex((r) => r.includes('nodewall failsafe'));
    const policy = rules.findIndex((r) => r.includes('"lockdown ') || r.includes('"web '));
    const datapath = rules.findIndex((r) => r.includes('nodewall datapath icmpv6 drop'));
    t.true(datapath >= 0 && first > datapath, 'after the datapath rules');
    t.true(policy > first + 2, 'before the policy rules');
    t.deepEqual(rules.slice(first, first + 3).map((r) => / (accept) comment/.exec(r)?.[1]), ['accept', 'accept', 'accept']);
    const egress = directionRules(m, 'egress', mode);
    t.is(egress.filter((r) => r.includes('nodewall failsafe')).length, 1);
    t.true(egress.findIndex((r) => r.includes('nodewall failsafe')) < egress.findIndex((r) => r.includes('nodewall default-deny')));
  });
}

test('an unenforced direction gets its failsafes too (before the not-enforced accept)', (t) => {
  const rules = directionRules(b.model({ failsafe }), 'ingress', 'enforce');
  t.true(rules.findIndex((r) => r.includes('nodewall failsafe tcp/22')) < rules.findIndex((r) => r.includes('nodewall not enforced')));
});

test('no failsafes: the rendered ruleset is unchanged; a failsafe change changes the structure hash', (t) => {
  const before = renderPlan(b.model(base), { table: 'nodewall', mode: 'enforce' });
  const none = renderPlan(b.model({ ...base, failsafe: noFailsafes }), { table: 'nodewall', mode: 'enforce' });
  t.is(none.script, before.script);
  t.false(before.script.includes('failsafe'));
  const withFs = renderPlan(b.model({ ...base, failsafe }), { table: 'nodewall', mode: 'enforce' });
  t.not(withFs.structureHash, before.structureHash);
  // The chains cache must not hand out the chains of the model without failsafes.
  const sameDirections = b.model({ ...base, failsafe });
  const again = renderPlan({ ...sameDirections, ingress: b.model(base).ingress }, { table: 'nodewall', mode: 'enforce' });
  t.true(again.script.includes('nodewall failsafe tcp/22'));
});

test('list reads failsafe comments back as policy "failsafe"', (t) => {
  t.deepEqual(splitComment('nodewall failsafe tcp/6443 from 192.0.2.0/24'), { policy: 'failsafe', rule: 'tcp/6443 from 192.0.2.0/24' });
  t.deepEqual(splitComment('web spec.ingress[0]'), { policy: 'web', rule: 'spec.ingress[0]' });
});

test('nft -c accepts failsafe rules in every mode', async (t) => {
  const ns = await throwawayNetns(t, 'fsc');
  for (const mode of ['enforce', 'audit'] as const) {
    await checkScript('/usr/sbin/nft', renderPlan(b.model({ ...base, failsafe }), { table: 'nodewall', mode }).script, { netns: ns });
  }
  t.pass();
});
