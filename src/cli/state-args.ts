import type { RunMode } from '../inventory/types.js';
import type { State } from '../pipeline.js';
import { loadState } from '../pipeline.js';
import type { StateArgs } from './options.js';
import { parseLabelList } from './options.js';

/** Turn the shared state flags into a loaded State. */
export async function loadStateFromArgs(argv: StateArgs, extra: { mode?: RunMode } = {}): Promise<State> {
  return loadState({
    config: argv.config,
    sources: argv.source?.map(String),
    node: argv.node,
    nodeLabels: argv.nodeLabels === undefined ? undefined : parseLabelList(argv.nodeLabels),
    mode: extra.mode,
  });
}
