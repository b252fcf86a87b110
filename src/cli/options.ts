import type { Options } from 'yargs';

/** Flags shared by every command that reads policies and cluster state. */
export const stateOptions = {
  config: { type: 'string', describe: 'config file (default /etc/nodewall/nodewall.yaml if present)' },
  source: { type: 'string', array: true, describe: 'manifest file or directory (repeatable); overrides config sources' },
  node: { type: 'string', describe: 'node name (default: config nodeName, then the hostname)' },
  'node-labels': { type: 'string', describe: 'labels of this node, k=v,k2=v2 (override config and Node object)' },
  'log-level': { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const, describe: 'log level' },
} as const satisfies Record<string, Options>;

export interface StateArgs {
  config?: string | undefined;
  source?: (string | number)[] | undefined;
  node?: string | undefined;
  nodeLabels?: string | undefined;
  logLevel?: string | undefined;
}

/** Parse "k=v,k2=v2" (a value may be empty: "node-role.kubernetes.io/control-plane="). */
export function parseLabelList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--node-labels: "${item}" is not key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** A command-line mistake: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit codes shared by all commands. */
export const exitCodes = { ok: 0, invalidInput: 1, usage: 2, failure: 3 } as const;
