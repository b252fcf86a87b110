import test from 'ava';
import { defaultAgentSettings, splitAgentConfig } from '../../src/agent/agent-config.js';

test('agent keys are read and blanked, other lines keep their positions', (t) => {
  const text = 'mode: enforce\nlockoutGuard: refuse\nremoveOnStop: true\nsources:\n  - policies/\ndriftCheckSeconds: 2\n';
  const r = splitAgentConfig(text, '/etc/nodewall/nodewall.yaml');
  t.deepEqual(r.problems, []);
  t.like(r.agent, { lockoutGuard: 'refuse', removeOnStop: true, driftCheckSeconds: 2, debounceMs: 300 });
  t.is(r.rest.length, text.length);
  t.deepEqual(r.rest.split('\n').map((l) => l.trim()), ['mode: enforce', '', '', 'sources:', '- policies/', '', '']);
});

test('bad agent values are problems with line and column', (t) => {
  const r = splitAgentConfig('mode: audit\nlockoutGuard: maybe\ndebounceMs: -1\n', 'c.yaml');
  t.deepEqual(r.problems.map((p) => [p.field, p.pos.line, p.pos.col]), [['lockoutGuard', 2, 15], ['debounceMs', 3, 13]]);
  t.is(r.agent.lockoutGuard, defaultAgentSettings.lockoutGuard);
});

test('no agent keys: text unchanged, defaults', (t) => {
  const text = '# comment\nmode: dry-run\n';
  const r = splitAgentConfig(text, 'c.yaml');
  t.is(r.rest, text);
  t.deepEqual(r.agent, defaultAgentSettings);
});
