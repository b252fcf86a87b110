import type { SourcePos } from './types.js';
import { escapeUnprintable } from './printable.js';

export type Severity = 'error' | 'warning';

/**
 * One finding about the input. Rendered as
 * `FILE:LINE:COL: error|warning: policy NAME: FIELD.PATH: message`.
 */
export interface Problem {
  readonly severity: Severity;
  readonly pos: SourcePos;
  /** Policy name, or undefined for problems not tied to one (a YAML syntax error). */
  readonly policy?: string;
  /** Field path inside the object, e.g. "spec.ingress[0].fromCIDR[1]"; "" for the whole object. */
  readonly field: string;
  readonly message: string;
  /** Stable machine-readable code, e.g. "cidr-parse", "lint/filtered-label". */
  readonly code: string;
}

/** One line, whatever the input held: control characters in names, keys and file names are escaped. */
export function formatProblem(p: Problem): string {
  const where = `${p.pos.file}:${p.pos.line}:${p.pos.col}`;
  const policy = p.policy === undefined ? '' : `policy ${p.policy}: `;
  const field = p.field === '' ? '' : `${p.field}: `;
  return escapeUnprintable(`${where}: ${p.severity}: ${policy}${field}${p.message}`);
}

/** Errors carry a Problem-like location and keep the underlying error as `cause`. */
export class InputError extends Error {
  override readonly name = 'InputError';
  readonly problems: readonly Problem[];
  constructor(message: string, problems: readonly Problem[], options?: { cause?: unknown }) {
    super(message, options);
    this.problems = problems;
  }
}
