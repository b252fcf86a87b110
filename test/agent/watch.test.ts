import test from 'ava';
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirsToWatch, watchDirs } from '../../src/agent/watch.js';

/**
 * Resolves with the events seen after `act` ran, once one named `expected` arrived
 * (bounded by 30 s): waits for the event, not for a wall-clock margin.
 */
async function eventsDuring(dir: string, act: () => Promise<void>, expected: string): Promise<string[]> {
  const seen: string[] = [];
  let arrived: () => void = () => undefined;
  const got = new Promise<void>((resolve) => (arrived = resolve));
  const w = watchDirs((_d, f) => {
    seen.push(f ?? '');
    if (f === expected) arrived();
  }, () => undefined);
  w.sync([dir]);
  let timer: NodeJS.Timeout | undefined;
  try {
    await act();
    await Promise.race([got, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
  } finally {
    clearTimeout(timer);
    w.close();
  }
  return seen;
}

test('atomic save, delete and a ConfigMap ..data swap all produce events on the directory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-agent-watch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, '..2024_01'));
  await writeFile(join(dir, '..2024_01', 'a.yaml'), 'v1');
  await symlink('..2024_01', join(dir, '..data'));
  await symlink('..data/a.yaml', join(dir, 'a.yaml'));
  await writeFile(join(dir, 'b.yaml'), 'v1');

  const save = await eventsDuring(dir, async () => {
    await writeFile(join(dir, '.b.yaml.tmp'), 'v2');
    await rename(join(dir, '.b.yaml.tmp'), join(dir, 'b.yaml'));
  }, 'b.yaml');
  t.true(save.includes('b.yaml'), save.join(','));

  const swap = await eventsDuring(dir, async () => {
    await mkdir(join(dir, '..2024_02'));
    await writeFile(join(dir, '..2024_02', 'a.yaml'), 'v2');
    await symlink('..2024_02', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  }, '..data');
  t.true(swap.includes('..data'), swap.join(','));

  const del = await eventsDuring(dir, () => unlink(join(dir, 'b.yaml')), 'b.yaml');
  t.true(del.includes('b.yaml'), del.join(','));
});

test('a missing directory is watched through its nearest existing parent; sync drops stale watches', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-agent-watch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const w = watchDirs(() => undefined, () => undefined);
  t.teardown(() => w.close());
  w.sync([join(dir, 'policies', 'sub')]);
  t.deepEqual(w.watched, [dir]);
  await mkdir(join(dir, 'policies'));
  w.sync([join(dir, 'policies')]);
  t.deepEqual(w.watched, [join(dir, 'policies')]);
});

test('dirsToWatch: directories as given, parents of files', (t) => {
  t.deepEqual(dirsToWatch(['/etc/nodewall/policies'], ['/etc/nodewall/nodewall.yaml', '/srv/p/one.yaml']), [
    '/etc/nodewall', '/etc/nodewall/policies', '/srv/p',
  ]);
});
