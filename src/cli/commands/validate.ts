import type { Argv, CommandModule } from 'yargs';
import { formatDoc } from '../output-format.js';
import { formatProblem } from '../../api/problem.js';
import { hasErrors } from '../../pipeline.js';
import type { StateArgs } from '../options.js';
import { exitCodes, stateOptions } from '../options.js';
import { loadStateFromArgs } from '../state-args.js';

interface ValidateArgs extends StateArgs {
  strict: boolean;
  output: 'text' | 'json' | 'yaml';
}

export const validateCommand: CommandModule<object, ValidateArgs> = {
  command: 'validate',
  describe: 'Check policies as Cilium would, and lint for rules that silently fail open',
  builder: (y: Argv) =>
    y
      .options(stateOptions)
      .option('strict', { type: 'boolean', default: false, describe: 'warnings fail too' })
      .option('output', { alias: 'o', choices: ['text', 'json', 'yaml'] as const, default: 'text' as const }) as unknown as Argv<ValidateArgs>,
  handler: async (argv) => {
    const state = await loadStateFromArgs(argv);
    const failed = hasErrors(state.problems) || (argv.strict && state.problems.length > 0);
    const staged = new Set(state.model.staged?.policies ?? []);
    const selected = new Set([...state.model.selectedPolicies, ...staged]);
    if (argv.output !== 'text') {
      const policies = state.policies.map((p) => ({
        name: p.name,
        kind: p.kind,
        file: p.pos.file,
        line: p.pos.line,
        valid: state.valid.includes(p),
        selectsThisNode: selected.has(p.name),
        ...(staged.has(p.name) ? { staged: true } : {}),
      }));
      process.stdout.write(
        formatDoc({ ok: !failed, node: state.nodeName, policies, problems: state.problems }, argv.output),
      );
    } else {
      for (const p of state.problems) process.stdout.write(`${formatProblem(p)}\n`);
      const errors = state.problems.filter((p) => p.severity === 'error').length;
      const warnings = state.problems.length - errors;
      process.stderr.write(
        `${state.policies.length} policies, ${state.valid.length} valid, ${selected.size} select node ${state.nodeName}` +
          `${staged.size === 0 ? '' : ` (${staged.size} staged, evaluated but not enforced: ${[...staged].join(', ')})`}; ` +
          `${errors} error(s), ${warnings} warning(s)\n`,
      );
    }
    process.exitCode = failed ? exitCodes.invalidInput : exitCodes.ok;
  },
};
