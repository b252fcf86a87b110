import test from 'ava';
import { isServiceName, parseGoPort } from '../../src/api/validate-l4.js';

test('Go port parsing (strconv.ParseUint base 0, 16 bits)', (t) => {
  t.is(parseGoPort('80'), 80);
  t.is(parseGoPort('010'), 8);
  t.is(parseGoPort('0x50'), 0x50);
  t.is(parseGoPort('0o17'), 15);
  t.is(parseGoPort('0b11'), 3);
  t.is(parseGoPort('0x_50'), 0x50);
  t.is(parseGoPort('1_000'), undefined);
  t.is(parseGoPort('65536'), undefined);
  t.is(parseGoPort('08'), undefined);
  t.is(parseGoPort(''), undefined);
});

test('IANA service names (named ports)', (t) => {
  for (const name of ['http', 'dns-tcp', '0x50', 'A1', 'h2c']) t.true(isServiceName(name), name);
  for (const name of ['8080', '', 'a--b', '-a', 'a-', 'abcdefghijklmnop', 'a_b']) t.false(isServiceName(name), name);
});
