// Read nodewall.yaml for the agent (parseConfig), with the agent's settings
// resolved and command-line overrides on top.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_CONFIG_PATH, defaultConfig, mergeConfig, parseConfig, readConfigText, type ConfigOverrides } from '../inventory/config.js';
import type { NodewallConfig } from '../inventory/types.js';
import { agentSettings, defaultAgentSettings, type AgentSettings } from './agent-config.js';
import { sha256 } from '../inventory/read-manifest-files.js';

export interface AgentConfig {
  readonly config: NodewallConfig;
  readonly agent: AgentSettings;
  /** The file read, undefined = built-in defaults. */
  readonly file?: string;
  /** Text as read ("" for defaults): persisted as the last good config. */
  readonly text: string;
  readonly hash: string;
}

/** Which file the agent reads: the given path, else the default path when it exists, else none. */
export function configPathFor(path: string | undefined): string | undefined {
  if (path !== undefined) return resolve(path);
  return existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined;
}

/** Parse a config text (also used for the persisted last good config). Throws InputError. */
export function parseAgentConfig(text: string, file: string): { config: NodewallConfig; agent: AgentSettings } {
  const config = parseConfig(text, file);
  return { config, agent: agentSettings(config) };
}

export async function readAgentConfig(file: string | undefined): Promise<AgentConfig> {
  if (file === undefined) return { config: defaultConfig, agent: defaultAgentSettings, text: '', hash: sha256('') };
  return agentConfigOf(file, (await readConfigText(file)) ?? '');
}

/** The AgentConfig of a config file's text (parsed; throws InputError). */
export function agentConfigOf(file: string, text: string): AgentConfig {
  return { ...parseAgentConfig(text, file), file, text, hash: sha256(text) };
}

export function withOverrides(c: AgentConfig, overrides: ConfigOverrides): AgentConfig {
  const config = mergeConfig(c.config, overrides);
  return { ...c, config, agent: agentSettings(config) };
}
