// The predicted drift hash's guards without a kernel: which nft paths qualify, and that a path which does
// not (a wrapper script) is never run, nor is anything loaded when the namespace helper fails.

import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { hasSysAdmin, isElfExecutable, predictTableHash, scratchShell } from '../../src/agent/predicted-table-hash.js';

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-pth-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('isElfExecutable: only an absolute path to an executable ELF file', async (t) => {
  const dir = await tmp(t);
  t.true(await isElfExecutable(process.execPath), 'the node binary');
  const script = join(dir, 'nft');
  await writeFile(script, '#!/bin/sh\nexec nsenter --net=/run/netns/x /usr/sbin/nft "$@"\n');
  await chmod(script, 0o755);
  t.false(await isElfExecutable(script), 'a wrapper script');
  const copy = join(dir, 'elf-not-executable');
  await copyFile(process.execPath, copy);
  await chmod(copy, 0o644);
  t.false(await isElfExecutable(copy), 'ELF without an execute bit');
  t.false(await isElfExecutable(dir), 'a directory');
  t.false(await isElfExecutable(join(dir, 'missing')), 'a missing file');
  t.false(await isElfExecutable('nft'), 'a relative path (PATH lookup)');
  const short = join(dir, 'short');
  await writeFile(short, '\x7fEL');
  await chmod(short, 0o755);
  t.false(await isElfExecutable(short), 'a file shorter than the magic');
  t.false(await isElfExecutable('/dev/zero'), 'a device');
});

test('a wrapper nft path is never run: no prediction, the caller reads back', async (t) => {
  const dir = await tmp(t);
  const ran = join(dir, 'ran');
  const wrapper = join(dir, 'nft');
  await writeFile(wrapper, `#!/bin/sh\necho ran >> ${ran}\nexit 0\n`);
  await chmod(wrapper, 0o755);
  const out = await predictTableHash({ nftPath: wrapper, table: 'nodewall', structureScript: 'table inet nodewall {}\n' });
  t.is(out.hash, undefined);
  t.regex('skipped' in out ? out.skipped : '', /not an ELF executable/);
  await t.throwsAsync(readFile(ran, 'utf8'), { code: 'ENOENT' });
});

test('the namespace helper failing or printing something else gives no prediction (never a throw)', async (t) => {
  const dir = await tmp(t);
  const failing = join(dir, 'unshare-fails');
  await writeFile(failing, '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n');
  await chmod(failing, 0o755);
  const a = await predictTableHash({ nftPath: process.execPath, table: 'nodewall', structureScript: '', unsharePath: failing });
  t.is(a.hash, undefined);
  t.regex('skipped' in a ? a.skipped : '', /Operation not permitted/);
  // Exit 0 with a listing of something else (or nothing): not trusted.
  const liar = join(dir, 'unshare-liar');
  await writeFile(liar, '#!/bin/sh\necho "table inet other {"\nexit 0\n');
  await chmod(liar, 0o755);
  const b = await predictTableHash({ nftPath: process.execPath, table: 'nodewall', structureScript: '', unsharePath: liar });
  t.is(b.hash, undefined);
  const missing = await predictTableHash({ nftPath: process.execPath, table: 'nodewall', structureScript: '', unsharePath: join(dir, 'no-such-unshare') });
  t.is(missing.hash, undefined);
  // A helper that hangs is killed at the timeout.
  const hang = join(dir, 'unshare-hangs');
  await writeFile(hang, '#!/bin/sh\nexec sleep 60\n');
  await chmod(hang, 0o755);
  const c = await predictTableHash({ nftPath: process.execPath, table: 'nodewall', structureScript: '', unsharePath: hang, timeoutMs: 200 });
  t.is(c.hash, undefined);
});

/** Runs the scratch shell as the namespace helper would, with a fake nft that logs its arguments. */
async function runScratchShell(t: { teardown(fn: () => Promise<void>): void }, fakeNft: string, nsArg: string): Promise<{ status: number | null; calls: string }> {
  const dir = await tmp(t);
  const log = join(dir, 'calls');
  const nft = join(dir, 'nft');
  await writeFile(nft, `#!/bin/sh\necho "$*" >> ${log}\n${fakeNft}\n`);
  await chmod(nft, 0o755);
  const r = spawnSync('/bin/sh', ['-c', scratchShell, nft, 'nodewall', nsArg], { input: 'table inet nodewall {}\n' });
  return { status: r.status, calls: await readFile(log, 'utf8').catch(() => '') };
}

test('the scratch shell loads nothing in the network namespace the agent itself is in (a helper that did not unshare)', async (t) => {
  const own = await readlink('/proc/self/ns/net');
  const r = await runScratchShell(t, 'exit 0', own);
  t.is(r.status, 4);
  t.is(r.calls, '', 'nft not run at all');
});

test('the scratch shell loads nothing when listing the tables fails (not the same as no tables)', async (t) => {
  const r = await runScratchShell(t, '[ "$1" = list ] && exit 1; exit 0', 'net:[0]');
  t.is(r.status, 3);
  t.is(r.calls, 'list tables\n', 'only the failed listing');
});

test('the scratch shell loads nothing where tables exist, and loads then lists where none do', async (t) => {
  const busy = await runScratchShell(t, '[ "$1" = list ] && [ "$2" = tables ] && echo "table inet x"; exit 0', 'net:[0]');
  t.is(busy.status, 3);
  t.is(busy.calls, 'list tables\n');
  const fresh = await runScratchShell(t, 'exit 0', 'net:[0]');
  t.is(fresh.status, 0);
  t.is(fresh.calls, 'list tables\n-f -\n-t list table inet nodewall\n');
});

test('without CAP_SYS_ADMIN nothing is predicted and no namespace helper is tried; with it, hasSysAdmin says so', async (t) => {
  // This suite runs as root with every capability (CI too): the check sees CAP_SYS_ADMIN.
  t.true(await hasSysAdmin());
  // The same module in a process whose bounding set lacks CAP_SYS_ADMIN (util-linux setpriv).
  const mod = new URL('../../src/agent/predicted-table-hash.js', import.meta.url).href;
  const code = `const m = await import(${JSON.stringify(mod)}); console.log(JSON.stringify({ cap: await m.hasSysAdmin(), out: await m.predictTableHash({ nftPath: process.execPath, table: 'nodewall', structureScript: '' }) }));`;
  const r = spawnSync('setpriv', ['--bounding-set=-sys_admin', process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { cap: boolean; out: { hash?: string; skipped?: string } };
  t.false(got.cap);
  t.is(got.out.hash, undefined);
  t.regex(got.out.skipped ?? '', /no CAP_SYS_ADMIN/);
});
