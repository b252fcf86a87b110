// The agent's own keys in nodewall.yaml (top level, next to the engine keys):
//
//   lockoutGuard: warn        # warn | refuse | off: what to do when a change would cut an
//                             #   established inbound session (SSH...): log loudly / keep the
//                             #   previous ruleset / do not check
//   removeOnStop: false       # delete nodewall's table when the agent stops (default: leave it in force)
//   driftCheckSeconds: 5      # how often the kernel table is compared with what was applied (0 = never)
//   resyncSeconds: 60         # full re-read of config and sources even without file events (0 = never)
//   debounceMs: 300           # quiet time after a file event before reconciling
//   logLevel: info            # debug | info | warn | error
//
// parseConfig (the engine's) rejects unknown keys, so these are validated and
// then blanked out of the text (spaces, newlines kept) before the rest goes to
// parseConfig: its problems keep their line and column.

import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { Problem } from '../api/problem.js';
import type { LockoutGuardMode } from './lockout-guard.js';
import type { LogLevel } from './log.js';

export interface AgentSettings {
  readonly lockoutGuard: LockoutGuardMode;
  readonly removeOnStop: boolean;
  readonly driftCheckSeconds: number;
  readonly resyncSeconds: number;
  readonly debounceMs: number;
  readonly logLevel: LogLevel;
}

export const defaultAgentSettings: AgentSettings = {
  lockoutGuard: 'warn',
  removeOnStop: false,
  driftCheckSeconds: 5,
  resyncSeconds: 60,
  debounceMs: 300,
  logLevel: 'info',
};

type Check = (v: unknown) => string | undefined;
const oneOf = (choices: readonly string[]): Check => (v) =>
  typeof v === 'string' && choices.includes(v) ? undefined : `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`;
const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const number = (min: number, max: number): Check => (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? undefined : `must be a number from ${min} to ${max}`;

const checks: Readonly<Record<keyof AgentSettings, Check>> = {
  lockoutGuard: oneOf(['warn', 'refuse', 'off']),
  removeOnStop: boolean,
  driftCheckSeconds: number(0, 86_400),
  resyncSeconds: number(0, 86_400),
  debounceMs: number(0, 60_000),
  logLevel: oneOf(['debug', 'info', 'warn', 'error']),
};

export interface SplitConfig {
  readonly agent: AgentSettings;
  /** The text with the agent keys blanked out, for parseConfig. */
  readonly rest: string;
  readonly problems: Problem[];
}

export function splitAgentConfig(text: string, file: string): SplitConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const agent: Record<string, unknown> = { ...defaultAgentSettings };
  const problems: Problem[] = [];
  // A syntax error is reported by parseConfig on the untouched text.
  if (doc.errors.length > 0 || !isMap(doc.contents)) return { agent: defaultAgentSettings, rest: text, problems };
  // split('') gives UTF-16 code units, the unit of the yaml library's offsets.
  const chars = text.split('');
  let blanked = false;
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as YamlNode | null;
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string' || !(keyNode.value in checks)) continue;
    const key = keyNode.value as keyof AgentSettings;
    const valueNode = pair.value as YamlNode | null;
    const value = isScalar(valueNode) ? valueNode.value : valueNode?.toJSON();
    const why = checks[key](value);
    const start = keyNode.range?.[0] ?? 0;
    if (why !== undefined) {
      const lp = lineCounter.linePos(valueNode?.range?.[0] ?? start);
      problems.push({ severity: 'error', pos: { file, line: lp.line, col: lp.col }, field: key, message: why, code: 'config/bad-value' });
    } else {
      agent[key] = value;
    }
    const end = valueNode?.range?.[1] ?? keyNode.range?.[1] ?? start;
    for (let i = start; i < end; i++) if (text[i] !== '\n') chars[i] = ' ';
    blanked = true;
  }
  const rest = blanked ? chars.join('') : text;
  return { agent: agent as unknown as AgentSettings, rest, problems };
}
