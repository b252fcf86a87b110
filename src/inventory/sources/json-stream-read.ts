// Reads a JSON state file whose bulk is one or two big top-level arrays (k8s-cache.json: every pod) without
// holding the whole text and the whole parse at once: the file is read and decoded in 1 MiB pieces, and each
// element of those arrays is parsed by JSON.parse on its own text as soon as it is complete. The peak is the
// parsed value plus about one piece, where JSON.parse of the whole file needs the bytes, the text and the parse.
//
// Same value as JSON.parse of the whole text, and the same files refused: the structure between the values
// (braces, brackets, commas, colons, JSON whitespace) is checked here, every value's own text by JSON.parse.
// Only the top-level object's keys named in `streamed` are read element by element, and only when their
// value is an array; anything else is one JSON.parse of that value's text.

import { isUtf8 } from 'node:buffer';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { BoundedReadError, fileType, openFailure } from '../read-bounded.js';
import { ShapeError, type StateRead } from '../state-files.js';

/** Bytes read and decoded at a time. */
export const defaultPieceBytes = 1024 * 1024;

/** Elements of a streamed array parsed by one JSON.parse, when they are whole in one piece. */
const elementsPerBatch = 256;

/** Malformed JSON (the message says what and at which character offset). */
export class JsonStreamError extends Error {
  override readonly name = 'JsonStreamError';
}

/** Where the parser is in the top-level object. */
const S = { Start: 0, FirstKey: 1, Key: 2, Colon: 3, Value: 4, ArrayFirst: 5, Element: 6, AfterElement: 7, AfterValue: 8, Done: 9 } as const;
type S = (typeof S)[keyof typeof S];

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Progress through one value's text, kept across pieces (a value may span many; each is scanned once). */
interface ValueScan {
  active: boolean;
  /** 0: a string, 1: an object or array, 2: a number, true, false or null (or garbage). */
  kind: 0 | 1 | 2;
  depth: number;
  inString: boolean;
  escaped: boolean;
  /** Index of the next quote / backslash in the current text at or after the scan (MAX_SAFE_INTEGER: none); stale below it. */
  quote: number;
  backslash: number;
}

/** The index of `ch` in `text` from `from`, or MAX_SAFE_INTEGER when there is none. */
function nextIndex(text: string, ch: string, from: number): number {
  const i = text.indexOf(ch, from);
  return i < 0 ? Number.MAX_SAFE_INTEGER : i;
}

/**
 * Scans `text` from `from` for the end of the value `scan` is in (or starts at `from`: not whitespace).
 * Returns the index after its end, or -1 when `text` ends first (`scan` says where it is). Only finds the
 * end: JSON.parse of the value's text checks it.
 */
function scanValue(text: string, from: number, scan: ValueScan): number {
  const n = text.length;
  let i = from;
  if (!scan.active) {
    scan.active = true;
    const c = text.charCodeAt(i);
    scan.kind = c === 0x22 ? 0 : c === 0x7b || c === 0x5b ? 1 : 2;
    scan.depth = scan.kind === 1 ? 1 : 0;
    scan.inString = scan.kind === 0;
    scan.escaped = false;
    if (scan.kind !== 2) i++;
  }
  if (scan.kind === 2) {
    for (; i < n; i++) {
      const d = text.charCodeAt(i);
      if (isWs(d) || d === 0x2c || d === 0x5d || d === 0x7d) return i;
    }
    return -1;
  }
  for (; i < n; i++) {
    if (scan.inString) {
      if (scan.escaped) {
        scan.escaped = false;
        continue;
      }
      // To the next quote or backslash at native speed (most strings have no escapes). Both positions are
      // remembered, so a text full of either is still scanned once.
      if (scan.quote < i) scan.quote = nextIndex(text, '"', i);
      if (scan.backslash < i) scan.backslash = nextIndex(text, '\\', i);
      const q = scan.quote;
      const b = scan.backslash;
      if (b < q) {
        i = b;
        scan.escaped = true;
        continue;
      }
      if (q >= n) return -1;
      i = q;
      scan.inString = false;
      if (scan.kind === 0) return i + 1;
      continue;
    }
    const d = text.charCodeAt(i);
    if (d === 0x22) {
      scan.inString = true;
    } else if (d === 0x7b || d === 0x5b) {
      scan.depth++;
    } else if ((d === 0x7d || d === 0x5d) && --scan.depth === 0) {
      return i + 1;
    }
  }
  return -1;
}

function parseValue(text: string, at: number): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new JsonStreamError(`${(err as Error).message} (in the value at character ${at})`, { cause: err });
  }
}

/** Parses a JSON text fed in pieces; the top level must be an object. */
export class StreamedJsonObject {
  readonly #streamed: ReadonlySet<string>;
  readonly #top: Record<string, unknown> = {};
  #s: S = S.Start;
  #text = '';
  #pos = 0;
  /** Characters dropped from the front of #text so far (for error offsets). */
  #base = 0;
  #key = '';
  #array: unknown[] = [];
  #seen = false;
  /** Where the scan of the value in progress is (across pieces). */
  readonly #scan: ValueScan = { active: false, kind: 2, depth: 0, inString: false, escaped: false, quote: -1, backslash: -1 };
  /** The text of the value in progress from earlier pieces. */
  #parts: string[] = [];
  /** Elements scanned but not parsed yet: from, to (indices in #text) and how many. */
  #batchFrom = -1;
  #batchTo = -1;
  #batchCount = 0;
  /** Character offset where the value in progress starts. */
  #valueAt = 0;

  constructor(streamed: ReadonlySet<string>) {
    this.#streamed = streamed;
  }

  feed(piece: string): void {
    // Positions found in the previous text: stale.
    this.#scan.quote = -1;
    this.#scan.backslash = -1;
    this.#base += this.#pos;
    this.#text = this.#pos === 0 ? this.#text + piece : this.#text.slice(this.#pos) + piece;
    this.#pos = 0;
    if (piece.length > 0) this.#seen = true;
    this.#run(false);
  }

  /** The parsed object; throws JsonStreamError when the text is not one complete JSON object. */
  end(): Record<string, unknown> {
    if (!this.#seen) throw new JsonStreamError('empty file');
    this.#run(true);
    if (this.#s !== S.Done) throw new JsonStreamError(`unexpected end of JSON input at character ${this.#base + this.#text.length}`);
    return this.#top;
  }

  #fail(what: string): never {
    const at = this.#base + this.#pos;
    const c = this.#text[this.#pos];
    throw new JsonStreamError(c === undefined ? `unexpected end of JSON input at character ${at}` : `unexpected ${JSON.stringify(c)} at character ${at}, expected ${what}`);
  }

  /** Parses the batched elements (complete ones of this piece, with the separators between them). */
  #flushBatch(): void {
    if (this.#batchCount === 0) return;
    const at = this.#base + this.#batchFrom;
    const parsed = parseValue(`[${this.#text.slice(this.#batchFrom, this.#batchTo)}]`, at) as unknown[];
    for (const el of parsed) this.#array.push(el);
    this.#batchFrom = -1;
    this.#batchTo = -1;
    this.#batchCount = 0;
  }

  #set(key: string, value: unknown): void {
    // defineProperty, not assignment: a key "__proto__" is an own property, as JSON.parse makes it.
    Object.defineProperty(this.#top, key, { value, writable: true, enumerable: true, configurable: true });
  }

  /** The next complete value's text from #pos, or undefined when it goes on in the next piece. */
  #valueText(eof: boolean): { text: string; at: number } | undefined {
    const scan = this.#scan;
    if (!scan.active) this.#valueAt = this.#base + this.#pos;
    let end = scanValue(this.#text, this.#pos, scan);
    if (end < 0) {
      if (!eof) {
        // Kept aside: the next piece starts a new window, so a long value is never copied or scanned again.
        this.#parts.push(this.#text.slice(this.#pos));
        this.#pos = this.#text.length;
        return undefined;
      }
      end = this.#text.length; // cut off: JSON.parse says what is wrong
    }
    scan.active = false;
    const tail = this.#text.slice(this.#pos, end);
    const text = this.#parts.length === 0 ? tail : this.#parts.join('') + tail;
    this.#parts = [];
    this.#pos = end;
    return { text, at: this.#valueAt };
  }

  #run(eof: boolean): void {
    const t = this.#text;
    for (;;) {
      // Whitespace between tokens only: inside a value that goes on from the last piece it is the value's.
      const inValue = this.#scan.active;
      if (!inValue) while (this.#pos < t.length && isWs(t.charCodeAt(this.#pos))) this.#pos++;
      if (this.#pos >= t.length) {
        this.#flushBatch(); // before this piece's text goes
        if (eof && this.#s !== S.Done) this.#fail('more JSON');
        return;
      }
      const c = t.charCodeAt(this.#pos);
      switch (this.#s) {
        case S.Start:
          if (c !== 0x7b) this.#fail('"{"');
          this.#pos++;
          this.#s = S.FirstKey;
          break;
        case S.FirstKey:
          if (c === 0x7d) {
            this.#pos++;
            this.#s = S.Done;
          } else {
            this.#s = S.Key;
          }
          break;
        case S.Key: {
          if (!inValue && c !== 0x22) this.#fail('a key');
          const v = this.#valueText(eof);
          if (v === undefined) return;
          this.#key = parseValue(v.text, v.at) as string;
          this.#s = S.Colon;
          break;
        }
        case S.Colon:
          if (c !== 0x3a) this.#fail('":"');
          this.#pos++;
          this.#s = S.Value;
          break;
        case S.Value: {
          if (!inValue && c === 0x5b && this.#streamed.has(this.#key)) {
            this.#pos++;
            this.#array = [];
            this.#s = S.ArrayFirst;
            break;
          }
          const v = this.#valueText(eof);
          if (v === undefined) return;
          this.#set(this.#key, parseValue(v.text, v.at));
          this.#s = S.AfterValue;
          break;
        }
        case S.ArrayFirst:
          if (c === 0x5d) {
            this.#pos++;
            this.#set(this.#key, this.#array);
            this.#array = [];
            this.#s = S.AfterValue;
          } else {
            this.#s = S.Element;
          }
          break;
        case S.Element: {
          if (!inValue) {
            // An element whole in this piece joins the batch (parsed with its neighbours: one JSON.parse per
            // batch costs less than one per element); one that goes on in the next piece is parsed alone.
            const end = scanValue(t, this.#pos, this.#scan);
            if (end >= 0) {
              this.#scan.active = false;
              if (this.#batchFrom < 0) this.#batchFrom = this.#pos;
              this.#batchTo = end;
              this.#pos = end;
              this.#s = S.AfterElement;
              if (++this.#batchCount === elementsPerBatch) this.#flushBatch();
              break;
            }
            // Scanned again below from the element's start: the quote and backslash positions found ahead of
            // it are not the first ones after its start.
            this.#scan.active = false;
            this.#scan.quote = -1;
            this.#scan.backslash = -1;
          }
          this.#flushBatch();
          const v = this.#valueText(eof);
          if (v === undefined) return;
          this.#array.push(parseValue(v.text, v.at));
          this.#s = S.AfterElement;
          break;
        }
        case S.AfterElement:
          if (c === 0x2c) {
            this.#pos++;
            this.#s = S.Element;
          } else if (c === 0x5d) {
            this.#flushBatch();
            this.#pos++;
            this.#set(this.#key, this.#array);
            this.#array = [];
            this.#s = S.AfterValue;
          } else {
            this.#fail('"," or "]"');
          }
          break;
        case S.AfterValue:
          if (c === 0x2c) {
            this.#pos++;
            this.#s = S.Key;
          } else if (c === 0x7d) {
            this.#pos++;
            this.#s = S.Done;
          } else {
            this.#fail('"," or "}"');
          }
          break;
        case S.Done:
          this.#fail('nothing after the object');
      }
    }
  }
}

/**
 * readStateFile (state-files.ts) for a file read by StreamedJsonObject: the same outcomes and reasons
 * (missing; not a regular file, too big, unreadable, not UTF-8, not valid JSON, wrong shape). Never throws.
 */
export async function readStreamedStateFile<T>(path: string, maxBytes: number, streamed: ReadonlySet<string>, check: (v: unknown) => T, pieceBytes = defaultPieceBytes): Promise<StateRead<T>> {
  let top: Record<string, unknown>;
  try {
    const r = await parseFile(path, maxBytes, streamed, pieceBytes);
    if (r === undefined) return { kind: 'missing' };
    top = r;
  } catch (err) {
    if (err instanceof JsonStreamError) return { kind: 'corrupt', reason: `not valid JSON (${err.message})` };
    return { kind: 'corrupt', reason: err instanceof Error ? err.message : String(err) };
  }
  try {
    return { kind: 'ok', value: check(top) };
  } catch (err) {
    if (err instanceof ShapeError) return { kind: 'corrupt', reason: `wrong shape: ${err.message}` };
    return { kind: 'corrupt', reason: `cannot check: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The parsed top-level object; undefined when the file does not exist. Throws Error naming the problem. */
async function parseFile(path: string, maxBytes: number, streamed: ReadonlySet<string>, pieceBytes: number): Promise<Record<string, unknown> | undefined> {
  let fh: FileHandle;
  try {
    // As readBounded: no blocking on a FIFO, no symlink followed (nodewall never writes one there).
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_NOFOLLOW);
  } catch (err) {
    const e = await openFailure(path, err, maxBytes);
    if (e.kind === 'missing') return undefined;
    throw notReadable(e, maxBytes);
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) throw new Error(`is not a regular file (a ${fileType(st)})`);
    if (st.size > BigInt(maxBytes)) throw new Error(`is ${st.size} bytes, over the limit of ${maxBytes}`);
    const parser = new StreamedJsonObject(streamed);
    // StringDecoder, not TextDecoder: TextDecoder's strings live outside the V8 heap until a GC (tens of MB
    // of RSS for a 30 MB file); validity is checked apart (readStateFile refuses invalid UTF-8 too).
    const decoder = new StringDecoder('utf8');
    const utf8 = new Utf8Check();
    const buf = Buffer.allocUnsafe(pieceBytes);
    let total = 0;
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, 0, pieceBytes, null));
      } catch (err) {
        throw new Error(`cannot read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      total += bytesRead;
      if (total > maxBytes) throw new Error(`grew past ${maxBytes} bytes while being read`);
      const bytes = buf.subarray(0, bytesRead);
      if (!utf8.valid(bytes, bytesRead === 0)) throw new Error('is not valid UTF-8');
      parser.feed(bytesRead === 0 ? decoder.end() : decoder.write(bytes));
      if (bytesRead === 0) break;
    }
    return parser.end();
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** UTF-8 validity of bytes read in pieces (a character may be split between two). */
export class Utf8Check {
  #carry: Buffer = Buffer.alloc(0);

  /** Whether everything so far is valid UTF-8, the incomplete character at the end of a piece aside (not at `last`). */
  valid(bytes: Buffer, last: boolean): boolean {
    const all = this.#carry.length === 0 ? bytes : Buffer.concat([this.#carry, bytes]);
    const cut = last ? all.length : completeLength(all);
    if (!isUtf8(all.subarray(0, cut))) return false;
    this.#carry = Buffer.from(all.subarray(cut));
    return true;
  }
}

/** The length of `b` without a multi-byte character cut off at its end. */
function completeLength(b: Buffer): number {
  let p = b.length - 1;
  let continuation = 0;
  while (p >= 0 && continuation < 3 && ((b[p] ?? 0) & 0xc0) === 0x80) {
    p--;
    continuation++;
  }
  if (p < 0) return b.length;
  const lead = b[p] ?? 0;
  const need = lead < 0x80 ? 1 : (lead & 0xe0) === 0xc0 ? 2 : (lead & 0xf0) === 0xe0 ? 3 : (lead & 0xf8) === 0xf0 ? 4 : 1;
  return p + need > b.length ? p : b.length;
}

/** readStateFile's wording for a file that cannot be opened as a regular file. */
function notReadable(e: BoundedReadError, maxBytes: number): Error {
  if (e.kind === 'not-regular') return new Error(`is not a regular file (a ${e.fileType ?? 'special file'})`, { cause: e });
  if (e.kind === 'too-large') return new Error(e.size === undefined ? e.message : `is ${e.size} bytes, over the limit of ${maxBytes}`, { cause: e });
  return new Error(e.message, { cause: e });
}
