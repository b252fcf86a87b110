// The pure part of the scale bench's kernel-side observer (bench/nft-monitor-child.ts):
// the child's `NANOS<TAB>LINE` output parsed back, transactions delimited, and the
// markers that say an event's change reached the kernel.
//
// `nft monitor` (text, nftables 1.0.6) prints one line per object the kernel
// notifies, in commit order, and after each transaction a line
// `# new generation N by process P (nft)`:
//   add element inet nodewall <set> { 100.67.0.1 }
//   delete element inet nodewall <set> { 100.67.0.1 }
//   add rule inet nodewall <chain> ... tcp dport 20003 ... accept
//   add chain inet nodewall nw_in_allow_host_6_2af9836dc5cf
//   delete rule inet nodewall <chain> handle N / delete chain inet nodewall <chain>
// (an emptied chain's flush prints nothing; the rules of a rewritten chain come as
// `delete rule ... handle N` then `add rule ...`).
// The kernel switches to the new generation before it sends the transaction's
// notifications, so the first line of a transaction read is the earliest the
// observer can see that the ruleset is in force; the line that names the event's
// change may come many lines later (a structural apply replaces sets: at 100k
// pods tens of thousands of element lines), so both are kept.

/** One monitor line as the child stamped it: CLOCK_MONOTONIC nanoseconds when read, and the text. */
export interface MonitorLine {
  readonly nanos: bigint;
  readonly text: string;
}

/** A monitor line with the stamp of the first line of its transaction. */
export interface ObservedLine extends MonitorLine {
  /** When the first line of this line's transaction was read (<= nanos). */
  readonly txNanos: bigint;
}

/** `NANOS<TAB>LINE` -> the line, or undefined for anything else (an empty line, no tab, not a number). */
export function parseStamped(line: string): MonitorLine | undefined {
  const tab = line.indexOf('\t');
  if (tab <= 0) return undefined;
  const digits = line.slice(0, tab);
  if (!/^\d+$/.test(digits)) return undefined;
  return { nanos: BigInt(digits), text: line.slice(tab + 1) };
}

/** The child's own line: `NANOS<TAB>LINE`. */
export const formatStamped = (nanos: bigint, text: string): string => `${nanos}\t${text}\n`;

/** The line nft prints after each committed transaction. */
export const isGenerationLine = (text: string): boolean => text.startsWith('# new generation ');

/**
 * The scale bench's filter (the child's KEEP_REGEX): element lines only for the bench's own addresses
 * (100.67.0.0/16), no `delete rule` lines; everything else.
 */
export const benchKeepPattern = String.raw`^(?!(?:add|delete) element |delete rule )|^(?:add|delete) element .*(?<![0-9A-Za-z.:/-])100\.67\.`;

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `text` names `token` as a whole: not inside a longer address or number (100.67.0.1 is not in 100.67.0.10,
 * 2000 not in 20001 nor in 100.67.20.0). Characters that may continue an address or number: [0-9A-Za-z.:/-].
 */
export function hasToken(text: string, token: string): boolean {
  return new RegExp(`(?<![0-9A-Za-z.:/-])${escape(token)}(?![0-9A-Za-z.:/-])`).test(text);
}

/** `add element ...` / `delete element ...` naming `address` as a whole. */
export const elementMarker = (op: 'add' | 'delete', address: string) => (text: string): boolean =>
  text.startsWith(`${op} element `) && hasToken(text, address);

/** `add rule ...` with `port` as a destination port: `dport 20003` or in a set `dport { 1000, 20003 }`. */
export const ruleWithPortMarker = (port: number) => {
  const single = new RegExp(`\\bdport ${port}(?![0-9A-Za-z.:/-])`);
  const inSet = new RegExp(`\\bdport \\{[^}]*(?<![0-9A-Za-z.:/-])${port}(?![0-9A-Za-z.:/-])[^}]*\\}`);
  return (text: string): boolean => text.startsWith('add rule ') && (single.test(text) || inSet.test(text));
};

/** `add chain inet <table> <chain>` / `delete chain ...` for a chain whose name starts with `prefix`. */
export const chainMarker = (op: 'add' | 'delete', table: string, prefix: string) => (text: string): boolean =>
  text.startsWith(`${op} chain inet ${table} ${prefix}`);

/**
 * The observer's lines in order, each with the stamp of its transaction's first line (the line after
 * the previous `# new generation`), and a wait for the first line from a position on that matches.
 */
export class MonitorLog {
  readonly lines: ObservedLine[] = [];
  #txNanos: bigint | undefined;
  #wake: (() => void) | undefined;
  #ended: string | undefined;

  /** Adds one child line (`NANOS<TAB>LINE`); anything else is ignored. */
  push(raw: string): void {
    const l = parseStamped(raw);
    if (l === undefined) return;
    const txNanos = this.#txNanos ?? l.nanos;
    this.lines.push({ ...l, txNanos });
    this.#txNanos = isGenerationLine(l.text) ? undefined : txNanos;
    this.#wake?.();
  }

  /** The observer stopped (no more lines will come): waits fail at once with `why`. */
  end(why: string): void {
    this.#ended = why;
    this.#wake?.();
  }

  /** The first line at index >= from that matches, waiting for it up to timeoutMs (then throws `what`). */
  async waitFor(match: (text: string) => boolean, from: number, timeoutMs: number, what: string): Promise<ObservedLine> {
    const deadline = Date.now() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.lines.length; i++) {
        const l = this.lines[i];
        if (l !== undefined && match(l.text)) return l;
      }
      if (this.#ended !== undefined) throw new Error(`nft monitor: ${what} never seen (the observer ended: ${this.#ended})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nft monitor: ${what} not seen within ${timeoutMs} ms (${this.lines.length - from} lines since the write; last: ${JSON.stringify(this.lines.at(-1)?.text ?? '')})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wake = undefined;
    }
  }
}

/** Milliseconds from `from` to `to` (both process.hrtime.bigint()). */
export const nanosToMs = (from: bigint, to: bigint): number => Number(to - from) / 1e6;
