// splitDocuments keeps the document starts in typed arrays; at(i) gives the
// span of document i: consecutive, covering the text, each starting on a line
// start with its 1-based line number.
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { splitDocuments } from '../../src/api/split-documents.js';

const piece = fc.constantFrom('a: 1\n', '---\n', '--- \n', '---\tx\n', '----\n', '  - b\n', '\n', '# ---\n', 'x: "---"\n', '---');

testProp('spans tile the text; each starts at a line start; line = newlines before it + 1', [fc.array(piece, { maxLength: 40 })], (t, parts) => {
  const text = parts.join('');
  const spans = splitDocuments(text);
  if (spans === undefined) return t.fail('no directive or end marker here: the text splits');
  const list = [...spans];
  t.is(list.length, spans.length);
  let at = 0;
  for (const [i, s] of list.entries()) {
    t.deepEqual(spans.at(i), s);
    t.is(s.start, at);
    t.true(s.end >= s.start);
    t.true(s.start === 0 || text[s.start - 1] === '\n');
    t.is(s.line, text.slice(0, s.start).split('\n').length);
    // A document after the first starts with a `---` marker line.
    if (i > 0) t.true(text.startsWith('---', s.start));
    at = s.end;
  }
  t.is(at, text.length);
});

test('three documents, their lines; a directive or an end marker: undefined', (t) => {
  const spans = splitDocuments('a: 1\n---\nb: 2\nc: 3\n--- \nd: 4\n');
  t.deepEqual(spans === undefined ? undefined : [...spans], [
    { start: 0, end: 5, line: 1 },
    { start: 5, end: 19, line: 2 },
    { start: 19, end: 29, line: 5 },
  ]);
  t.throws(() => spans?.at(3), { instanceOf: RangeError });
  t.is(splitDocuments('%YAML 1.2\n---\na: 1\n'), undefined);
  t.is(splitDocuments('a: 1\n...\n'), undefined);
});
