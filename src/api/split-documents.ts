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

export function splitDocuments(text: string): DocumentSpan[] | undefined {
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
  const spans: DocumentSpan[] = [];
  let line = 1;
  let counted = 0;
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i] ?? 0;
    for (let nl = text.indexOf('\n', counted); nl >= 0 && nl < start; nl = text.indexOf('\n', nl + 1)) line++;
    counted = start;
    spans.push({ start, end: starts[i + 1] ?? text.length, line });
  }
  return spans;
}
