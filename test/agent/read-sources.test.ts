import test from 'ava';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSources, sha256 } from '../../src/agent/read-sources.js';

test('reads manifests recursively, skips dot entries (ConfigMap ..data, editor temp files)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-agent-src-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // a mounted ConfigMap: ..2024_01/a.yaml, ..data -> ..2024_01, a.yaml -> ..data/a.yaml
  await mkdir(join(dir, '..2024_01'));
  await writeFile(join(dir, '..2024_01', 'a.yaml'), 'a: 1\n');
  await symlink('..2024_01', join(dir, '..data'));
  await symlink('..data/a.yaml', join(dir, 'a.yaml'));
  await writeFile(join(dir, '.a.yaml.swp'), 'junk');
  await writeFile(join(dir, 'notes.txt'), 'ignored');
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'b.json'), '{}');
  const r = await readSources([dir]);
  t.deepEqual(r.files.map((f) => f.file), [join(dir, 'a.yaml'), join(dir, 'sub', 'b.json')]);
  t.is(r.files[0]?.hash, sha256('a: 1\n'));
  t.deepEqual(r.errors, []);
  t.deepEqual(r.dirs, [dir, join(dir, 'sub')]);
});

test('a missing source is an error; a given file is read whatever its name', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-agent-src-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'policy.txt'), 'x');
  const r = await readSources([join(dir, 'policy.txt'), join(dir, 'nope')]);
  t.deepEqual(r.files.map((f) => f.text), ['x']);
  t.deepEqual(r.errors.map((e) => [e.file, e.code]), [[join(dir, 'nope'), 'ENOENT']]);
});
