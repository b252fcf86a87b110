import type { Argv, CommandModule } from 'yargs';
import { formatDoc } from '../output-format.js';
import { formatProblem } from '../../api/problem.js';
import { formatTable, snapshotConnections, summarize, verdictReport } from '../../agent/dry-run.js';
import { listenerReach } from '../../agent/listener-reach.js';
import { hasErrors } from '../../pipeline.js';
import { evaluate } from '../../verdict/evaluate.js';
import type { StateArgs } from '../options.js';
import { exitCodes, stateOptions } from '../options.js';
import { loadStateFromArgs } from '../state-args.js';
import { stagedAuditLines, stagedAuditText } from './audit-staged.js';

interface AuditArgs extends StateArgs {
  output: 'table' | 'json' | 'yaml';
}

export const auditCommand: CommandModule<object, AuditArgs> = {
  command: 'audit',
  describe: 'Dry-run report, once: the verdict the policies would give every live connection and listening socket of this node',
  builder: (y: Argv) =>
    y
      .options(stateOptions)
      .option('output', { alias: 'o', choices: ['table', 'json', 'yaml'] as const, default: 'table' as const }) as unknown as Argv<AuditArgs>,
  handler: async (argv) => {
    const state = await loadStateFromArgs(argv, { mode: 'dry-run' });
    const snap = await snapshotConnections();
    const lines = verdictReport(state.model, snap, evaluate);
    const listeners = listenerReach(state.model, snap.sockets, evaluate, snap.processes);
    const sum = summarize(lines);
    // Staged policies: live flows they would change, and the candidate flows the kernel recorded.
    const staged = await stagedAuditLines(state.model, snap, state.config.nft);
    const errors = state.problems.filter((p) => p.severity === 'error');
    if (argv.output !== 'table') {
      process.stdout.write(formatDoc({
        node: state.nodeName, policies: state.model.selectedPolicies, summary: sum, listeners, verdicts: lines, problems: errors,
        ...(state.model.staged === undefined ? {} : { staged: { policies: state.model.staged.policies, verdicts: staged.lines, ...(staged.note === undefined ? {} : { note: staged.note }) } }),
      }, argv.output));
    } else {
      for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
      process.stdout.write(`node ${state.nodeName}: ${state.model.selectedPolicies.length} policies select this node ` +
        `(ingress ${state.model.ingress.enforced ? 'enforced' : 'not enforced'}, egress ${state.model.egress.enforced ? 'enforced' : 'not enforced'})\n`);
      if (listeners.length > 0) {
        process.stdout.write('who can reach each listening socket:\n');
        for (const r of listeners) process.stdout.write(`  ${r.text}${r.process === undefined ? '' : ` [${r.process}]`}\n`);
      }
      process.stdout.write(`${formatTable(lines)}\n`);
      process.stdout.write(`${sum.connections} connections, ${sum.listeners} listener verdicts: ${sum.wouldAllow} would-allow, ${sum.wouldDeny} would-deny\n`);
      if (state.model.staged !== undefined) process.stdout.write(stagedAuditText(state.model.staged.policies, staged));
      if (errors.length > 0) process.stdout.write(`${errors.length} invalid polic${errors.length === 1 ? 'y is' : 'ies are'} left out (see above)\n`);
    }
    process.exitCode = hasErrors(state.problems) ? exitCodes.invalidInput : exitCodes.ok;
  },
};
