// A fast decoder for the plain subset of block YAML that object dumps are made
// of (`kubectl get -o yaml`, generated Pod/Node manifests): block mappings and
// sequences, plain keys, plain and simple quoted scalars, `{}`, one-line flow
// sequences of plain scalars (`[world, health]`), comments.
// It builds plain JS values directly (no YAML Document, no nodes, no position
// per field), which is what makes 100k-object files cheap.
//
// It gives up (returns undefined) on ANYTHING outside that subset: anchors,
// aliases, tags, merge keys, flow mappings with content, nested or quoted flow items, block scalars,
// multi-line scalars, escapes, duplicate keys, templates (`${...}`), tabs, CR, control or unusual
// characters, odd indentation, keys that do not resolve to strings. The caller
// then reads that document with the full position-tracking parser, so the
// result is always exactly what yaml (core schema, merge on) would give.
// One exception, for a caller that asks: an item of a List's root `items`
// outside the subset stands as SLOW_ITEM, with its text span, and the caller
// reads that item alone with the full parser (a 100k-pod dump with one odd pod).

import { ownString } from './own-string.js';
import type { SourcePos } from './types.js';

export interface FastDocument {
  /** The decoded document; null for an empty document. */
  readonly value: unknown;
  /** Where the root node starts (its first key for a mapping). */
  readonly rootPos: LineCol | undefined;
  /** For a root mapping whose `items` is a block sequence: where each item starts (undefined for an empty item). */
  readonly itemPos: readonly (LineCol | undefined)[] | undefined;
  /** With itemPos: the text of each item (its `- ` line to the next item), for reading one item alone. */
  readonly itemSpans?: readonly ItemSpan[] | undefined;
}

/** Where one item of a List is in the text: text[start, end), `start` on line `line`, column `col`. */
export interface ItemSpan {
  readonly start: number;
  readonly end: number;
  readonly line: number;
  readonly col: number;
}

type LineCol = Pick<SourcePos, 'line' | 'col'>;
type ItemPositions = (LineCol | undefined)[];
/** Positions and spans of the root `items` entries, collected together. */
interface ItemCollector {
  readonly pos: ItemPositions;
  readonly spans: ItemSpan[];
}
/** itemPos of a root mapping without an `items` key (one shared empty list, not one per document). */
const noItems: readonly (LineCol | undefined)[] = Object.freeze([]);

/**
 * Short strings seen before in the same file, reused instead of sliced again:
 * keys and many values (kinds, namespaces, labels, phases) repeat in every
 * object, and each slice would be a new allocation to collect or keep.
 */
export class StringTable {
  private readonly slots: (string | undefined)[] = new Array<string | undefined>(4096);

  get(text: string, start: number, end: number): string {
    const len = end - start;
    if (len === 0) return '';
    // Copies, not views: the decoded objects outlive the file's text (own-string.ts).
    if (len > 48) return ownString(text.slice(start, end));
    const h = (len * 31 + text.charCodeAt(start) * 7 + text.charCodeAt(end - 1) * 13 + text.charCodeAt(start + (len >> 1)) * 3) & 4095;
    const hit = this.slots[h];
    if (hit !== undefined && hit.length === len && text.startsWith(hit, start)) return hit;
    const s = ownString(text.slice(start, end));
    this.slots[h] = s;
    return s;
  }
}

/**
 * Stands in the root `items` list for an item outside the subset: the caller
 * reads that item alone with the full parser (FastDocument.itemSpans).
 */
export const SLOW_ITEM: unique symbol = Symbol('item outside the fast subset');

/** Thrown inside the decoder to abandon a document; never escapes this module. */
class OutsideSubset {}
const outside = new OutsideSubset();
function giveUp(): never {
  throw outside;
}

const NL = 10;
const SPACE = 32;
const HASH = 35;
const DASH = 45;
const COLON = 58;

/**
 * Characters the subset accepts anywhere: printable ASCII, newline and the
 * printable BMP without line/paragraph separators, surrogates and BOM.
 */
const UNSUPPORTED_CHAR = /[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]/;

/** A plain key: letters, digits, `._/-`, and `:` not followed by a space (k8s:io.kubernetes.pod.namespace). */
function isKeyChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 47 || c === DASH;
}

const OCT_RE = /^0o[0-7]+$/;
const INT_RE = /^[-+]?[0-9]+$/;
const HEX_RE = /^0x[0-9a-fA-F]+$/;
const NAN_RE = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const EXP_RE = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT_RE = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** A plain scalar as yaml's core schema resolves it (same tests, same order, same conversions). */
export function resolvePlainScalar(s: string): unknown {
  const c = s.charCodeAt(0);
  // A letter can start only a null or a bool (the regexes NULL_RE and BOOL_RE, written out: keys such
  // as name, namespace, nodeName and values such as node-7 are met in every object).
  if (c === 110 || c === 78 || c === 116 || c === 84 || c === 102 || c === 70) {
    if (s.length !== 4 && s.length !== 5) return s;
    if (s === 'null' || s === 'Null' || s === 'NULL') return null;
    if (s === 'true' || s === 'True' || s === 'TRUE') return true;
    if (s === 'false' || s === 'False' || s === 'FALSE') return false;
    return s;
  }
  if (c === 126 /* ~ */) return s.length === 1 ? null : s;
  // Only these first characters can start a number.
  const digit = c >= 48 && c <= 57;
  if (!digit && c !== 43 && c !== DASH && c !== 46) return s;
  if (digit) {
    // No number of the core schema has a ':' or two '.': addresses (100.65.0.1, 2001:db8::1) stay strings.
    if (s.includes(':') || s.indexOf('.') !== s.lastIndexOf('.')) return s;
    if (allDigits(s)) return parseInt(s, 10); // INT_RE (OCT_RE and HEX_RE need a letter)
  }
  if (OCT_RE.test(s)) return parseInt(s.substring(2), 8);
  if (INT_RE.test(s)) return parseInt(s, 10);
  if (HEX_RE.test(s)) return parseInt(s.substring(2), 16);
  if (!digit && NAN_RE.test(s)) return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (EXP_RE.test(s) || FLOAT_RE.test(s)) return parseFloat(s);
  return s;
}

function allDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i);
    if (d < 48 || d > 57) return false;
  }
  return true;
}

/**
 * Decodes the document in text[start, end) whose first line is line `line`
 * (1-based) of the whole text. `start` is at a line start; the document may
 * open with a bare `---` line. Undefined when the document is outside the subset.
 */
export function decodeFastYamlDocument(text: string, start: number, end: number, line: number,
  strings: StringTable = new StringTable(), textIsClean = false, slowItems = false): FastDocument | undefined {
  if (!textIsClean && !fastSubsetText(text.slice(start, end))) return undefined;
  try {
    const decoder = new Decoder(text, start, end, line, strings);
    const doc = decoder.document();
    // SLOW_ITEM stands in the value only for a caller that reads those items itself, and only in a List.
    if (decoder.slowItems > 0 && (!slowItems || !isListValue(doc.value))) return undefined;
    return doc;
  } catch (e) {
    if (e === outside) return undefined;
    // A stack overflow on absurd nesting: the full parser reports it properly.
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

/** A root mapping that loaders read as a List: kind List or ...List, items a list. */
function isListValue(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const kind = (v as Record<string, unknown>)['kind'];
  return typeof kind === 'string' && (kind === 'List' || kind.endsWith('List')) && Array.isArray((v as Record<string, unknown>)['items']);
}

/**
 * True when `text` holds only characters the subset reads and no `${`
 * (placeholders are expanded, and warned about, by the full path). A caller
 * with a stream of many documents checks the whole text once with this and
 * passes `textIsClean` instead of having each document scanned again.
 */
export function fastSubsetText(text: string): boolean {
  return !UNSUPPORTED_CHAR.test(text) && !text.includes('${');
}

/** 1 for the characters that cannot start a plain scalar (c-indicators). */
const INDICATOR = new Uint8Array(128);
for (const ch of '&*!|>%@`,[]{}#\'"?:-') INDICATOR[ch.charCodeAt(0)] = 1;

/**
 * A short list copied to its exact length: a list grown by push keeps room for
 * 16+ entries, and 100k pods' two-address lists would keep that room (about
 * 130 bytes each) for as long as the objects live.
 */
function fitted<T>(a: T[]): T[] {
  return a.length < 16 ? a.slice() : a;
}

class Decoder {
  private readonly text: string;
  private readonly end: number;
  /** Start of the current line. */
  private pos: number;
  /** 1-based number of the current line in the whole text. */
  private line: number;
  /** End of the current line. */
  private eol: number;

  private readonly strings: StringTable;
  /** Positions of the entries of the root mapping's `items` (created when that key is met). */
  private rootItems: ItemCollector | undefined;
  /** Items of the root `items` list left to the full parser (SLOW_ITEM in the value). */
  slowItems = 0;

  constructor(text: string, start: number, end: number, line: number, strings: StringTable) {
    this.text = text;
    this.strings = strings;
    this.end = end;
    this.pos = start;
    this.line = line;
    this.eol = this.findEol(start);
  }

  document(): FastDocument {
    const { text } = this;
    if (text.startsWith('---', this.pos)) {
      // Only a bare marker (or one with a comment) opens a document here.
      const rest = this.restOfLine(this.pos + 3);
      if (rest !== this.lineEnd(this.pos)) giveUp();
      this.nextLine();
    }
    const indent = this.skipToContent();
    if (indent < 0) return { value: null, rootPos: undefined, itemPos: undefined };
    const rootPos = { line: this.line, col: indent + 1 };
    const value = this.isSeqEntry(indent) ? this.seq(indent, undefined) : this.map(indent, this.pos + indent, true);
    if (this.skipToContent() >= 0) giveUp();
    if (Array.isArray(value)) return { value, rootPos, itemPos: undefined };
    return { value, rootPos, itemPos: this.rootItems?.pos ?? noItems, itemSpans: this.rootItems?.spans };
  }

  /** Index of the end of the current line (its '\n' or the document end); `from` is on that line. */
  private lineEnd(_from: number): number {
    return this.eol;
  }

  private findEol(from: number): number {
    const nl = this.text.indexOf('\n', from);
    return nl < 0 || nl > this.end ? this.end : nl;
  }

  private nextLine(): void {
    this.pos = this.eol < this.end ? this.eol + 1 : this.end;
    this.eol = this.findEol(this.pos);
    this.line++;
  }

  /**
   * From `from` on the current line: skips spaces and a comment (which needs a
   * space before it unless it opens the rest); returns where the line's content
   * ends (the line end when only spaces and a comment were left).
   */
  private restOfLine(from: number): number {
    const { text } = this;
    const e = this.lineEnd(from);
    let p = from;
    while (p < e && text.charCodeAt(p) === SPACE) p++;
    if (p === e) return e;
    if (text.charCodeAt(p) === HASH && (p === from ? p === 0 || text.charCodeAt(p - 1) === SPACE || text.charCodeAt(p - 1) === NL : true)) return e;
    return p;
  }

  /** Skips blank and comment-only lines; the indentation of the next content line, or -1 at the end. */
  private skipToContent(): number {
    const { text, end } = this;
    while (this.pos < end) {
      let p = this.pos;
      while (p < end && text.charCodeAt(p) === SPACE) p++;
      const c = p < end ? text.charCodeAt(p) : NL;
      if (c !== NL && c !== HASH) return p - this.pos;
      this.nextLine();
    }
    return -1;
  }

  private isSeqEntry(indent: number): boolean {
    const p = this.pos + indent;
    if (this.text.charCodeAt(p) !== DASH) return false;
    const n = p + 1 < this.end ? this.text.charCodeAt(p + 1) : NL;
    return n === SPACE || n === NL;
  }

  /** The block node on the current (content) line at `indent`; `itemPos` collects a sequence's item positions. */
  private block(indent: number, itemPos?: ItemCollector): unknown {
    if (this.isSeqEntry(indent)) return this.seq(indent, itemPos);
    return this.map(indent, this.pos + indent);
  }

  /** End of a plain key starting at `p` (at its ':'), or -1 if the line does not start with one. */
  private keyEnd(p: number): number {
    const { text } = this;
    const e = this.lineEnd(p);
    const first = text.charCodeAt(p);
    if (!isKeyChar(first) || first === DASH) return -1;
    let q = p;
    for (;;) {
      if (q >= e) return -1;
      const c = text.charCodeAt(q);
      if (c === COLON) {
        if (q + 1 >= e || text.charCodeAt(q + 1) === SPACE) return q;
        q++;
        continue;
      }
      if (!isKeyChar(c)) return -1;
      q++;
    }
  }

  /**
   * A block mapping whose entries sit at column `indent`; the first key starts
   * at `keyStart` on the current line (later than the line's indentation for a
   * mapping opened on a `- ` line). For the root only (`root`), the
   * positions of the `items` sequence's entries are collected (rootItems).
   */
  private map(indent: number, keyStart: number, root = false): Record<string, unknown> {
    const { text } = this;
    const obj: Record<string, unknown> = {};
    let at = keyStart;
    for (;;) {
      const colon = this.keyEnd(at);
      if (colon < 0 || colon - at > 1000) giveUp();
      const key = this.strings.get(text, at, colon);
      if (typeof resolvePlainScalar(key) !== 'string' || key === '__proto__' || Object.hasOwn(obj, key)) giveUp();
      const rest = this.restOfLine(colon + 1);
      let value: unknown;
      if (rest === this.lineEnd(colon + 1)) {
        this.nextLine();
        const next = this.skipToContent();
        const items = root && key === 'items' ? (this.rootItems = { pos: [], spans: [] }) : undefined;
        if (next > indent) value = this.block(next, items);
        else if (next === indent && this.isSeqEntry(indent)) value = this.seq(indent, items);
        else value = null;
      } else {
        value = this.scalar(rest);
      }
      obj[key] = value;
      const next = this.skipToContent();
      if (next < indent) return obj;
      if (next > indent || this.isSeqEntry(indent)) giveUp();
      at = this.pos + indent;
    }
  }

  /** A block sequence whose `- ` entries sit at column `indent`. */
  private seq(indent: number, itemPos: ItemCollector | undefined): unknown[] {
    const { text } = this;
    const arr: unknown[] = [];
    for (;;) {
      const lineStart = this.pos;
      const dashLine = this.line;
      const dash = this.pos + indent;
      const rest = this.restOfLine(dash + 1);
      let item: unknown;
      let pos: LineCol | undefined;
      try {
        if (rest === this.lineEnd(dash + 1)) {
          this.nextLine();
          const next = this.skipToContent();
          if (next > indent) {
            if (itemPos !== undefined) pos = { line: this.line, col: next + 1 };
            item = this.block(next);
          } else {
            item = null;
          }
        } else {
          const c = text.charCodeAt(rest);
          if (c === DASH && (rest + 1 >= this.end || text.charCodeAt(rest + 1) === SPACE || text.charCodeAt(rest + 1) === NL)) giveUp();
          if (itemPos !== undefined) pos = { line: this.line, col: rest - this.pos + 1 };
          item = this.keyEnd(rest) >= 0 ? this.map(rest - this.pos, rest) : this.scalar(rest);
        }
      } catch (e) {
        // An item of a root `items` list outside the subset (a block scalar, an escape, an anchor...) is
        // left to the full parser alone (ItemSpan); the rest of the List stays on the fast path.
        if (itemPos === undefined || !(e === outside || e instanceof RangeError)) throw e;
        this.skipItem(indent, dashLine);
        item = SLOW_ITEM;
        pos = undefined;
        this.slowItems++;
      }
      arr.push(item);
      const next = this.skipToContent();
      if (itemPos !== undefined) {
        itemPos.pos.push(pos);
        // Up to the next content line: the next item's `- ` line, or what follows the sequence.
        itemPos.spans.push({ start: lineStart, end: this.pos, line: dashLine, col: 1 });
      }
      if (next < indent) return fitted(arr);
      if (next > indent || !this.isSeqEntry(indent)) {
        // A mapping key at the same column ends a sequence that is a mapping's value.
        if (next === indent && !this.isSeqEntry(indent)) return fitted(arr);
        giveUp();
      }
    }
  }

  /**
   * Moves past the rest of the item whose `- ` (at column `indent`) is on line
   * `dashLine`: to the next content line indented `indent` or less (comment
   * and blank lines belong to the item), or the end.
   */
  private skipItem(indent: number, dashLine: number): void {
    if (this.line === dashLine) this.nextLine();
    for (;;) {
      const next = this.skipToContent();
      if (next < 0 || next <= indent) return;
      this.nextLine();
    }
  }

  /** The first `code` in text[from, e) (a quote must close on its line; searching on would make hostile files quadratic). */
  private indexInLine(code: number, from: number, e: number): number {
    for (let i = from; i < e; i++) if (this.text.charCodeAt(i) === code) return i;
    giveUp();
  }

  /** The items of a one-line flow sequence of plain scalars, text[from, close): `[world, 10.0.0.0/8]`. */
  private flowItems(from: number, close: number): unknown[] {
    const { text } = this;
    const items: unknown[] = [];
    let start = from;
    for (let i = from; i <= close; i++) {
      const c = i < close ? text.charCodeAt(i) : 44;
      if (c === 44 /* , */) {
        let a = start;
        let b = i;
        while (a < b && text.charCodeAt(a) === SPACE) a++;
        while (b > a && text.charCodeAt(b - 1) === SPACE) b--;
        if (a === b) giveUp(); // empty item, trailing comma, "[ ]"
        items.push(resolvePlainScalar(this.strings.get(text, a, b)));
        start = i + 1;
        continue;
      }
      // Nothing that could be a flow indicator, a pair, a quote, a property or a comment.
      if (c === COLON || c === HASH || c === 34 || c === 39 || c === 91 || c === 93 || c === 123 || c === 125 ||
        ((c === 38 || c === 42 || c === 33 || c === 124 || c === 62 || c === 37 || c === 64 || c === 96 || c === 63 || c === DASH) && i === this.firstNonSpace(start, i))) {
        giveUp();
      }
    }
    return fitted(items);
  }

  private firstNonSpace(from: number, to: number): number {
    let i = from;
    while (i < to && this.text.charCodeAt(i) === SPACE) i++;
    return i;
  }

  /** A one-line scalar starting at `p`; moves to the next line. */
  private scalar(p: number): unknown {
    const { text } = this;
    const e = this.lineEnd(p);
    const c = text.charCodeAt(p);
    let value: unknown;
    let after: number;
    if (c === 34 /* " */) {
      const close = this.indexInLine(34, p + 1, e);
      const s = this.strings.get(text, p + 1, close);
      if (s.includes('\\')) giveUp();
      value = s;
      after = close + 1;
    } else if (c === 39 /* ' */) {
      let q = p + 1;
      for (;;) {
        const close = this.indexInLine(39, q, e);
        if (text.charCodeAt(close + 1) === 39) {
          q = close + 2;
          continue;
        }
        value = ownString(text.slice(p + 1, close).replaceAll("''", "'"));
        after = close + 1;
        break;
      }
    } else if (c === 123 /* { */) {
      if (text.charCodeAt(p + 1) !== 125) giveUp();
      value = {};
      after = p + 2;
    } else if (c === 91 /* [ */) {
      const close = this.indexInLine(93, p + 1, e);
      value = close === p + 1 ? [] : this.flowItems(p + 1, close);
      after = close + 1;
    } else {
      // Indicators that cannot start a plain scalar here (or start something else).
      if (c < 128 && INDICATOR[c] === 1 &&
        !((c === DASH || c === 63 || c === COLON) && p + 1 < e && text.charCodeAt(p + 1) !== SPACE)) giveUp();
      // A comment starts at " #"; the scalar is what comes before, without trailing spaces. A ':'
      // followed by a space or ending the scalar would make it a mapping key (yaml: an error here).
      let stop = p;
      for (; stop < e; stop++) {
        const ch = text.charCodeAt(stop);
        if (ch === HASH && text.charCodeAt(stop - 1) === SPACE) break;
        if (ch === COLON && (stop + 1 >= e || text.charCodeAt(stop + 1) === SPACE)) giveUp();
      }
      let q = stop;
      while (q > p && text.charCodeAt(q - 1) === SPACE) q--;
      value = resolvePlainScalar(this.strings.get(text, p, q));
      after = e;
    }
    if (this.restOfLine(after) !== e) giveUp();
    if (after !== e && text.charCodeAt(after) !== SPACE) giveUp();
    this.nextLine();
    return value;
  }
}
