// Splits a child's stdout into lines with a bound on the line length. A line
// longer than `maxLineBytes` (a hostile or broken producer, or one huge
// event) is dropped whole and counted; the buffer never holds more than
// `maxLineBytes` bytes, whatever arrives.

export class LineSplitter {
  readonly #max: number;
  readonly #onLine: (line: string) => void;
  #parts: Buffer[] = [];
  #size = 0;
  /** Inside an overlong line: skip until its newline. */
  #skipping = false;
  #dropped = 0;

  constructor(maxLineBytes: number, onLine: (line: string) => void) {
    this.#max = maxLineBytes;
    this.#onLine = onLine;
  }

  /** Lines dropped for being too long. */
  get dropped(): number {
    return this.#dropped;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.#skipping) {
        const piece = chunk.subarray(start, end);
        if (this.#size + piece.length > this.#max) {
          this.#parts = [];
          this.#size = 0;
          this.#skipping = true;
          this.#dropped++;
        } else if (piece.length > 0) {
          // Copy: the chunk's memory is not ours to keep.
          this.#parts.push(Buffer.from(piece));
          this.#size += piece.length;
        }
      }
      if (nl < 0) return;
      if (!this.#skipping) {
        const line = Buffer.concat(this.#parts, this.#size).toString('utf8');
        this.#parts = [];
        this.#size = 0;
        this.#onLine(line);
      }
      this.#skipping = false;
      start = nl + 1;
    }
  }
}
