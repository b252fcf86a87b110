import type { Argv, CommandModule } from 'yargs';
import { Agent } from '../../agent/agent.js';
import { configPathFor } from '../../agent/read-config.js';
import { createAgentLogger, type LogLevel } from '../../agent/log.js';
import { exitOnUncaught, startOrDie } from '../../agent/fatal.js';
import { missingRuntimeSettings } from '../../bin/runtime-settings.js';
import type { RunMode } from '../../inventory/types.js';
import type { StateArgs } from '../options.js';
import { parseLabelList, parseNodeName, stateOptions } from '../options.js';

interface AgentArgs extends StateArgs {
  mode?: RunMode | undefined;
  dryRun: boolean;
  stateDir?: string | undefined;
}

export const agentCommand: CommandModule<object, AgentArgs> = {
  command: 'agent',
  describe: 'Run the agent: apply, then keep the kernel equal to the policies (watch, drift repair, SIGHUP reload)',
  builder: (y: Argv) =>
    y
      // stateOptions without its --log-level default: the config's logLevel applies unless the flag is given.
      .options(Object.fromEntries(Object.entries(stateOptions).filter(([k]) => k !== 'log-level')))
      .option('mode', { choices: ['enforce', 'audit', 'dry-run'] as const, describe: 'override the config mode' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'same as --mode dry-run: log verdicts, write nothing to the kernel' })
      .option('state-dir', { type: 'string', describe: 'override the config stateDir (last good policies, status file)' })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, describe: 'log level (default: config logLevel, info)' }) as unknown as Argv<AgentArgs>,
  handler: async (argv) => {
    const logLevel = argv.logLevel as LogLevel | undefined;
    const log = createAgentLogger({ level: logLevel ?? 'info' });
    const mode: RunMode | undefined = argv.dryRun ? 'dry-run' : argv.mode;
    const agent = new Agent({
      configFile: configPathFor(argv.config),
      overrides: {
        sources: argv.source === undefined || argv.source.length === 0 ? undefined : argv.source.map(String),
        nodeName: parseNodeName(argv.node),
        mode,
        stateDir: argv.stateDir,
        logLevel,
      },
      nodeLabels: argv.nodeLabels === undefined ? undefined : parseLabelList(argv.nodeLabels),
      log,
    });
    const missing = missingRuntimeSettings(process.execArgv, process.env);
    if (missing.length > 0) {
      log.info({ runtimeSettingsMissing: missing },
        `not running with the shipped runtime settings (${missing.join(', ')}): resident memory at cluster scale is higher (README: Performance at cluster scale)`);
    }
    // Input never crashes the agent; anything reaching here is a bug or a broken system: log it and exit non-zero for systemd to restart.
    exitOnUncaught(log);
    const stop = (signal: string) => {
      // exit() runs pino's exit hook, which flushes the asynchronous stdout stream.
      agent.stop(signal).then(() => process.exit(0), (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      log.info('SIGHUP: reloading');
      void agent.reconcile('sighup');
    });
    // Keep the process alive even with every timer disabled by config.
    setInterval(() => undefined, 1 << 30);
    await startOrDie(() => agent.start(), log);
  },
};
