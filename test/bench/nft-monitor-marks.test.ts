// The pure part of the scale bench's kernel-side observer (bench/nft-monitor-marks.ts): the child's
// `NANOS<TAB>LINE` lines, transactions, and the markers matched against nft 1.0.6 monitor lines as the
// bench sees them. No timing assertions.
import test from 'ava';
import {
  chainMarker,
  elementMarker,
  formatStamped,
  hasToken,
  MonitorLog,
  nanosToMs,
  parseStamped,
  ruleWithPortMarker,
} from '../../bench/nft-monitor-marks.js';

test('NANOS<TAB>LINE round-trips; other lines are not stamped lines', (t) => {
  const text = 'add element inet nodewall endpoints_7ec22537_v4 { 100.67.0.1 }';
  t.deepEqual(parseStamped(formatStamped(123456789012345678n, text).trimEnd()), { nanos: 123456789012345678n, text });
  // A tab inside the text stays in the text.
  t.deepEqual(parseStamped('5\ta\tb'), { nanos: 5n, text: 'a\tb' });
  t.deepEqual(parseStamped('7\t'), { nanos: 7n, text: '' });
  for (const bad of ['', 'no tab', '\tadd rule', '12x\tadd rule', '-3\tadd rule', '1.5\tadd rule']) t.is(parseStamped(bad), undefined, bad);
});

test('an address is matched as a whole token only', (t) => {
  const line = (addr: string) => `add element inet nodewall endpoints_7ec22537_v4 { ${addr} }`;
  const add1 = elementMarker('add', '100.67.0.1');
  t.true(add1(line('100.67.0.1')));
  t.false(add1(line('100.67.0.10')));
  t.false(add1(line('100.67.0.100')));
  t.false(add1(line('2100.67.0.1')));
  t.false(add1(line('100.67.0.1/31')), 'a merged prefix is not the address');
  t.false(add1(line('100.67.0.1-100.67.0.3')), 'nor a range starting with it');
  t.true(add1('add element inet nodewall s { 100.65.0.13, 100.67.0.1, 100.67.0.10 }'));
  t.true(elementMarker('add', '100.67.0.10')(line('100.67.0.10')));
  // Dots are not wildcards.
  t.false(add1(line('100x67.0.1')));
  t.true(hasToken('ip saddr 100.67.0.1 accept', '100.67.0.1'));
  t.false(hasToken('ip6 saddr ::100.67.0.1 accept', '100.67.0.1'));
});

test('element markers match the operation, not just the address', (t) => {
  const del = elementMarker('delete', '100.67.200.3');
  t.true(del('delete element inet nodewall endpoints_dc6b1e19_v4 { 100.67.200.3 }'));
  t.false(del('add element inet nodewall endpoints_dc6b1e19_v4 { 100.67.200.3 }'));
  t.false(elementMarker('add', '100.67.200.3')('delete element inet nodewall endpoints_dc6b1e19_v4 { 100.67.200.3 }'));
  t.false(del('add rule inet nodewall input ip saddr 100.67.200.3 accept comment "delete element 100.67.200.3"'));
});

test('a rule with the new port: dport as a single value or in a set, never part of another number', (t) => {
  const m = ruleWithPortMarker(20003);
  t.true(m('add rule inet nodewall nw_in_allow_host_0_0b6983d2a3e0 handle 263 meta nfproto ipv4 tcp dport 20003 counter packets 0 bytes 0 accept comment "host-0 spec.ingress[1]"'));
  t.true(m('add rule inet nodewall c meta nfproto ipv6 tcp dport 20003 counter packets 0 bytes 0 accept'));
  t.true(m('add rule inet nodewall c tcp dport { 1000, 20003 } accept'));
  t.false(m('add rule inet nodewall c tcp dport 200030 accept'));
  t.false(m('add rule inet nodewall c tcp dport 2000 accept'));
  t.false(m('add rule inet nodewall c tcp dport 20003-20010 accept'), 'a range is not the port');
  t.false(m('add rule inet nodewall c tcp dport { 1000, 20004 } accept comment "20003"'));
  t.false(m('add rule inet nodewall c tcp sport 20003 accept'));
  t.false(m('delete rule inet nodewall c handle 20003'));
  t.false(m('add element inet nodewall s { 20003 }'));
  t.false(ruleWithPortMarker(2000)('add rule inet nodewall c ip saddr 100.67.20.0 tcp dport 20003 accept'));
});

test('a chain marker matches the operation and the name prefix', (t) => {
  const m = chainMarker('add', 'nodewall', 'nw_in_allow_host_6_');
  t.true(m('add chain inet nodewall nw_in_allow_host_6_2af9836dc5cf'));
  t.false(m('add chain inet nodewall nw_in_allow_host_60_0a1b2c3d4e5f'));
  t.false(m('delete chain inet nodewall nw_in_allow_host_6_2af9836dc5cf'));
  t.false(m('add chain inet other nw_in_allow_host_6_2af9836dc5cf'));
  t.false(m('add rule inet nodewall nw_in_allow_host_6_2af9836dc5cf counter accept'));
  t.true(chainMarker('delete', 'nodewall', 'nw_in_allow_host_5_')('delete chain inet nodewall nw_in_allow_host_5_9c6976dd2fba'));
});

test('each line carries the stamp of the first line of its transaction', async (t) => {
  const log = new MonitorLog();
  for (const l of [
    '10\tadd element inet nodewall a { 100.67.0.0 }',
    '10\tadd element inet nodewall b { 100.67.0.0 }',
    '11\t# new generation 7 by process 1 (nft)',
    'garbage',
    '20\tdelete element inet nodewall a { 100.67.0.1 }',
    '25\tadd rule inet nodewall c tcp dport 20001 accept',
    '26\t# new generation 8 by process 2 (nft)',
  ]) log.push(l);
  t.deepEqual(log.lines.map((l) => [l.nanos, l.txNanos]), [[10n, 10n], [10n, 10n], [11n, 10n], [20n, 20n], [25n, 20n], [26n, 20n]]);
  const seen = await log.waitFor(ruleWithPortMarker(20001), 0, 1000, 'rule');
  t.is(seen.nanos, 25n);
  t.is(seen.txNanos, 20n);
  t.is(nanosToMs(10n, seen.txNanos), 1e-5);
  // From a position on only: the first match after the mark.
  t.is((await log.waitFor(elementMarker('add', '100.67.0.0'), 1, 1000, 'second')).text, 'add element inet nodewall b { 100.67.0.0 }');
});

test('a wait sees lines pushed later, and fails with what it waited for', async (t) => {
  const log = new MonitorLog();
  const waiting = log.waitFor(elementMarker('delete', '100.67.0.5'), 0, 60_000, 'delete element 100.67.0.5');
  log.push('1\tdelete element inet nodewall a { 100.67.0.50 }');
  log.push('2\tdelete element inet nodewall a { 100.67.0.5 }');
  t.is((await waiting).nanos, 2n);
  const never = log.waitFor(elementMarker('add', '100.67.9.9'), 0, 60_000, 'add element 100.67.9.9');
  log.end('exited (SIGTERM)');
  await t.throwsAsync(never, { message: /add element 100\.67\.9\.9 never seen \(the observer ended: exited \(SIGTERM\)\)/ });
  await t.throwsAsync(new MonitorLog().waitFor(() => false, 0, 0, 'the probe table'), { message: /the probe table not seen within 0 ms/ });
});
