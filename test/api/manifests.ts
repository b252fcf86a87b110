// Small builders for inline test manifests.
import type { EngineConfig } from '../../src/inventory/types.js';
import { defaultEngineConfig } from '../../src/inventory/types.js';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { validatePolicy } from '../../src/api/validate.js';
import type { Problem } from '../../src/api/problem.js';
import type { PolicyDocument } from '../../src/api/types.js';

/** Removes the common leading indentation and the first/last empty lines. */
export function dedent(text: string): string {
  const lines = text.replace(/^\n/, '').replace(/\n[ ]*$/, '').split('\n');
  const indents = lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length);
  const cut = Math.min(...indents);
  return lines.map((l) => l.slice(cut)).join('\n') + '\n';
}

export function indent(text: string, by: number): string {
  return dedent(text).split('\n').map((l) => (l === '' ? l : ' '.repeat(by) + l)).join('\n');
}

/** A CCNP named "t" whose spec is `nodeSelector: {}` plus `body` (YAML at spec level). */
export function hostPolicy(body: string, selector = 'nodeSelector: {}'): string {
  return `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: t\nspec:\n  ${selector}\n${indent(body, 2)}`;
}

/** The single policy of `text`; fails the caller's test (throws) otherwise. */
export function onePolicy(text: string, file = 'test.yaml'): PolicyDocument {
  const r = loadManifestText(text, file);
  const [doc, ...rest] = r.policies;
  if (doc === undefined || rest.length > 0) throw new Error(`expected one policy, got ${r.policies.length}`);
  return doc;
}

export function validateText(text: string, cfg: Partial<EngineConfig> = {}): Problem[] {
  return validatePolicy(onePolicy(text), { ...defaultEngineConfig, ...cfg });
}

export const errorsOf = (ps: readonly Problem[]): Problem[] => ps.filter((p) => p.severity === 'error');
export const warningsOf = (ps: readonly Problem[]): Problem[] => ps.filter((p) => p.severity === 'warning');
export const messages = (ps: readonly Problem[]): string[] => ps.map((p) => p.message);
