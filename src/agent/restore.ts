// What the agent takes over from an earlier run, before its first pass: the
// persisted last good policies and config (last-good.json), from the right
// state directory only.
//
// The state directory is named by the config. When the config cannot be read
// (a broken edit, a first start with a typo), the agent must not adopt
// whatever it finds in the default state directory: a store there may belong
// to another config, and its config would make the agent enforce sources the
// operator never named. So a store read from a guessed directory is used only
// when its config is a good version of this very config file that lives in
// this directory; with --state-dir the directory is not a guess.

import type { Logger } from 'pino';
import type { ConfigOverrides } from '../inventory/config.js';
import { defaultConfig } from '../inventory/config.js';
import { quarantine, readStateFile } from '../inventory/state-files.js';
import type { GoodEntry } from './last-good.js';
import { loadLastGood } from './last-good-store.js';
import { configFromStore } from './reconcile.js';
import { readAgentConfig, withOverrides, type AgentConfig } from './read-config.js';
import { checkStatus, statusMaxBytes, statusPath } from './status-file.js';

export interface RestoreOptions {
  readonly configFile: string | undefined;
  readonly overrides: ConfigOverrides;
  /** The state directory when no config names one (tests; default /var/lib/nodewall). */
  readonly defaultStateDir?: string | undefined;
}

export interface Restored {
  /** Where the store was looked for (and where status goes while no config is usable). */
  readonly stateDir: string;
  /** How stateDir was found: from the config, the --state-dir override, or the default (config unusable). */
  readonly stateDirFrom: 'config' | 'override' | 'default';
  readonly policies: ReadonlyMap<string, GoodEntry>;
  readonly config?: AgentConfig;
  /** Problems worth a warning and a line in status (corrupt store, ignored store). */
  readonly warnings: readonly string[];
}

/** The state directory used while no config is usable: the override, else the default. */
export function fallbackStateDir(opts: RestoreOptions): { dir: string; from: 'override' | 'default' } {
  if (opts.overrides.stateDir !== undefined) return { dir: opts.overrides.stateDir, from: 'override' };
  return { dir: opts.defaultStateDir ?? defaultConfig.stateDir, from: 'default' };
}

export async function restorePersisted(opts: RestoreOptions, log: Logger): Promise<Restored> {
  let stateDir: string;
  let from: Restored['stateDirFrom'];
  try {
    stateDir = withOverrides(await readAgentConfig(opts.configFile), opts.overrides).config.stateDir;
    from = 'config';
  } catch {
    // Reported by the first pass, with file:line:col.
    ({ dir: stateDir, from } = fallbackStateDir(opts));
  }
  const warnings: string[] = [];
  await clearCorruptStatus(stateDir, log, warnings);

  const stored = await loadLastGood(stateDir);
  if (stored.error !== undefined) {
    const w = `last good store unusable, starting from the current input: ${stored.error.message}`;
    log.warn({ stateDir, file: stored.error.file, reason: stored.error.reason, movedTo: stored.error.movedTo ?? null }, w);
    warnings.push(w);
  }
  const config = stored.config === undefined ? undefined : configFromStore(stored.config);
  // The stored config is a good version of this config file, and its state dir is this one.
  const ours = config !== undefined && config.file === opts.configFile && withOverrides(config, opts.overrides).config.stateDir === stateDir;
  if (from === 'default' && !ours) {
    if (stored.policies.size > 0 || stored.config !== undefined) {
      const w = `ignoring the last good state in ${stateDir}: the config is unusable and that state is not this config's (${stored.config?.file ?? 'no config stored'})`;
      log.warn({ stateDir, storedConfig: stored.config?.file ?? null, config: opts.configFile ?? null }, w);
      warnings.push(w);
    }
    return { stateDir, stateDirFrom: from, policies: new Map(), warnings };
  }
  if (stored.config !== undefined && !ours) {
    log.warn({ stateDir, storedConfig: stored.config.file, config: opts.configFile ?? null }, 'the last good config in the store is not this config file\'s: not used');
  }
  if (stored.policies.size > 0) log.info({ stateDir, policies: stored.policies.size }, 'restored last good policies');
  return { stateDir, stateDirFrom: from, policies: stored.policies, ...(ours ? { config } : {}), warnings };
}

/** A status.json the agent could not replace (a directory) or that `status` cannot read is moved aside. */
async function clearCorruptStatus(stateDir: string, log: Logger, warnings: string[]): Promise<void> {
  const file = statusPath(stateDir);
  const r = await readStateFile(file, statusMaxBytes, checkStatus);
  if (r.kind !== 'corrupt') return;
  let movedTo: string | null = null;
  try {
    movedTo = await quarantine(file);
  } catch (err) {
    log.warn({ file, err }, 'cannot move the corrupt status file aside');
  }
  const w = `status file ${file} was corrupt (${r.reason})${movedTo === null ? '' : `; moved to ${movedTo}`}`;
  log.warn({ file, reason: r.reason, movedTo }, w);
  warnings.push(w);
}
