// The `kubernetes` entry of the config's `sources` list, beside manifest paths:
//
//   sources:
//     - /etc/nodewall/policies/
//     - kubernetes: {kubeconfig: /etc/nodewall/kubeconfig}   # or: kubernetes: {inCluster: true}
//
// Keys: kubeconfig (path; relative to the config file's directory), inCluster
// (bool), context (kubeconfig context), needPods (true | false | auto).
// `kubernetes: {}` uses the client library's default lookup.

import { isAbsolute, resolve } from 'node:path';
import { InputError, type Problem } from '../../api/problem.js';
import type { SourcePos } from '../../api/types.js';

export interface KubernetesSourceConfig {
  readonly kubeconfig?: string;
  readonly inCluster?: boolean;
  readonly context?: string;
  readonly needPods?: boolean | 'auto';
}

const knownKeys = ['kubeconfig', 'inCluster', 'context', 'needPods'];

/**
 * Reads one element of `sources`. A string (a manifest path) gives undefined;
 * a `{kubernetes: {...}}` map gives its settings; anything else throws an
 * InputError whose problems name `field` (e.g. "sources[2]") at `pos`.
 */
export function parseKubernetesSourceConfig(entry: unknown, pos: SourcePos, field: string, baseDir?: string): KubernetesSourceConfig | undefined {
  if (typeof entry === 'string') return undefined;
  const problems: Problem[] = [];
  const fail = (f: string, message: string): void => {
    problems.push({ severity: 'error', pos, field: f, message, code: 'config/bad-value' });
  };
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isMap(entry) || Object.keys(entry).length !== 1 || !Object.hasOwn(entry, 'kubernetes')) {
    fail(field, 'must be a manifest path or a map {kubernetes: {kubeconfig: PATH} | {inCluster: true}}');
    throw new InputError(`${pos.file}: invalid source ${field}`, problems);
  }
  const body = entry['kubernetes'];
  const out: { -readonly [K in keyof KubernetesSourceConfig]: KubernetesSourceConfig[K] } = {};
  const f = `${field}.kubernetes`;
  if (body !== null && body !== undefined && !isMap(body)) {
    fail(f, 'must be a map (keys: kubeconfig, inCluster, context, needPods)');
  } else {
    for (const [k, v] of Object.entries(body ?? {})) {
      const kf = `${f}.${k}`;
      if (k === 'kubeconfig') {
        if (typeof v !== 'string' || v === '') fail(kf, 'must be a non-empty path');
        else out.kubeconfig = isAbsolute(v) || baseDir === undefined ? v : resolve(baseDir, v);
      } else if (k === 'inCluster') {
        if (typeof v !== 'boolean') fail(kf, 'must be true or false');
        else out.inCluster = v;
      } else if (k === 'context') {
        if (typeof v !== 'string' || v === '') fail(kf, 'must be a non-empty string');
        else out.context = v;
      } else if (k === 'needPods') {
        if (typeof v !== 'boolean' && v !== 'auto') fail(kf, 'must be true, false or "auto"');
        else out.needPods = v;
      } else {
        fail(kf, `unknown key (known: ${knownKeys.join(', ')})`);
      }
    }
    if (out.inCluster === true && out.kubeconfig !== undefined) fail(f, 'kubeconfig and inCluster: true exclude each other');
  }
  if (problems.length > 0) throw new InputError(`${pos.file}: invalid source ${field}`, problems);
  return out;
}
