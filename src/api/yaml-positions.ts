// Maps every field path of a YAML node tree to its source position.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter } from 'yaml';
import type { SourcePos } from './types.js';
import { childPath, parentPath } from './field-path.js';

/** Turns an offset in the parsed text into a position in the user's file. */
export type OffsetToPos = (offset: number) => SourcePos;

export function offsetMapper(file: string, lc: LineCounter): OffsetToPos {
  return (offset) => {
    const { line, col } = lc.linePos(offset);
    return { file, line, col };
  };
}

/**
 * Line starts from the text itself. (yaml's Parser reports line breaks per
 * token, and misses those inside an error token that spans lines: the
 * positions of everything after it would be off.)
 */
export function lineCounter(text: string): LineCounter {
  const lc = new LineCounter();
  lc.addNewLine(0);
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) lc.addNewLine(nl + 1);
  return lc;
}

function nodeStart(node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: readonly number[] | null }).range;
    return range?.[0];
  }
  return undefined;
}

/**
 * Positions of `root` and everything below it, keyed by field path relative to
 * `root` ("" = root). A map entry points at its key (`port` in `port: 80`), a
 * list item at the item.
 */
export function collectPositions(root: unknown, toPos: OffsetToPos): Map<string, SourcePos> {
  const out = new Map<string, SourcePos>();
  const visit = (node: unknown, path: string, fallback: number | undefined): void => {
    const start = nodeStart(node) ?? fallback;
    if (start !== undefined) out.set(path, toPos(start));
    if (isAlias(node)) return;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key === undefined) continue;
        const keyStart = nodeStart(pair.key);
        const p = childPath(path, key);
        if (!isScalar(pair.value)) visit(pair.value, p, keyStart);
        if (keyStart !== undefined) out.set(p, toPos(keyStart));
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, childPath(path, i), start));
    }
  };
  visit(root, '', undefined);
  return out;
}

/** Field path → position: what locateIn needs of a Map. */
export interface PositionLookup {
  get(path: string): SourcePos | undefined;
}

/** Position of `path`, else of its nearest recorded ancestor, else `fallback`. */
export function locateIn(positions: PositionLookup, path: string, fallback: SourcePos): SourcePos {
  let p = path;
  for (;;) {
    const hit = positions.get(p);
    if (hit !== undefined) return hit;
    if (p === '') return fallback;
    p = parentPath(p);
  }
}
