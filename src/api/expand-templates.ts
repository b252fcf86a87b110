// clusterctl/envsubst-style placeholders in manifests: `${VAR:=default}` and
// `${VAR:-default}` become their default (nodewall never reads the environment);
// a bare `${VAR}` is left as written.
import { isScalar, parse, visit, type Node, type Scalar } from 'yaml';
import type { SourcePos } from './types.js';

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*):([=-])([^}]*)\}/g;

export interface Expansion {
  readonly text: string;
  readonly variable: string;
  readonly value: string;
  /** Offset of the placeholder inside the scalar's value. */
  readonly index: number;
}

export function expandString(s: string): { value: string; expansions: Expansion[] } {
  const expansions: Expansion[] = [];
  const value = s.replace(PLACEHOLDER, (text: string, variable: string, _op: string, def: string, index: number) => {
    expansions.push({ text, variable, value: def, index });
    return def;
  });
  return { value, expansions };
}

export interface PlacedExpansion extends Expansion {
  readonly pos: SourcePos;
}

/**
 * Replaces placeholders in every string scalar below `root` (in place) and
 * returns where each one was. A plain (unquoted) scalar is re-read after
 * expansion, as envsubst-then-parse would: `port: ${P:=80}` becomes the integer 80.
 */
export function expandTemplates(root: Node, toPos: (offset: number) => SourcePos): PlacedExpansion[] {
  const out: PlacedExpansion[] = [];
  const expandScalar = (node: Scalar): void => {
    if (typeof node.value !== 'string' || !node.value.includes('${')) return;
    const { value, expansions } = expandString(node.value);
    if (expansions.length === 0) return;
    const start = node.range?.[0] ?? 0;
    const singleLine = !node.value.includes('\n');
    const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
    for (const e of expansions) {
      const offset = node.type === 'PLAIN' && singleLine ? start + e.index
        : quoted && singleLine ? start + 1 + e.index : start;
      out.push({ ...e, pos: toPos(offset) });
    }
    node.value = node.type === 'PLAIN' ? reread(value) : value;
  };
  if (isScalar(root)) expandScalar(root);
  else visit(root, { Scalar: (_key, node) => { expandScalar(node); } });
  return out;
}

function reread(value: string): unknown {
  try {
    const v: unknown = parse(value);
    return v === null || ['number', 'boolean'].includes(typeof v) ? v : value;
  } catch {
    return value;
  }
}
