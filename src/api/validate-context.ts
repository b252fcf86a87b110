// Shared plumbing of the validation modules: where problems go and how they are placed.
import type { EngineConfig } from '../inventory/types.js';
import type { Problem, Severity } from './problem.js';
import type { PolicyDocument } from './types.js';

export interface Ctx {
  readonly doc: PolicyDocument;
  readonly cfg: EngineConfig;
  readonly out: Problem[];
}

function report(ctx: Ctx, severity: Severity, field: string, message: string, code: string): void {
  const pos = ctx.doc.locate(field);
  const base = { severity, pos, field, message, code };
  ctx.out.push(ctx.doc.name === '' ? base : { ...base, policy: ctx.doc.name });
}

export const err = (ctx: Ctx, field: string, message: string, code: string): void => report(ctx, 'error', field, message, code);
export const warn = (ctx: Ctx, field: string, message: string, code: string): void => report(ctx, 'warning', field, message, code);

/** The standard text for content nodewall cannot enforce: which traffic ends up differing from Cilium. */
export function unsupportedText(deny: boolean, ingress: boolean, what: string, peer: string, ports = ''): string {
  const towards = ingress ? `from ${peer}` : `to ${peer}`;
  return deny
    ? `${what} is not supported by nodewall: this entry denies nothing here; traffic Cilium would deny ${towards}${ports} will be ALLOWED (if other rules allow it)`
    : `${what} is not supported by nodewall: this entry allows nothing here; traffic Cilium would allow ${towards}${ports} will be DROPPED (unless other rules allow it)`;
}
