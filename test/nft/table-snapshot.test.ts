// A kept table listing must be exactly one `table inet T { ... }` block before it is ever loaded back:
// it comes from a state file that may be damaged or hostile.

import test from 'ava';
import { restoreScript, RestoreError, snapshotProblem } from '../../src/nft/table-snapshot.js';

const good = [
  'table inet nodewall {',
  '\tset nw_owner {',
  '\t\ttype inet_proto',
  '\t\tcomment "nodewall ownership mark: this table is managed by nodewall"',
  '\t}',
  '\tchain nw_input {',
  '\t\ttype filter hook input priority filter; policy drop;',
  '\t\ttcp dport 22 counter packets 3 bytes 180 accept comment "p spec.ingress[0] } { ; include"',
  '\t}',
  '}',
  '',
].join('\n');

test('a listing of the table is accepted and restored in one add/delete/load transaction', (t) => {
  t.is(snapshotProblem(good, 'nodewall'), undefined);
  const s = restoreScript({ kind: 'table', ownership: 'mark', script: good }, 'nodewall');
  t.true(s?.startsWith('add table inet nodewall\ndelete table inet nodewall\ntable inet nodewall {'));
  t.is(restoreScript({ kind: 'absent' }, 'nodewall'), undefined);
});

test('anything but one block of this table is refused, naming why', (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['flush ruleset\n', /does not start with "table inet nodewall \{"/],
    [good.replace('table inet nodewall {', 'table inet filter {'), /does not start with/],
    [good.replace('table inet nodewall {', 'table ip nodewall {'), /does not start with/],
    [`${good}flush ruleset\n`, /more after the table block/],
    [`${good}table inet other {\n}\n`, /more after the table block/],
    [good.replace('\t}\n}', '\t}\n}\n}\ndelete table inet other\ntable inet nodewall {\n}'), /more after the table block/],
    [good.replace('\tchain nw_input {', '\tinclude "/etc/shadow"\n\tchain nw_input {'), /include\/define/],
    [good.replace('\tchain nw_input {', '\tdefine x = 1\n\tchain nw_input {'), /include\/define/],
    [good.slice(0, good.lastIndexOf('}')), /not closed/],
    [good.replace('comment "p', 'comment "p\n'), /string runs past the end of its line/],
    [good.replace('policy drop', 'policy\0drop'), /NUL/],
  ];
  for (const [script, re] of cases) {
    t.regex(snapshotProblem(script, 'nodewall') ?? 'accepted', re, JSON.stringify(script.slice(0, 60)));
    t.throws(() => restoreScript({ kind: 'table', ownership: 'mark', script }, 'nodewall'), { instanceOf: RestoreError });
  }
});
