// Field positions of a policy that the fast path decoded without them: found
// when first asked for (a problem or a lint warning to place) by reading that
// one document again with the position-tracking parser. Holds a copy of the
// document's text only (not of the file it came from) until then.
import { Composer, Parser } from 'yaml';
import type { SourcePos } from './types.js';
import { collectPositions, lineCounter, type PositionLookup } from './yaml-positions.js';

export class LazyDocumentPositions implements PositionLookup {
  private source: string | undefined;
  private positions: Map<string, SourcePos> | undefined;
  private readonly file: string;
  private readonly firstLine: number;

  /**
   * `source`: one YAML document (fast-path subset) that starts on line `firstLine` of `file`.
   * `whole`: source is a whole text of its own (not a slice of a larger one): kept as it is.
   */
  constructor(source: string, file: string, firstLine: number, whole = false) {
    // A flat copy: a slice would keep the whole file's text alive.
    this.source = whole || source.length < 16 ? source : (` ${source}`).slice(1);
    this.file = file;
    this.firstLine = firstLine;
  }

  get(path: string): SourcePos | undefined {
    this.positions ??= this.read();
    return this.positions.get(path);
  }

  private read(): Map<string, SourcePos> {
    const text = this.source ?? '';
    this.source = undefined;
    const lc = lineCounter(text);
    const toPos = (offset: number): SourcePos => {
      const { line, col } = lc.linePos(offset);
      return { file: this.file, line: line + this.firstLine - 1, col };
    };
    const composer = new Composer({ merge: true, prettyErrors: true, logLevel: 'error' });
    for (const doc of composer.compose(new Parser().parse(text))) {
      if (doc.contents !== null) return collectPositions(doc.contents, toPos);
    }
    return new Map();
  }
}
