import test from 'ava';
import { parseAgentConfig } from '../../src/agent/read-config.js';
import { defaultAgentSettings } from '../../src/agent/agent-config.js';
import { InputError } from '../../src/api/problem.js';
import { parseListen } from '../../src/inventory/config-metrics.js';

test('parseListen: IPv4, [IPv6], localhost, off', (t) => {
  t.deepEqual(parseListen('127.0.0.1:9964'), { host: '127.0.0.1', port: 9964 });
  t.deepEqual(parseListen('0.0.0.0:1'), { host: '0.0.0.0', port: 1 });
  t.deepEqual(parseListen('[::1]:9964'), { host: '::1', port: 9964 });
  t.deepEqual(parseListen('[2001:db8::1]:65535'), { host: '2001:db8::1', port: 65535 });
  t.deepEqual(parseListen('localhost:9964'), { host: 'localhost', port: 9964 });
  t.is(parseListen('off'), 'off');
});

test('parseListen: bad addresses and ports are errors, not crashes', (t) => {
  for (const bad of ['', '9964', ':9964', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:99999', '::1:9964', '[::1]', '[127.0.0.1]:9964',
    '[::1]:x', 'example.com:9964', '300.1.1.1:80', '127.0.0.1:80:80', 'a'.repeat(10_000)]) {
    const r = parseListen(bad);
    t.true(typeof r === 'object' && 'error' in r, bad.slice(0, 40));
  }
});

test('metrics and driftMonitor keys: defaults, values, file:line:col errors', (t) => {
  t.deepEqual(parseAgentConfig('mode: enforce\n', '/c.yaml').agent.metricsListen, { host: '127.0.0.1', port: 9964 });
  t.true(defaultAgentSettings.driftMonitor);
  const r = parseAgentConfig('metrics:\n  listen: "[::1]:9100"\ndriftMonitor: false\n', '/c.yaml');
  t.deepEqual(r.agent.metricsListen, { host: '::1', port: 9100 });
  t.false(r.agent.driftMonitor);
  t.is(parseAgentConfig('metrics: {listen: off}\n', '/c.yaml').agent.metricsListen, 'off');
  t.is(parseAgentConfig('metrics: {listen: false}\n', '/c.yaml').agent.metricsListen, 'off');
  const err = t.throws(() => parseAgentConfig('mode: audit\nmetrics:\n  listen: "127.0.0.1:70000"\n  port: 1\ndriftMonitor: yes please\n', '/c.yaml'), { instanceOf: InputError });
  t.deepEqual(err?.problems.map((p) => [p.field, p.pos.file, p.pos.line, p.pos.col]), [
    ['metrics.listen', '/c.yaml', 3, 11], ['metrics.port', '/c.yaml', 4, 3], ['driftMonitor', '/c.yaml', 5, 15],
  ]);
  t.regex(err?.problems[0]?.message ?? '', /out of range/);
  const notMap = t.throws(() => parseAgentConfig('metrics: 127.0.0.1:9964\n', '/c.yaml'), { instanceOf: InputError });
  t.deepEqual(notMap?.problems.map((p) => [p.field, p.pos.line, p.pos.col]), [['metrics', 1, 10]]);
  const notString = t.throws(() => parseAgentConfig('metrics: {listen: 9964}\n', '/c.yaml'), { instanceOf: InputError });
  t.is(notString?.problems[0]?.field, 'metrics.listen');
});
