// The agent reads its config file on every pass (a change must be noticed on the next one) but parses
// it only when its bytes changed: parseConfig is a pure function of the text and the file name, and at
// cluster scale the YAML parse was ~1 ms of every pod event. The overrides are applied again only when
// the parsed config or the overrides object changed, so the resulting config object stays the same
// object from pass to pass (later stages compare it by identity before serialising it).
// A config that fails to parse is not remembered: it is read and parsed (and reported) on every pass,
// exactly as without the memo.

import type { ConfigOverrides } from '../inventory/config.js';
import { readConfigText } from '../inventory/config.js';
import { agentConfigOf, readAgentConfig, withOverrides, type AgentConfig } from './read-config.js';

export class ConfigMemo {
  #parsed: { readonly file: string; readonly text: string; readonly config: AgentConfig } | undefined;
  #merged: { readonly base: AgentConfig; readonly overrides: ConfigOverrides; readonly config: AgentConfig } | undefined;
  /** Passes whose config text was parsed (for tests). */
  parses = 0;

  /** readAgentConfig, parsing only when the file name or its text differ from the last successful parse. Throws InputError. */
  async read(file: string | undefined): Promise<AgentConfig> {
    if (file === undefined) return readAgentConfig(undefined);
    const text = (await readConfigText(file)) ?? '';
    const hit = this.#parsed;
    if (hit !== undefined && hit.file === file && hit.text === text) return hit.config;
    this.parses++;
    const config = agentConfigOf(file, text);
    this.#parsed = { file, text, config };
    return config;
  }

  /** withOverrides(base, overrides), the same object again while both are the same. */
  withOverrides(base: AgentConfig, overrides: ConfigOverrides): AgentConfig {
    const hit = this.#merged;
    if (hit !== undefined && hit.base === base && hit.overrides === overrides) return hit.config;
    const config = withOverrides(base, overrides);
    this.#merged = { base, overrides, config };
    return config;
  }
}
