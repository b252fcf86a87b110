// Files that are not UTF-8: refused with the line and column of the first
// byte that is not, never decoded into U+FFFD and loaded.
import test, { type ExecutionContext } from 'ava';
import { fc, testProp } from '@fast-check/ava';
import { isUtf8 } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifestPaths } from '../../src/inventory/load-manifest-files.js';
import type { FileReadLimits } from '../../src/inventory/read-manifest-files.js';
import { findUtf8Problem } from '../../src/inventory/utf8-check.js';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nwt-utf8-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const quiet: FileReadLimits = { maxFileBytes: 1 << 20, settleMs: 0, settleWaitMs: 0 };
const node = (name: string): string => `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${name}\n  annotations:\n    zone: "zürich"\n`;

test('a file with a byte that is not UTF-8: an error at its line and column, nothing of it loaded; other files load', async (t) => {
  const dir = tempDir(t);
  const bad = Buffer.concat([Buffer.from(`${node('n1')}---\napiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n  labels:\n    zone: "z`), Buffer.from([0xfc]), Buffer.from('rich"\n')]);
  writeFileSync(join(dir, 'bad.yaml'), bad);
  writeFileSync(join(dir, 'good.yaml'), node('n3'));
  const r = await loadManifestPaths([dir], quiet);
  t.deepEqual(r.objects.map((o) => o.metadata.name), ['n3']);
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, `${p.pos.file}:${p.pos.line}:${p.pos.col}`]), [['error', 'load/encoding', `${join(dir, 'bad.yaml')}:13:13`]]);
  t.regex(r.problems[0]?.message ?? '', /not UTF-8: byte 0xfc at line 13, column 13/);
});

test('UTF-16 with a byte order mark is named as such; a UTF-8 BOM and multi-byte characters load', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'utf16.yaml'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(node('u'), 'utf16le')]));
  writeFileSync(join(dir, 'utf8bom.yaml'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(node('b'))]));
  const r = await loadManifestPaths([dir], quiet);
  t.deepEqual(r.objects.map((o) => [o.metadata.name, (o.metadata['annotations'] as Record<string, string> | undefined)?.['zone']]), [['b', 'zürich']]);
  t.deepEqual(r.problems.map((p) => [p.code, p.pos.line, p.pos.col]), [['load/encoding', 1, 1]]);
  t.regex(r.problems[0]?.message ?? '', /UTF-16 \(byte order mark ff fe\)/);
});

test('overlong forms, surrogates, code points past U+10FFFF and cut sequences are not UTF-8', (t) => {
  const cases: [number[], number][] = [
    [[0x41, 0xc0, 0x80], 1], [[0x41, 0xe0, 0x80, 0x80], 1], [[0xed, 0xa0, 0x80], 0], [[0xf4, 0x90, 0x80, 0x80], 0],
    [[0x41, 0x42, 0xe2, 0x82], 2], [[0xc3, 0xa9, 0x80], 2], [[0xf8, 0x88, 0x80, 0x80, 0x80], 0],
  ];
  for (const [bytes, offset] of cases) t.is(findUtf8Problem(Uint8Array.from(bytes))?.offset, offset, bytes.join(','));
  t.is(findUtf8Problem(Buffer.from('zürich € 𝄞')), undefined);
});

testProp('the first invalid byte: everything before it is UTF-8, no character starts there', [fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 10 })], (t, noise, text) => {
  const bytes = Buffer.concat([Buffer.from(text), Buffer.from(noise), Buffer.from(text)]);
  const p = findUtf8Problem(bytes);
  t.is(p === undefined, isUtf8(bytes));
  if (p === undefined) return;
  t.true(isUtf8(bytes.subarray(0, p.offset)));
  t.false(isUtf8(bytes.subarray(0, Math.min(bytes.length, p.offset + 4))));
  const before = bytes.subarray(0, p.offset).toString('utf8').split('\n');
  t.is(p.line, before.length);
  // Columns count characters (code points), not bytes.
  t.is(p.col, [...(before.at(-1) ?? '')].length + 1);
}, { numRuns: 500, seed: 0x9f21 });
