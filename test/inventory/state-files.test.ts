// Bounded, shape-checked reads of the agent's state files, and moving a bad one aside.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { field, loadStateFile, obj, quarantine, readStateFile, ShapeError, str } from '../../src/inventory/state-files.js';

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-state-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const check = (v: unknown) => {
  const o = obj(v, '');
  return { name: field(o, 'name', str, '') };
};

test('missing, valid, and every kind of bad file', async (t) => {
  const dir = await tmp(t);
  const f = join(dir, 's.json');
  t.deepEqual(await readStateFile(f, 1000, check), { kind: 'missing' });
  await writeFile(f, '{"name":"a"}');
  t.deepEqual(await readStateFile(f, 1000, check), { kind: 'ok', value: { name: 'a' } });
  const bad: [string | Buffer, RegExp][] = [
    ['null', /wrong shape: \(top level\): expected an object, got null/],
    ['[]', /expected an object, got an array/],
    ['{"name":5}', /wrong shape: name: expected a string, got number 5/],
    ['{}', /name: expected a value \(missing\)/],
    ['{"name":"a"', /not valid JSON/],
    ['', /not valid JSON \(empty file\)/],
    [Buffer.from([0x7b, 0x22, 0x6e, 0xff, 0xfe, 0x22, 0x7d]), /not valid UTF-8/],
    ['x'.repeat(1001), /1001 bytes, over the limit of 1000/],
  ];
  for (const [content, reason] of bad) {
    await writeFile(f, content);
    const r = await readStateFile(f, 1000, check);
    t.is(r.kind, 'corrupt', String(content).slice(0, 20));
    if (r.kind === 'corrupt') t.regex(r.reason, reason);
  }
});

test('a FIFO, a directory, a symlink (to /dev/zero) and a device are not read', async (t) => {
  const dir = await tmp(t);
  const fifo = join(dir, 'fifo.json');
  execFileSync('mkfifo', [fifo]);
  // A FIFO with no writer would block a plain read forever.
  const r1 = await readStateFile(fifo, 1000, check);
  t.like(r1, { kind: 'corrupt' });
  if (r1.kind === 'corrupt') t.regex(r1.reason, /not a regular file \(a FIFO\)/);
  const sub = join(dir, 'dir.json');
  await mkdir(sub);
  const r2 = await readStateFile(sub, 1000, check);
  if (r2.kind === 'corrupt') t.regex(r2.reason, /a directory/);
  else t.fail('directory read');
  const link = join(dir, 'zero.json');
  await symlink('/dev/zero', link);
  const r3 = await readStateFile(link, 1000, check);
  if (r3.kind === 'corrupt') t.regex(r3.reason, /symbolic link/);
  else t.fail('symlink followed');
  const r4 = await readStateFile('/dev/zero', 1000, check);
  if (r4.kind === 'corrupt') t.regex(r4.reason, /character device/);
  else t.fail('device read');
});

test('a pathologically deep structure is a corrupt report, not a crash', async (t) => {
  const dir = await tmp(t);
  const f = join(dir, 'deep.json');
  await writeFile(f, `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
  const r = await readStateFile(f, 1_000_000, check);
  t.is(r.kind, 'corrupt');
});

test('loadStateFile moves a bad file aside; only the newest .corrupt is kept, a directory included', async (t) => {
  const dir = await tmp(t);
  const f = join(dir, 's.json');
  await writeFile(f, 'null');
  const a = await loadStateFile(f, 1000, check);
  t.is(a.value, undefined);
  t.is(a.error?.file, f);
  t.is(a.error?.movedTo, `${f}.corrupt`);
  t.regex(a.error?.message ?? '', /s\.json: wrong shape: .*; moved to .*s\.json\.corrupt$/);
  t.false(existsSync(f));
  await mkdir(f);
  const b = await loadStateFile(f, 1000, check);
  t.regex(b.error?.reason ?? '', /a directory/);
  await writeFile(f, '{"name":');
  await loadStateFile(f, 1000, check);
  t.is(await readFile(`${f}.corrupt`, 'utf8'), '{"name":');
  t.deepEqual((await readdir(dir)).sort(), ['s.json.corrupt']);
  await writeFile(f, '{"name":"ok"}');
  t.deepEqual(await loadStateFile(f, 1000, check), { value: { name: 'ok' } });
});

test('quarantine of a missing file throws (the caller reports it)', async (t) => {
  const dir = await tmp(t);
  await t.throwsAsync(quarantine(join(dir, 'none')));
});

test('ShapeError names path, expectation and what was found', (t) => {
  t.is(new ShapeError('a.b[2]', 'a string', null).message, 'a.b[2]: expected a string, got null');
});
