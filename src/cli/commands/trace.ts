import type { Argv, CommandModule } from 'yargs';
import { formatDoc } from '../output-format.js';
import { formatProblem } from '../../api/problem.js';
import { hasErrors } from '../../pipeline.js';
import { evaluate } from '../../verdict/evaluate.js';
import { explainText } from '../../verdict/explain.js';
import { stagedVerdicts } from '../../verdict/staged-verdict.js';
import { stagedJson, stagedText } from '../../verdict/staged-explain.js';
import type { StateArgs } from '../options.js';
import { exitCodes, stateOptions } from '../options.js';
import type { FlowArgs } from '../parse-flow.js';
import { parseFlow } from '../parse-flow.js';
import { loadStateFromArgs } from '../state-args.js';

interface TraceArgs extends StateArgs, FlowArgs {
  output: 'text' | 'json' | 'yaml';
}

export const traceCommand: CommandModule<object, TraceArgs> = {
  command: 'trace',
  describe: 'Explain the verdict this node would give one flow, and which rule decides it',
  builder: (y: Argv) =>
    y
      .options(stateOptions)
      .option('direction', { choices: ['ingress', 'egress'] as const, demandOption: true })
      .option('peer', { type: 'string', demandOption: true, describe: 'source IP (ingress) or destination IP (egress)' })
      .option('proto', { type: 'string', demandOption: true, describe: 'tcp|udp|sctp|icmp|icmpv6 or a protocol number' })
      .option('port', { type: 'number', describe: 'local port (ingress) or remote port (egress)' })
      .option('icmp-type', { type: 'string', describe: 'ICMP type number or name (EchoRequest, ...)' })
      .option('icmp-code', { type: 'number', describe: 'ICMP code (matters only for frag-needed)' })
      .option('output', { alias: 'o', choices: ['text', 'json', 'yaml'] as const, default: 'text' as const }) as unknown as Argv<TraceArgs>,
  handler: async (argv) => {
    const flow = parseFlow(argv);
    const state = await loadStateFromArgs(argv);
    const both = stagedVerdicts(state.model, flow, evaluate);
    const verdict = both.enforced;
    const errors = state.problems.filter((p) => p.severity === 'error');
    if (argv.output !== 'text') {
      process.stdout.write(
        formatDoc({ node: state.nodeName, flow, ...verdict, ...stagedJson(state.model, both), errors: errors.map(formatProblem) }, argv.output),
      );
    } else {
      process.stdout.write(`${explainText(verdict, state.model, flow)}\n`);
      const staged = stagedText(state.model, both);
      if (staged !== '') process.stdout.write(`${staged}\n`);
    }
    if (errors.length > 0) {
      for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
      process.stderr.write('some policies are invalid and were left out of this verdict, as Cilium would reject them\n');
    }
    process.exitCode = hasErrors(state.problems) ? exitCodes.invalidInput : exitCodes.ok;
  },
};
