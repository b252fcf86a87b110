import { dropRecordsOf } from '../../inventory/types.js';
import type { Argv, CommandModule } from 'yargs';
import { renderRuleset } from '../../nft/render.js';
import type { StateArgs } from '../options.js';
import { exitCodes, stateOptions } from '../options.js';
import { loadStateFromArgs, refuseInvalid } from '../state-args.js';
import { nftMode } from './nft-mode.js';

interface RenderArgs extends StateArgs {
  mode?: 'enforce' | 'audit' | undefined;
}

export const renderCommand: CommandModule<object, RenderArgs> = {
  command: 'render',
  describe: 'Print the complete nft script for this node (nft -f - creates or atomically replaces only nodewall\'s table)',
  builder: (y: Argv) =>
    y
      .options(stateOptions)
      .option('mode', { choices: ['enforce', 'audit'] as const, describe: 'ruleset flavour (default: config mode; dry-run renders enforce)' }) as unknown as Argv<RenderArgs>,
  handler: async (argv) => {
    const state = await loadStateFromArgs(argv);
    // A script without the rejected policies piped into `nft -f -` would replace the ruleset in force.
    if (refuseInvalid(state, 'not rendering: fix the errors above (nodewall validate lists every problem)')) return;
    process.stdout.write(renderRuleset(state.model, { table: state.config.nft.table, mode: nftMode(argv.mode, state.config.mode), dropRecords: dropRecordsOf(state.config) }));
    process.exitCode = exitCodes.ok;
  },
};
