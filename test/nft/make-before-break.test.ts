// The scripts of a make-before-break replace (src/nft/make-before-break.ts), as text: the invariant that no
// transaction both fills a set and makes rules visible to packets, and the order of the two tables' builds.

import test from 'ava';
import { makeBeforeBreakScripts, temporaryTableNames } from '../../src/nft/make-before-break.js';
import { renderPlan } from '../../src/nft/render.js';
import * as b from '../helpers/model-builders.js';

const model = b.model({
  sets: [
    b.identity('pods', ['198.51.100.5/32', '198.51.100.6/32', '198.51.100.7/32'], ['2001:db8:100::5/128'], { kind: 'endpoints' }),
    b.identity('world', ['0.0.0.0/0'], ['::/0']),
  ],
  ingress: b.enforced([b.deny('pods', [b.tcp(25)]), b.allow('world', [b.tcp(22, [8000, 8080])])]),
  egress: b.enforced([b.allow('pods', [b.udp(53)], 'spec.egress[0]')]),
});

const fills = (s: string) => /^add element /m.test(s) || /elements = \{/.test(s);
const hooks = (s: string) => /hook (input|output)/.test(s);

test('no transaction both fills a set and hooks a chain; the temporary table is whole before the table is touched', (t) => {
  const r = renderPlan(model, { table: 'nodewall', mode: 'enforce' });
  const s = makeBeforeBreakScripts(r, 2, 'nodewall_next1', ['nodewall_next0']);
  for (const script of [...s.temporary, ...s.table]) t.false(fills(script) && hooks(script), script);
  // Temporary: created (fails if the name is taken), filled in transactions of at most 2 elements, hooked last.
  t.regex(s.temporary[0] ?? '', /^create table inet nodewall_next1 \{ comment "nodewall node=[^"]*"; \}$/m);
  t.false(s.temporary.slice(0, -1).some(hooks));
  t.true(hooks(s.temporary.at(-1) ?? ''));
  t.true(s.temporary.length >= 4);
  // The stale temporary table goes when the new one is hooked (never two rulesets intersected), not before.
  const tempHook = s.temporary.at(-1) ?? '';
  t.regex(tempHook, /^delete table inet nodewall_next0$/m);
  t.notRegex(tempHook, /^delete table inet nodewall_next1$/m);
  t.true(tempHook.indexOf('delete table inet nodewall_next0') > tempHook.lastIndexOf('add rule inet nodewall_next1 input'));
  t.false(s.temporary.slice(0, -1).some((x) => x.includes('delete table inet nodewall_next0')));
  // The table: replaced by an unhooked copy first; its hook transaction also deletes every temporary table.
  t.regex(s.table[0] ?? '', /^table inet nodewall \{\}\ndelete table inet nodewall\ntable inet nodewall \{$/m);
  t.false(hooks(s.table[0] ?? ''));
  const last = s.table.at(-1) ?? '';
  t.true(hooks(last));
  t.regex(last, /^delete table inet nodewall_next1$/m);
  t.regex(last, /^delete table inet nodewall_next0$/m);
  t.true(last.indexOf('delete table inet nodewall_next1') > last.lastIndexOf('add rule inet nodewall input'), 'deleted with the hooks, after them');
  t.false(s.temporary.some((x) => /delete table inet nodewall\b(?!_)/.test(x)), 'the table is not touched while the temporary one is built');
});

test('temporary names follow the table name and are few', (t) => {
  t.deepEqual(temporaryTableNames('fw'), ['fw_next0', 'fw_next1', 'fw_next2', 'fw_next3']);
});
