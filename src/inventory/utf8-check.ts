// Where a manifest file stops being UTF-8. Kubernetes manifests are UTF-8
// (kubectl and the API server refuse anything else); decoding other bytes
// would turn them into U+FFFD silently and load something the author never
// wrote, so such a file is refused, with the line and column of the first
// byte that is not UTF-8.

import { isUtf8 } from 'node:buffer';

export interface Utf8Problem {
  /** Byte offset of the first invalid byte. */
  readonly offset: number;
  /** 1-based line and column (in characters) of that byte. */
  readonly line: number;
  readonly col: number;
  /** What it is, e.g. "byte 0xff" or "UTF-16 (byte order mark FF FE)". */
  readonly what: string;
}

/** Undefined when `bytes` are UTF-8 (the common case: one native check). */
export function findUtf8Problem(bytes: Uint8Array): Utf8Problem | undefined {
  if (isUtf8(bytes)) return undefined;
  const offset = firstInvalid(bytes);
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  // Characters before it on its line: every byte that is not a continuation byte starts one.
  let col = 1;
  for (let i = lineStart; i < offset; i++) if (((bytes[i] ?? 0) & 0xc0) !== 0x80) col++;
  const b0 = bytes[0];
  const b1 = bytes[1];
  const utf16 = offset === 0 && ((b0 === 0xff && b1 === 0xfe) || (b0 === 0xfe && b1 === 0xff));
  const what = utf16
    ? `UTF-16 (byte order mark ${hex(b0)} ${hex(b1)})`
    : `byte 0x${hex(bytes[offset])}`;
  return { offset, line, col, what };
}

function hex(b: number | undefined): string {
  return (b ?? 0).toString(16).padStart(2, '0');
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence (RFC 3629). */
function firstInvalid(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i] ?? 0;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
      cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
      cp = b & 0x07;
    } else {
      return i;
    }
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += need + 1;
  }
  return n;
}
