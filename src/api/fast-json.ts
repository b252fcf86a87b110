// A fast decoder for manifest files that are one JSON value (`kubectl get -o
// json`, a List of 100k pods): JSON.parse plus one scan of the text for the
// positions nodewall keeps (the root and each entry of a root `items` array).
//
// yaml reads JSON as a flow collection; where it would read the text
// differently from JSON.parse, this gives up (undefined) and the caller uses
// the full parser: duplicate keys (yaml: an error; JSON.parse: last wins),
// `${...}` templates (expanded by the loader), `__proto__` keys, long digit
// runs (parseInt and JSON.parse could round differently), deep nesting, keys
// over yaml's 1024-character limit or separated from their ':' by a newline,
// and characters the YAML reader treats specially.

import type { ItemSpan } from './fast-yaml.js';

export interface FastJson {
  readonly value: unknown;
  readonly rootPos: { readonly line: number; readonly col: number };
  /** When the root is an object with an `items` array: where each item starts. */
  readonly itemPos: readonly { readonly line: number; readonly col: number }[] | undefined;
  /** With itemPos: the text of each item, for reading one item alone. */
  readonly itemSpans: readonly ItemSpan[] | undefined;
}

const MAX_DEPTH = 64;
/** Characters outside plain printable text, or that YAML reads as line breaks or a BOM. */
// A character past U+FFFF (an emoji in an annotation) is a surrogate pair in the text and reads the same
// both ways; only a lone surrogate half is special.
const SPECIAL_CHAR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const LONE_CR = /\r(?!\n)/;

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) return i;
    i++;
  }
}

/**
 * A JSON List whose items repeat keys (yaml: DUPLICATE_KEY errors, the whole
 * document is not loaded): the items that do, each to be read alone by the
 * full parser for its exact errors instead of the whole file.
 */
export interface FastJsonDuplicates {
  readonly duplicateItems: readonly ItemSpan[];
}

/**
 * Undefined when the text is not JSON, or when yaml might read it differently
 * (a List whose only difference is keys repeated inside its items: which items).
 */
export function decodeFastJson(text: string): FastJson | FastJsonDuplicates | undefined {
  const start = skipSpace(text, 0);
  const first = text.charCodeAt(start);
  if (first !== 123 /* { */ && first !== 91 /* [ */) return undefined;
  // A CR not followed by LF is no line break for yaml.
  if (SPECIAL_CHAR.test(text) || LONE_CR.test(text)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const scan = scanJson(text, start);
  if (scan === undefined) return undefined;
  const keys = countKeys(value, 0);
  // Each ':' outside strings is one key of one object; fewer keys in the result means a duplicate.
  if (keys !== scan.colons) return keys < 0 ? undefined : duplicateItems(value, scan, scan.colons - keys);
  return { value, rootPos: scan.rootPos, itemPos: scan.itemPos, itemSpans: scan.itemSpans };
}

/** The items of a root `items` list that repeat keys, when they hold all `missing` repeats; else undefined. */
function duplicateItems(value: unknown, scan: Scan, missing: number): FastJsonDuplicates | undefined {
  const items = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)['items'] : undefined;
  const spans = scan.itemSpans;
  if (!Array.isArray(items) || spans === undefined || spans.length !== items.length || scan.itemColons.length !== items.length) return undefined;
  const found: ItemSpan[] = [];
  let inItems = 0;
  for (let i = 0; i < items.length; i++) {
    const lost = (scan.itemColons[i] ?? 0) - countKeys(items[i], 2);
    if (lost <= 0) continue;
    inItems += lost;
    const span = spans[i];
    if (span !== undefined) found.push(span);
  }
  return inItems === missing && found.length > 0 ? { duplicateItems: found } : undefined;
}

/** Keys of every object below `v`; -1 when something must go through the full parser. */
function countKeys(v: unknown, depth: number): number {
  if (typeof v === 'string') return v.includes('${') ? -1 : 0;
  if (v === null || typeof v !== 'object') return 0;
  if (depth > MAX_DEPTH) return -1;
  let n = 0;
  if (Array.isArray(v)) {
    for (const x of v) {
      const k = countKeys(x, depth + 1);
      if (k < 0) return -1;
      n += k;
    }
    return n;
  }
  for (const key in v) {
    if (key === '__proto__' || key.includes('${')) return -1;
    const k = countKeys((v as Record<string, unknown>)[key], depth + 1);
    if (k < 0) return -1;
    n += k + 1;
  }
  return n;
}

interface Scan {
  colons: number;
  rootPos: { line: number; col: number };
  itemPos: { line: number; col: number }[] | undefined;
  itemSpans: ItemSpan[] | undefined;
  /** The ':' count of each item (keys, duplicates included). */
  itemColons: number[];
}

/** One pass over text already known to be valid JSON. */
function scanJson(text: string, start: number): Scan | undefined {
  let line = 1;
  let lineStart = 0;
  for (let nl = text.indexOf('\n'); nl >= 0 && nl < start; nl = text.indexOf('\n', nl + 1)) {
    line++;
    lineStart = nl + 1;
  }
  const rootPos = { line, col: start - lineStart + 1 };
  let itemPos: { line: number; col: number }[] | undefined;
  let itemSpans: ItemSpan[] | undefined;
  // The item being read: its start and position.
  let itemStart = -1;
  let itemLine = 0;
  let itemCol = 0;
  let colons = 0;
  let itemColonsFrom = 0;
  const itemColons: number[] = [];
  const endItem = (end: number): void => {
    if (itemStart >= 0) {
      itemSpans?.push({ start: itemStart, end, line: itemLine, col: itemCol });
      itemColons.push(colons - itemColonsFrom);
    }
    itemStart = -1;
  };
  let depth = 0;
  // Depth of the root object's `items` array while inside it, else -1.
  let itemsDepth = -1;
  let lastRootKeyIsItems = false;
  let expectItem = false;
  const n = text.length;
  for (let i = start; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      lineStart = i + 1;
      continue;
    }
    if (c === 32 || c === 13 || c === 9) continue;
    if (expectItem && c !== 93 /* ] */ && itemPos !== undefined) {
      itemStart = i;
      itemColonsFrom = colons;
      itemLine = line;
      itemCol = i - lineStart + 1;
      itemPos.push({ line, col: itemCol });
    }
    expectItem = false;
    switch (c) {
      case 34 /* " */: {
        let j = text.indexOf('"', i + 1);
        for (;;) {
          let b = 0;
          while (text.charCodeAt(j - 1 - b) === 92 /* \ */) b++;
          if (b % 2 === 0) break;
          j = text.indexOf('"', j + 1);
        }
        const after = skipSpace(text, j + 1);
        if (text.charCodeAt(after) === 58 /* : */) {
          // A key: yaml wants it on one line with its ':' and at most 1024 characters long.
          if (j - i > 1000 || text.slice(j + 1, after).includes('\n')) return undefined;
          if (depth === 1) lastRootKeyIsItems = text.slice(i + 1, j) === 'items';
        }
        i = j;
        break;
      }
      case 58:
        colons++;
        break;
      case 123 /* { */:
      case 91 /* [ */:
        depth++;
        if (depth > MAX_DEPTH) return undefined;
        if (c === 91 && depth === 2 && lastRootKeyIsItems && itemsDepth < 0 && itemPos === undefined) {
          itemsDepth = depth;
          itemPos = [];
          itemSpans = [];
          expectItem = true;
        }
        break;
      case 125 /* } */:
      case 93 /* ] */:
        if (depth === itemsDepth) {
          itemsDepth = -1;
          endItem(i);
        }
        depth--;
        break;
      case 44 /* , */:
        if (depth === itemsDepth) {
          expectItem = true;
          endItem(i);
        }
        break;
      default: {
        // A number or a literal (true, false, null).
        let j = i;
        let digits = 0;
        for (; j < n; j++) {
          const d = text.charCodeAt(j);
          if (d >= 48 && d <= 57) {
            if (++digits > 15) return undefined;
          } else if (d === 45 || d === 43 || d === 46 || d === 101 || d === 69 || (d >= 97 && d <= 122)) {
            digits = 0;
          } else {
            break;
          }
        }
        i = j - 1;
      }
    }
  }
  return { colons, rootPos, itemPos, itemSpans, itemColons };
}
