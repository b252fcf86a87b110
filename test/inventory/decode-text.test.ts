// decodeText (read-manifest-files.ts) decodes ASCII as latin1 (an external
// string, off the V8 heap) and everything else as UTF-8: the same string as
// UTF-8 decoding in every case.
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { Buffer } from 'node:buffer';
import { decodeText } from '../../src/inventory/read-manifest-files.js';

testProp('decodeText of UTF-8 bytes is the string they encode (ASCII or not, short or over 1 MB)',
  [fc.oneof(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.string({ unit: 'grapheme-ascii', maxLength: 200 })), fc.integer({ min: 0, max: 4 })],
  (t, s, times) => {
    // A big repeat crosses the size from which Node keeps a latin1 string outside the heap.
    const text = times === 0 ? s : s.repeat(Math.ceil((1 << 20) / Math.max(1, s.length)) * times);
    const bytes = Buffer.from(text, 'utf8');
    t.is(decodeText(bytes), bytes.toString('utf8'));
    t.is(decodeText(bytes), text);
  }, { numRuns: 60 });

test('one byte over 0x7f switches to UTF-8 (latin1 would turn é into two characters)', (t) => {
  const text = `${'a'.repeat(2 << 20)}é`;
  t.is(decodeText(Buffer.from(text, 'utf8')), text);
});
