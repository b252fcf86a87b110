import type { Argv, CommandModule } from 'yargs';
import { formatProblem } from '../../api/problem.js';
import { renderRuleset } from '../../nft/render.js';
import { hasErrors } from '../../pipeline.js';
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
    const script = renderRuleset(state.model, { table: state.config.nft.table, mode: nftMode(argv.mode, state.config.mode) });
    process.stdout.write(script);
    const errors = state.problems.filter((p) => p.severity === 'error');
    for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
    if (errors.length > 0) process.stderr.write('some policies are invalid and were left out of this ruleset, as Cilium would reject them\n');
    process.exitCode = hasErrors(state.problems) ? exitCodes.invalidInput : exitCodes.ok;
  },
};
