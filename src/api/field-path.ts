// Field paths as printed in problems: `spec.ingress[0].toPorts[0].ports[1].port`.
// Keys that are not plain identifiers are quoted: `matchLabels["k8s:app"]`,
// with control characters escaped (`["a\u0000b"]`) so a path is always printable.
import { escapeUnprintable } from './printable.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function childPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (IDENT.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${escapeUnprintable(JSON.stringify(key))}]`;
}

const SEGMENT = /\.?[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\]/y;

/** The enclosing path ("" for a top-level key or an unparsable path). */
export function parentPath(path: string): string {
  const ends: number[] = [];
  SEGMENT.lastIndex = 0;
  while (SEGMENT.lastIndex < path.length) {
    const start = SEGMENT.lastIndex;
    if (SEGMENT.exec(path) === null) return '';
    ends.push(start);
  }
  const last = ends.at(-1);
  return last === undefined ? '' : path.slice(0, last);
}
