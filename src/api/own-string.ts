// Strings that own their characters. V8 makes a slice of 13 characters or
// more a view into the string it was cut from, so one 20-character pod IP
// taken from a 25 MB file text keeps the whole text alive for as long as the
// decoded object lives (about 25 MB of heap at 100k pods, for nothing).

import { Buffer } from 'node:buffer';

/** V8 copies slices shorter than this (SlicedString::kMinLength); longer ones may be views. */
const MIN_VIEW_LENGTH = 13;

/**
 * `s` with characters of its own: equal to `s`, and no longer holding on to
 * the string it was cut from. ASCII (all of a typical manifest) is copied
 * through a latin1 buffer; anything else through a concatenation that V8
 * flattens into a fresh string one character longer, viewed from its second
 * character (lossless for any UTF-16, lone surrogates included).
 */
export function ownString(s: string): string {
  if (s.length < MIN_VIEW_LENGTH) return s;
  if (Buffer.byteLength(s, 'utf8') === s.length) return Buffer.from(s, 'latin1').toString('latin1');
  return ` ${s}`.slice(1);
}
