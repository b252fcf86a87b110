import { formatProblem } from '../api/problem.js';
import type { RunMode } from '../inventory/types.js';
import type { State } from '../pipeline.js';
import { loadState } from '../pipeline.js';
import type { StateArgs } from './options.js';
import { exitCodes, parseLabelList, parseNodeName } from './options.js';

/** Turn the shared state flags into a loaded State. */
export async function loadStateFromArgs(argv: StateArgs, extra: { mode?: RunMode } = {}): Promise<State> {
  return loadState({
    config: argv.config,
    sources: argv.source?.map(String),
    node: parseNodeName(argv.node),
    nodeLabels: argv.nodeLabels === undefined ? undefined : parseLabelList(argv.nodeLabels),
    mode: extra.mode,
  });
}

/**
 * For commands that write a ruleset: when any policy is invalid, print the errors and `refusal`, set exit
 * code 1 and return true. A ruleset without the rejected policies would weaken the one in force.
 */
export function refuseInvalid(state: State, refusal: string): boolean {
  const errors = state.problems.filter((p) => p.severity === 'error');
  if (errors.length === 0) return false;
  for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
  process.stderr.write(`nodewall: ${refusal}\n`);
  process.exitCode = exitCodes.invalidInput;
  return true;
}
