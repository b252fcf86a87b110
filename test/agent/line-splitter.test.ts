import test from 'ava';
import fc from 'fast-check';
import { LineSplitter } from '../../src/agent/line-splitter.js';

function split(chunks: readonly Buffer[], max: number): { lines: string[]; dropped: number } {
  const lines: string[] = [];
  const s = new LineSplitter(max, (l) => lines.push(l));
  for (const c of chunks) s.push(c);
  return { lines, dropped: s.dropped };
}

test('lines across chunk boundaries come out whole', (t) => {
  fc.assert(fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => s.replace(/\n/g, '')), { maxLength: 20 }),
    fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }), (lines, cuts) => {
      const text = Buffer.from(lines.map((l) => `${l}\n`).join(''));
      const chunks: Buffer[] = [];
      let at = 0;
      let i = 0;
      while (at < text.length) {
        const n = cuts[i++ % cuts.length] ?? 1;
        chunks.push(text.subarray(at, at + n));
        at += n;
      }
      const r = split(chunks, 1 << 20);
      t.deepEqual(r.lines, lines);
      t.is(r.dropped, 0);
    }));
});

test('an overlong line is dropped whole, the next line is intact', (t) => {
  const huge = Buffer.alloc(100_000, 0x41);
  const r = split([Buffer.from('ok1\n'), huge, huge, Buffer.from('tail of huge\nok2\n'), Buffer.from('x'.repeat(50)), Buffer.from('\nok3\n')], 40);
  t.deepEqual(r.lines, ['ok1', 'ok2', 'ok3']);
  t.is(r.dropped, 2);
});

test('a line of exactly the limit passes; one byte more does not', (t) => {
  t.deepEqual(split([Buffer.from(`${'a'.repeat(10)}\n${'b'.repeat(11)}\n`)], 10).lines, ['a'.repeat(10)]);
});

test('an endless line without a newline never grows the buffer past the limit', (t) => {
  const lines: string[] = [];
  const s = new LineSplitter(1000, (l) => lines.push(l));
  const chunk = Buffer.alloc(64 * 1024, 0x42);
  const ab0 = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 2000; i++) s.push(chunk); // 128 MiB
  const grown = process.memoryUsage().arrayBuffers - ab0;
  t.true(grown < 32 * 1024 * 1024, `buffers grew by ${grown}`);
  s.push(Buffer.from('\nafter\n'));
  t.deepEqual(lines, ['after']);
  t.is(s.dropped, 1);
});
