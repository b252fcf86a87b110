import type { Options } from 'yargs';
import { dns1123SubdomainProblems, invalidValue, labelKeyProblems, labelValueProblems } from '../api/k8s-names.js';
import { shown } from '../api/printable.js';

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

/**
 * Parse "k=v,k2=v2" (a value may be empty: "node-role.kubernetes.io/control-plane="). Keys and values
 * must be what Kubernetes accepts as node labels; a key named `constructor` is an ordinary label.
 */
export function parseLabelList(text: string): Record<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--node-labels: ${shown(item)} is not key=value`);
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    const keyProblems = labelKeyProblems(key);
    if (keyProblems.length > 0) throw new UsageError(`--node-labels: invalid label key: ${invalidValue(key, keyProblems)}`);
    const valueProblems = labelValueProblems(value);
    if (valueProblems.length > 0) throw new UsageError(`--node-labels: label ${key}: invalid label value: ${invalidValue(value, valueProblems)}`);
    out.set(key, value);
  }
  return Object.fromEntries(out);
}

/** `--node NAME`: the name of a Node object (a DNS-1123 subdomain), or undefined when not given. */
export function parseNodeName(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const problems = dns1123SubdomainProblems(text);
  if (problems.length > 0) throw new UsageError(`--node: ${invalidValue(text, problems)} (Kubernetes node names)`);
  return text;
}

/** A command-line mistake: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit codes shared by all commands. */
export const exitCodes = { ok: 0, invalidInput: 1, usage: 2, failure: 3 } as const;
