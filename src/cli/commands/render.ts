import type { Argv, CommandModule } from 'yargs';
import { formatProblem } from '../../api/problem.js';
import { renderRuleset } from '../../nft/render.js';
import type { StateArgs } from '../options.js';
import { exitCodes, stateOptions } from '../options.js';
import { loadStateFromArgs } from '../state-args.js';
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
    const errors = state.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0) {
      // A script without the rejected policies piped into `nft -f -` would replace the ruleset in force
      // with a weaker one; print nothing, as `apply` refuses to load.
      for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
      process.stderr.write('nodewall: not rendering: fix the errors above (nodewall validate lists every problem)\n');
      process.exitCode = exitCodes.invalidInput;
      return;
    }
    process.stdout.write(renderRuleset(state.model, { table: state.config.nft.table, mode: nftMode(argv.mode, state.config.mode) }));
    process.exitCode = exitCodes.ok;
  },
};
