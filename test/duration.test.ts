import test from 'ava';
import { durationMs } from '../src/duration.js';
import { parseDuration } from '../src/cli/duration.js';
import { parsePauseDuration } from '../src/agent/pause.js';

test('one grammar: h, m, s, ms in this order, each at most once', (t) => {
  t.is(durationMs('1h30m'), 5_400_000);
  t.is(durationMs('1m30s'), 90_000);
  t.is(durationMs('2s500ms'), 2500);
  t.is(durationMs(' 15m '), 900_000);
  for (const bad of ['', 'ms', '30s1m', '1m1m', '15', '1.5m', '-5m', '5d', '1 m', '1e3s', '9999999999h']) t.is(durationMs(bad), undefined, bad);
});

test('apply --confirm-within and pause --for read the same grammar', (t) => {
  for (const text of ['1h', '2m', '1m30s', '1h30m']) t.is(parseDuration('--x', text, 1, 86_400) * 1000, parsePauseDuration(text), text);
  t.throws(() => parseDuration('--x', '30s1m', 1, 86_400), { message: /is not a duration/ });
  t.throws(() => parsePauseDuration('30s1m'), { message: /not a duration/ });
  // Whole seconds only for --confirm-within (the record's `seconds` is an integer).
  t.throws(() => parseDuration('--x', '1500ms', 1, 86_400), { message: /is not a duration/ });
  t.is(parseDuration('--x', '2000ms', 1, 86_400), 2);
});
