// Splits a YAML stream into its documents without parsing it: a line that
// starts with `---` followed by a space, tab, CR, newline or the end is a
// document start wherever it is (yaml's lexer ends any scalar or collection
// there), so each piece can be read alone and gives what the whole stream gives.
//
// Undefined when the stream uses what ties documents together or ends them
// otherwise: directives (`%YAML`, `%TAG`, which apply to the next document)
// and `...` end markers. Such a stream is read whole.

export interface DocumentSpan {
  /** Offset of the document's first line (its `---` line, if any). */
  readonly start: number;
  /** Offset after its last line. */
  readonly end: number;
  /** 1-based line number of `start`. */
  readonly line: number;
}

// Only '\n' starts a line for yaml (not a lone '\r' or U+2028, as for /^/m).
const MARKER_LINE = /(?:^|\n)(?:---|\.\.\.|%)/g;

function isEmpty(c: string | undefined): boolean {
  return c === undefined || c === ' ' || c === '\n' || c === '\r' || c === '\t';
}

/**
 * Where the documents of a stream start, held in two typed arrays rather than
 * one object per document: a 100k-pod dump has 100k documents, and the list
 * lives as long as the stream is read (about 7 MB of objects to promote and
 * collect, against 0.8 MB here). `at(i)` makes the span of one document.
 */
export class DocumentSpans {
  readonly #starts: Uint32Array;
  readonly #lines: Uint32Array;
  readonly #textLength: number;

  constructor(starts: Uint32Array, lines: Uint32Array, textLength: number) {
    this.#starts = starts;
    this.#lines = lines;
    this.#textLength = textLength;
  }

  get length(): number {
    return this.#starts.length;
  }

  at(i: number): DocumentSpan {
    const start = this.#starts[i];
    const line = this.#lines[i];
    if (start === undefined || line === undefined) throw new RangeError(`document ${i} of ${this.length}`);
    return { start, end: this.#starts[i + 1] ?? this.#textLength, line };
  }

  *[Symbol.iterator](): Generator<DocumentSpan, void, void> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }
}

export function splitDocuments(text: string): DocumentSpans | undefined {
  const starts: number[] = [0];
  MARKER_LINE.lastIndex = 0;
  for (let m = MARKER_LINE.exec(text); m !== null; m = MARKER_LINE.exec(text)) {
    const marker = m[0].startsWith('\n') ? m[0].slice(1) : m[0];
    const at = m.index + m[0].length - marker.length;
    if (marker === '%') return undefined;
    if (!isEmpty(text[at + 3])) continue;
    if (marker === '...') return undefined;
    if (at > 0) starts.push(at);
  }
  // Offsets and line numbers are below 2^32: a JS string is at most 2^29 characters.
  const lines = new Uint32Array(starts.length);
  let line = 1;
  let counted = 0;
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i] ?? 0;
    for (let nl = text.indexOf('\n', counted); nl >= 0 && nl < start; nl = text.indexOf('\n', nl + 1)) line++;
    counted = start;
    lines[i] = line;
  }
  return new DocumentSpans(Uint32Array.from(starts), lines, text.length);
}
