import type { RunMode } from '../../inventory/types.js';

/** The ruleset flavour for render/apply: an explicit --mode wins; config dry-run still renders what enforce would load. */
export function nftMode(flag: 'enforce' | 'audit' | undefined, configMode: RunMode): 'enforce' | 'audit' {
  return flag ?? (configMode === 'audit' ? 'audit' : 'enforce');
}
