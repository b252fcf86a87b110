import test from 'ava';
import { agentSettings, defaultAgentSettings } from '../../src/agent/agent-config.js';
import { parseAgentConfig } from '../../src/agent/read-config.js';
import { InputError } from '../../src/api/problem.js';

test('agent keys come from the config file, absent ones are defaults', (t) => {
  const r = parseAgentConfig('mode: enforce\nlockoutGuard: refuse\nremoveOnStop: true\ndriftCheckSeconds: 2\n', '/etc/nodewall/nodewall.yaml');
  t.is(r.config.mode, 'enforce');
  t.deepEqual(r.agent, { ...defaultAgentSettings, lockoutGuard: 'refuse', removeOnStop: true, driftCheckSeconds: 2 });
});

test('bad agent values are config problems with line and column', (t) => {
  const err = t.throws(() => parseAgentConfig('mode: audit\nlockoutGuard: maybe\ndebounceMs: -1\n', '/c.yaml'), { instanceOf: InputError });
  t.deepEqual(err?.problems.map((p) => [p.field, p.pos.line, p.pos.col]), [['lockoutGuard', 2, 15], ['debounceMs', 3, 13]]);
});

test('no agent keys: defaults', (t) => {
  t.deepEqual(agentSettings(parseAgentConfig('mode: dry-run\n', '/c.yaml').config), defaultAgentSettings);
});
