// Text from input files shown to people or handed to line-oriented tools
// (terminals, logs, nft) must not carry characters those act on: C0/C1
// control characters (NUL ends nft's read, ESC starts terminal sequences,
// CR/LF break lines), the Unicode line separators and bidirectional
// overrides (which reorder what a reader sees), and lone UTF-16 surrogates.

const UNPRINTABLE_SOURCE = '[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]';
const LONE_SURROGATE_SOURCE = '[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';
const UNPRINTABLE = new RegExp(UNPRINTABLE_SOURCE);
const LONE_SURROGATE = new RegExp(LONE_SURROGATE_SOURCE);
const ANY_BAD = new RegExp(`${UNPRINTABLE_SOURCE}|${LONE_SURROGATE_SOURCE}`, 'g');

function hex4(c: string): string {
  return (c.charCodeAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
}

/** Why `s` can never be a name or label, whatever the rule: undefined when it is plain text. */
export function unprintableProblem(s: string): string | undefined {
  const m = UNPRINTABLE.exec(s);
  if (m !== null) return `contains the control character U+${hex4(m[0])} at character ${m.index + 1}`;
  if (s.includes('\ufffd')) return 'contains U+FFFD, which stands for bytes that are not valid UTF-8';
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate (not valid Unicode text)';
  return undefined;
}

/** `s` with each unprintable character written as `\uXXXX` (readable, and reversible by a person). */
export function escapeUnprintable(s: string): string {
  ANY_BAD.lastIndex = 0;
  // Lower-case hex, as JSON.stringify writes the C0 controls it escapes.
  return ANY_BAD.test(s) ? s.replace(ANY_BAD, (c) => `\\u${hex4(c).toLowerCase()}`) : s;
}

/** `s` with each unprintable character replaced by `replacement` (for nft strings, where `\` is not allowed either). */
export function replaceUnprintable(s: string, replacement: string): string {
  return s.replace(ANY_BAD, replacement);
}

const SHOWN_MAX = 80;

/**
 * A value as it may appear in a message: double-quoted, unprintable characters
 * escaped, cut after 80 characters with its length.
 */
export function shown(s: string): string {
  const cut = s.length > SHOWN_MAX ? s.slice(0, SHOWN_MAX) : s;
  const quoted = escapeUnprintable(JSON.stringify(cut));
  return s.length > SHOWN_MAX ? `${quoted.slice(0, -1)}..." (${s.length} characters)` : quoted;
}
