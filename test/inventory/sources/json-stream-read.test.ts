// The big cache's reader (json-stream-read.ts) against JSON.parse of the whole text: the same value for any
// object, any whitespace, any piece size; the same texts refused (truncated, edited, hostile); the same
// file-level outcomes as readStateFile.

import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { isUtf8 } from 'node:buffer';
import { JsonStreamError, readStreamedStateFile, StreamedJsonObject, Utf8Check } from '../../../src/inventory/sources/json-stream-read.js';
import { obj, readStateFile } from '../../../src/inventory/state-files.js';

const streamed = new Set(['objects', 'policies']);

/** Feeds `text` in pieces of the given sizes (cycled); returns the parse or the error. */
function parsePieces(text: string, sizes: readonly number[]): { value: unknown } | { error: unknown } {
  const p = new StreamedJsonObject(streamed);
  try {
    let i = 0;
    let k = 0;
    while (i < text.length) {
      const n = sizes[k++ % sizes.length] ?? 1;
      p.feed(text.slice(i, i + n));
      i += n;
    }
    return { value: p.end() };
  } catch (error) {
    return { error };
  }
}

function wholeParse(text: string): { value: unknown } | { error: unknown } {
  try {
    const v: unknown = JSON.parse(text);
    // The reader wants an object at the top (the cache's shape); anything else is refused.
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { error: new Error('not an object') };
    return { value: v };
  } catch (error) {
    return { error };
  }
}

const top = fc.dictionary(
  fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('objects', 'policies', '__proto__', 'format')),
  fc.oneof(fc.jsonValue(), fc.array(fc.jsonValue())),
);
const sizes = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 5 });

testProp('same value as JSON.parse for any object, indentation and piece sizes', [top, fc.constantFrom(undefined, 0, 1, 2, '\t', ' \r\n'), sizes], (t, o, indent, ps) => {
  const text = indent === ' \r\n' ? JSON.stringify(o).replaceAll(',', ' ,\r\n\t').replaceAll(':', ' : ') : JSON.stringify(o, null, indent);
  const whole = wholeParse(text);
  const mine = parsePieces(`\n${text} \n`, ps);
  if ('error' in whole) {
    t.true('error' in mine); // ' , ' inside strings changed: both must refuse or both accept
    return;
  }
  t.deepEqual(mine, { value: whole.value });
  if ('value' in mine) t.deepEqual(Object.keys(mine.value as object), Object.keys(whole.value as object), 'key order');
});

testProp('a damaged text is refused exactly when JSON.parse refuses it (or gives no object)', [
  top, fc.nat(), fc.integer({ min: 0, max: 3 }), fc.string({ unit: 'binary', maxLength: 3 }), sizes,
], (t, o, at, kind, insert, ps) => {
  const text = JSON.stringify(o);
  const i = text.length === 0 ? 0 : at % text.length;
  const damaged = kind === 0 ? text.slice(0, i) : kind === 1 ? text.slice(0, i) + text.slice(i + 1) : kind === 2 ? text.slice(0, i) + insert + text.slice(i) : `${text}${insert}`;
  const whole = wholeParse(damaged);
  const mine = parsePieces(damaged, ps);
  if ('error' in whole) t.true('error' in mine, `accepted ${JSON.stringify(damaged)}`);
  else t.deepEqual(mine, { value: whole.value });
});

const podLike = fc.record({
  kind: fc.constantFrom('Pod', 'Node'),
  metadata: fc.record({ name: fc.string({ unit: 'binary' }), labels: fc.dictionary(fc.string(), fc.string({ unit: 'binary' })) }),
  status: fc.record({ podIPs: fc.array(fc.record({ ip: fc.ipV4() }), { maxLength: 3 }) }),
});

testProp('the shape of the cache: arrays of many objects, in pieces that cut objects anywhere (batches and straddling objects)', [
  fc.array(podLike, { minLength: 1, maxLength: 700 }), fc.array(podLike, { maxLength: 3 }), fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 4 }),
], (t, objects, policies, ps) => {
  const text = JSON.stringify({ format: 'f', syncedAt: 's', resourceVersions: { Pod: '1' }, objects, policies });
  t.deepEqual(parsePieces(text, ps), { value: JSON.parse(text) });
}, { numRuns: 40 });

test('hostile and odd texts', (t) => {
  const refuses = (text: string, what: string) => t.true('error' in parsePieces(text, [3]), what);
  refuses('', 'empty');
  refuses('  \n', 'whitespace only');
  refuses('[]', 'an array at the top');
  refuses('{"objects":[1,]}', 'trailing comma in an array');
  refuses('{"a":1,}', 'trailing comma in the object');
  refuses('{"objects":[1 2]}', 'missing comma');
  refuses('{"objects":[{"a":1}}', 'mismatched bracket');
  refuses('{"a":1}{"b":2}', 'two objects');
  refuses('\uFEFF{"a":1}', 'a byte order mark (JSON.parse refuses it too)');
  refuses('{"a":"x\ny"}', 'a raw newline in a string');
  refuses('{"objects":["\\"]}', 'an escaped quote that leaves the string open');
  t.deepEqual(parsePieces('{"objects":["a\\\\","b\\\\\\""]}', [1]), { value: { objects: ['a\\', 'b\\"'] } }, 'backslashes before quotes across pieces');
  const proto = parsePieces('{"__proto__":{"x":1},"objects":[{"__proto__":2}]}', [2]);
  t.true('value' in proto);
  if ('value' in proto) {
    const v = proto.value as Record<string, unknown>;
    t.true(Object.hasOwn(v, '__proto__'), '__proto__ is an own key, as with JSON.parse');
    t.is(Object.getPrototypeOf(v), Object.prototype);
    t.deepEqual(JSON.stringify(v), JSON.stringify(JSON.parse('{"__proto__":{"x":1},"objects":[{"__proto__":2}]}')));
  }
  t.deepEqual(parsePieces('{"objects":{"not":"an array"},"policies":"x"}', [5]), { value: { objects: { not: 'an array' }, policies: 'x' } });
  t.deepEqual(parsePieces('{"objects":[1],"objects":[2,3]}', [4]), { value: { objects: [2, 3] } }, 'a repeated key: the last wins');
  const e = parsePieces('{"objects":[1,}', [100]);
  t.true('error' in e && e.error instanceof JsonStreamError);
});

test('one value spanning thousands of pieces is read (each piece scanned once)', (t) => {
  const big = 'x'.repeat(4_000_000);
  const text = JSON.stringify({ note: `${big}\\"`, objects: [{ s: big }], deep: { a: [[[[big]]]] } });
  const r = parsePieces(text, [1000]);
  t.true('value' in r);
  t.deepEqual(r, { value: JSON.parse(text) });
});

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-jsr-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const check = (v: unknown) => obj(v, '');

testProp('file outcomes equal readStateFile\'s (multi-byte characters split across pieces included)', [
  fc.oneof(top.map((o) => JSON.stringify(o)), fc.string({ unit: 'binary' }), top.map((o) => JSON.stringify(o).slice(1))),
  fc.integer({ min: 1, max: 16 }),
], async (t, text, piece) => {
  const dir = await mkdtemp(join(tmpdir(), 'nw-jsr-p-'));
  try {
    const file = join(dir, 'f.json');
    await writeFile(file, text);
    const a = await readStateFile(file, 1 << 20, check);
    const b = await readStreamedStateFile(file, 1 << 20, streamed, check, piece);
    t.is(b.kind, a.kind);
    if (a.kind === 'ok' && b.kind === 'ok') t.deepEqual(b.value, a.value);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, { numRuns: 80 });

test('file-level refusals: missing, empty, not UTF-8, too big, symlink, FIFO, directory', async (t) => {
  const dir = await tmp(t);
  const f = (n: string) => join(dir, n);
  const read = (n: string, max = 1 << 20) => readStreamedStateFile(f(n), max, streamed, check, 7);
  t.deepEqual(await read('missing'), { kind: 'missing' });
  await writeFile(f('empty'), '');
  t.deepEqual(await read('empty'), { kind: 'corrupt', reason: 'not valid JSON (empty file)' });
  await writeFile(f('latin1'), Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]));
  t.deepEqual(await read('latin1'), { kind: 'corrupt', reason: 'is not valid UTF-8' });
  await writeFile(f('bom'), Buffer.from('\uFEFF{"a":1}', 'utf8'));
  t.is((await readStateFile(f('bom'), 1 << 20, check)).kind, 'corrupt');
  t.like(await read('bom'), { kind: 'corrupt', reason: 'not valid JSON (unexpected "\uFEFF" at character 0, expected "{")' }, 'a byte order mark is kept and refused, as JSON.parse does');
  await writeFile(f('cut'), Buffer.concat([Buffer.from('{"a":"x"}'), Buffer.from([0xe2, 0x82])]));
  t.deepEqual(await read('cut'), { kind: 'corrupt', reason: 'is not valid UTF-8' }, 'a character cut off at the end of the file');
  await writeFile(f('split'), Buffer.from('{"a":"€€€€€€€€"}', 'utf8'));
  t.deepEqual(await read('split'), { kind: 'ok', value: { a: '€€€€€€€€' } });
  await writeFile(f('big'), `{"a":"${'x'.repeat(100)}"}`);
  t.deepEqual(await read('big', 50), { kind: 'corrupt', reason: 'is 108 bytes, over the limit of 50' });
  await symlink(f('split'), f('link'));
  t.deepEqual(await read('link'), await readStateFile(f('link'), 1 << 20, check));
  t.is((await read('link')).kind, 'corrupt');
  execFileSync('mkfifo', [f('fifo')]);
  t.deepEqual(await read('fifo'), { kind: 'corrupt', reason: 'is not a regular file (a FIFO)' });
  t.deepEqual(await read('.'), await readStateFile(f('.'), 1 << 20, check));
  const shape = await readStreamedStateFile(f('split'), 1 << 20, streamed, (v) => {
    throw new RangeError(`deep ${typeof v}`);
  });
  t.deepEqual(shape, { kind: 'corrupt', reason: 'cannot check: deep object' });
});

testProp('Utf8Check over pieces = isUtf8 of the whole, wherever the pieces are cut', [
  fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }).map((x) => new Uint8Array(Buffer.from(x, 'utf8')))),
  fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
], (t, bytes, sizes) => {
  const whole = Buffer.from(bytes);
  const c = new Utf8Check();
  let ok = true;
  let i = 0;
  let k = 0;
  while (i < whole.length && ok) {
    const n = sizes[k++ % sizes.length] ?? 1;
    ok = c.valid(whole.subarray(i, i + n), false);
    i += n;
  }
  if (ok) ok = c.valid(Buffer.alloc(0), true);
  t.is(ok, isUtf8(whole));
});
