// The one duration grammar of nodewall's command line: `1h30m`, `15m`, `90s`, `1m30s`, `500ms` (units in this
// order, each at most once, no spaces, no signs, no fractions). Callers add their own rules on top (bare
// seconds for --confirm-within, bounds, error type).

const grammar = /^(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?(?:(\d{1,9})ms)?$/;

/** Milliseconds in `text`, or undefined when it is not a duration. */
export function durationMs(text: string): number | undefined {
  const t = text.trim();
  const m = grammar.exec(t);
  if (m === null || t === '') return undefined;
  const total = Number(m[1] ?? 0) * 3_600_000 + Number(m[2] ?? 0) * 60_000 + Number(m[3] ?? 0) * 1000 + Number(m[4] ?? 0);
  return Number.isSafeInteger(total) ? total : undefined;
}
