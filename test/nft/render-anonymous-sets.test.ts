// No rendered rule carries an anonymous interval set (a `{ ... }` with a range in it): the kernel publishes a
// new interval set's elements only after its transaction made the rule visible, so such a rule matches nothing
// for a moment whenever it is (re)loaded (src/nft/render-rules.ts numberList, README "Transactions and the kernel").

import test from 'ava';
import { renderPlan } from '../../src/nft/render.js';
import { buildCaseState, loadConformanceCases } from '../helpers/conformance.js';
import * as b from '../helpers/model-builders.js';

/** An inline `{ ... }` of a rule whose elements include a range `a-b` (not set declarations: those are named). */
const anonymousInterval = /\{[^{}]*\b\d+-\d+\b[^{}]*\}/;

function offending(rules: readonly { readonly text: string }[]): string[] {
  return rules.map((r) => r.text).filter((text) => anonymousInterval.test(text));
}

test('every conformance case, in every mode: no rule has an anonymous interval set', (t) => {
  let rules = 0;
  for (const c of loadConformanceCases()) {
    const { model } = buildCaseState(c);
    for (const mode of ['enforce', 'audit'] as const) {
      const plan = renderPlan(model, { table: 'nodewall', mode, dropRecords: { size: 1024, timeoutSeconds: 600, log: true } });
      const texts = [...plan.chains.values()].flatMap((ch) => ch.rules.map((text) => ({ text })));
      rules += texts.length;
      t.deepEqual(offending(texts), [], `${c.file}:${c.line} ${c.name} (${mode})`);
    }
  }
  t.true(rules > 1000, `${rules} rules looked at`);
});

test('ranges and long lists of ports, ICMP types and protocols render without one', (t) => {
  const m = b.model({
    sets: [b.identity('pods', ['198.51.100.5/32'], [], { kind: 'endpoints' })],
    ingress: b.enforced([
      b.allow('pods', [b.tcp(22, 23, 24, [8000, 8080], 443, [30000, 32767]), b.udp([0, 1023], 5353), b.icmp('ipv4', 0, 3, 4, 5, 8, 11), b.icmp('ipv6', 128, 129, 1, 2, 3)]),
      b.allow(null, [{ kind: 'proto', proto: 47, name: 'gre' }, { kind: 'proto', proto: 112, name: 'vrrp' }, { kind: 'proto', proto: 113, name: 'pgm' }], 'spec.ingress[1]'),
    ]),
  });
  const plan = renderPlan(m, { table: 'nodewall', mode: 'enforce' });
  const texts = [...plan.chains.values()].flatMap((ch) => ch.rules.map((text) => ({ text })));
  t.deepEqual(offending(texts), []);
  // The check itself catches one.
  t.deepEqual(offending([{ text: 'tcp dport { 22, 8000-8080 } accept' }]).length, 1);
  // Ranges are still there, as range expressions.
  t.true(texts.some((x) => x.text.includes('tcp dport 8000-8080 ')));
  t.true(texts.some((x) => x.text.includes('icmp type { 0, 3, 4, 5, 8, 11 }')));
});
