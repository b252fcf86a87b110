import test from 'ava';
import { parseDuration } from '../../src/cli/duration.js';
import { UsageError } from '../../src/cli/options.js';

test('durations: plain seconds and s/m/h units', (t) => {
  t.is(parseDuration('--x', '90', 1, 86_400), 90);
  t.is(parseDuration('--x', '60s', 1, 86_400), 60);
  t.is(parseDuration('--x', '2m', 1, 86_400), 120);
  t.is(parseDuration('--x', '1h', 1, 86_400), 3600);
  t.is(parseDuration('--x', '1m30s', 1, 86_400), 90);
});

test('durations: bad text and out-of-range values are usage errors naming the option', (t) => {
  for (const bad of ['', 's', '1.5m', '-5', '5d', '60 s', '1e3', 'ten']) {
    t.throws(() => parseDuration('--confirm-within', bad, 1, 86_400), { instanceOf: UsageError, message: /^--confirm-within: .* is not a duration/ }, bad);
  }
  t.throws(() => parseDuration('--confirm-within', '0s', 1, 86_400), { instanceOf: UsageError, message: /it must be from 1 s to 86400 s/ });
  t.throws(() => parseDuration('--confirm-within', '25h', 1, 86_400), { instanceOf: UsageError, message: /90000 s/ });
});
