import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/api/problem.js';
import { ConfigMemo } from '../../src/agent/config-memo.js';
import { readAgentConfig, withOverrides } from '../../src/agent/read-config.js';

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-config-memo-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the config is parsed again only when its bytes change, and always equals a fresh read', async (t) => {
  await withDir(async (dir) => {
    const file = join(dir, 'nodewall.yaml');
    const memo = new ConfigMemo();
    await writeFile(file, 'mode: audit\ndebounceMs: 100\n');
    const a = await memo.read(file);
    const b = await memo.read(file);
    t.is(memo.parses, 1);
    t.is(a, b);
    t.deepEqual(a, await readAgentConfig(file));
    // Same length, other bytes: noticed on the next read.
    await writeFile(file, 'mode: audit\ndebounceMs: 200\n');
    const c = await memo.read(file);
    t.is(memo.parses, 2);
    t.is(c.agent.debounceMs, 200);
    t.deepEqual(c, await readAgentConfig(file));
  });
});

test('a corrupt config throws on every read, and the good one after it is parsed anew', async (t) => {
  await withDir(async (dir) => {
    const file = join(dir, 'nodewall.yaml');
    const memo = new ConfigMemo();
    await writeFile(file, 'mode: audit\n');
    const good = await memo.read(file);
    await writeFile(file, 'mode: [unterminated\n');
    await t.throwsAsync(() => memo.read(file), { instanceOf: InputError });
    await t.throwsAsync(() => memo.read(file), { instanceOf: InputError });
    await writeFile(file, 'mode: bogus\n');
    await t.throwsAsync(() => memo.read(file), { instanceOf: InputError });
    // Back to the very same bytes as the good one: the memo may answer, and must answer the same.
    await writeFile(file, 'mode: audit\n');
    t.deepEqual(await memo.read(file), good);
    // A missing file is an error too (not the remembered config).
    await rm(file);
    await t.throwsAsync(() => memo.read(file), { instanceOf: InputError });
  });
});

test('the same text under another file name is parsed for that file (relative sources resolve against it)', async (t) => {
  await withDir(async (dir) => {
    const text = 'sources: [policies]\n';
    const a = join(dir, 'a.yaml');
    const sub = join(dir, 'sub');
    await writeFile(a, text);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(sub);
    const b = join(sub, 'b.yaml');
    await writeFile(b, text);
    const memo = new ConfigMemo();
    const ra = await memo.read(a);
    const rb = await memo.read(b);
    t.deepEqual(ra.config.sources, [join(dir, 'policies')]);
    t.deepEqual(rb.config.sources, [join(sub, 'policies')]);
    t.is(memo.parses, 2);
  });
});

test('withOverrides is the same object while base and overrides are, and recomputed when either changes', async (t) => {
  const memo = new ConfigMemo();
  const base = await readAgentConfig(undefined);
  const over = { mode: 'audit' as const };
  const x = memo.withOverrides(base, over);
  t.is(memo.withOverrides(base, over), x);
  t.deepEqual(x, withOverrides(base, over));
  const y = memo.withOverrides(base, { mode: 'enforce' as const });
  t.not(y, x);
  t.is(y.config.mode, 'enforce');
  const otherBase = { ...base, hash: 'other' };
  t.not(memo.withOverrides(otherBase, over), x);
});
