import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { appendFileSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/api/problem.js';
import { parseConfig } from '../../src/inventory/config.js';
import {
  DEFAULT_MAX_FILE_BYTES, fileReadLimits, readManifestFiles, settleVerdict, sha256, type FileReadLimits, type ManifestFileRead, type ReadClock,
} from '../../src/inventory/read-manifest-files.js';
import { loadManifestPaths } from '../../src/inventory/load-manifest-files.js';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nwt-read-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Files are old enough at once: the quiet-time rule is not what these tests are about. */
const quiet: FileReadLimits = { maxFileBytes: 1 << 20, settleMs: 0, settleWaitMs: 0 };

const policy = (name: string): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: ${name}\nspec:\n  nodeSelector: {}\n  ingress: [{}]\n`;

const issues = (r: ManifestFileRead): [string, string, string][] => r.issues.map((e) => [e.file, e.kind, e.severity]);

test('reads manifests recursively, skips dot entries (ConfigMap ..data, editor temp files)', async (t) => {
  const dir = tempDir(t);
  // a mounted ConfigMap: ..2024_01/a.yaml, ..data -> ..2024_01, a.yaml -> ..data/a.yaml
  mkdirSync(join(dir, '..2024_01'));
  writeFileSync(join(dir, '..2024_01', 'a.yaml'), 'a: 1\n');
  symlinkSync('..2024_01', join(dir, '..data'));
  symlinkSync('..data/a.yaml', join(dir, 'a.yaml'));
  writeFileSync(join(dir, '.a.yaml.swp'), 'junk');
  writeFileSync(join(dir, 'notes.txt'), 'ignored');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'b.json'), '{}');
  const r = await readManifestFiles([dir], quiet);
  t.deepEqual(r.files.map((f) => f.file), [join(dir, 'a.yaml'), join(dir, 'sub', 'b.json')]);
  t.is(r.files[0]?.hash, sha256('a: 1\n'));
  t.deepEqual(r.issues, []);
  t.deepEqual(r.dirs, [dir, join(dir, 'sub')]);
});

test('a missing source is an error; a given file is read whatever its name', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'policy.txt'), 'x');
  const r = await readManifestFiles([join(dir, 'policy.txt'), join(dir, 'nope')], quiet);
  t.deepEqual(r.files.map((f) => f.text), ['x']);
  t.deepEqual(r.issues.map((e) => [e.file, e.kind, e.code]), [[join(dir, 'nope'), 'missing', 'ENOENT']]);
  t.regex(r.issues[0]?.message ?? '', new RegExp(`^${join(dir, 'nope')}: cannot read: .*ENOENT`));
});

test('a FIFO in a directory or named directly is skipped with a warning; the read returns', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a.yaml'), policy('a'));
  execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
  // If the reader opened the FIFO blocking, these awaits would never return (no writer ever comes).
  const r = await readManifestFiles([dir, join(dir, 'pipe.yaml')], quiet);
  t.deepEqual(r.files.map((f) => f.file), [join(dir, 'a.yaml')]);
  t.deepEqual(issues(r), [[join(dir, 'pipe.yaml'), 'not-regular', 'warning']]);
  t.regex(r.issues[0]?.message ?? '', /pipe\.yaml: not a regular file \(FIFO\): skipped/);
  const direct = await readManifestFiles([join(dir, 'pipe.yaml')], quiet);
  t.deepEqual(issues(direct), [[join(dir, 'pipe.yaml'), 'not-regular', 'warning']]);
});

test('/dev/zero through a symlink, or named directly, is never read', async (t) => {
  const dir = tempDir(t);
  symlinkSync('/dev/zero', join(dir, 'zero.yaml'));
  const r = await readManifestFiles([dir], quiet);
  t.deepEqual(r.files, []);
  t.deepEqual(issues(r), [[join(dir, 'zero.yaml'), 'not-regular', 'warning']]);
  const direct = await readManifestFiles(['/dev/zero'], quiet);
  t.deepEqual(issues(direct), [['/dev/zero', 'not-regular', 'warning']]);
  t.true([...r.issues, ...direct.issues].every((e) => /not a regular file \(character device\)/.test(e.message)));
});

test('a unix socket named like a manifest is skipped with a warning', async (t) => {
  const dir = tempDir(t);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(dir, 'sock.yaml'), resolve));
  t.teardown(() => server.close());
  const r = await readManifestFiles([dir, join(dir, 'sock.yaml')], quiet);
  t.deepEqual(issues(r), [[join(dir, 'sock.yaml'), 'not-regular', 'warning']]);
  t.regex(r.issues[0]?.message ?? '', /socket/);
});

test('size limit: a file at the limit is read, one byte more is an error naming file, size, limit and key', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'at.yaml'), 'x'.repeat(1000));
  writeFileSync(join(dir, 'over.yaml'), 'x'.repeat(1001));
  const r = await readManifestFiles([dir], { ...quiet, maxFileBytes: 1000 });
  t.deepEqual(r.files.map((f) => [f.file, f.bytes]), [[join(dir, 'at.yaml'), 1000]]);
  t.deepEqual(issues(r), [[join(dir, 'over.yaml'), 'too-large', 'error']]);
  const msg = r.issues[0]?.message ?? '';
  t.regex(msg, /over\.yaml/);
  t.regex(msg, /1001 bytes/);
  t.regex(msg, /limit of 1000 bytes/);
  t.regex(msg, /maxFileBytes/);
});

test('a symlink loop is reported once as a warning, and every policy is read once', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'a.yaml'), policy('a'));
  symlinkSync('.', join(src, 'self'));
  const r = await readManifestFiles([src], quiet);
  t.deepEqual(r.files.map((f) => f.file), [join(src, 'a.yaml')]);
  t.deepEqual(issues(r), [[join(src, 'self'), 'loop', 'warning']]);
  // Through the CLI's loader: one policy, one warning, no duplicate-name error.
  const load = await loadManifestPaths([src], quiet);
  t.deepEqual(load.policies.map((p) => p.name), ['a']);
  t.deepEqual(load.problems.map((p) => [p.severity, p.code, p.pos.file]), [['warning', 'load/symlink-loop', join(src, 'self')]]);
});

test('each real file and directory is read once (device + inode): hard links, two links to one directory', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'real'));
  writeFileSync(join(dir, 'real', 'a.yaml'), policy('a'));
  linkSync(join(dir, 'real', 'a.yaml'), join(dir, 'real', 'b.yaml'));
  symlinkSync('real', join(dir, 'also'));
  const r = await readManifestFiles([dir, join(dir, 'real', 'a.yaml')], quiet);
  t.deepEqual(r.files.map((f) => f.file), [join(dir, 'also', 'a.yaml')]);
  t.deepEqual(r.issues, []);
});

/** Wall time `offsetMs` ahead of the real one (files get real mtimes); sleep moves the monotonic time on and runs `onSleep`. */
function fakeClock(offsetMs: number, onSleep: (n: number) => void = () => undefined): ReadClock & { sleeps: number[] } {
  let mono = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    wallMs: () => Date.now() + offsetMs,
    monoMs: () => mono,
    sleep: async (ms) => {
      sleeps.push(ms);
      mono += ms;
      onSleep(sleeps.length);
    },
  };
}

const minute = 60_000;

test('truncate, then write in pieces: only the complete new version is ever trusted', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'p.yaml');
  const v1 = policy('old');
  const v2 = `${policy('new-a')}---\n${policy('new-b')}`;
  writeFileSync(file, v1);
  const limits: FileReadLimits = { maxFileBytes: 1 << 20, settleMs: minute, settleWaitMs: 0 };
  // A minute later the old version is quiet: trusted.
  t.deepEqual((await readManifestFiles([file], limits, fakeClock(2 * minute))).files.map((f) => f.text), [v1]);

  // The writer truncates: read at once, the empty file is not trusted (and not waited for: settleWaitMs 0).
  truncateSync(file, 0);
  let r = await readManifestFiles([file], limits, fakeClock(0));
  t.deepEqual(r.files, []);
  t.deepEqual(issues(r), [[file, 'unsettled', 'error']]);
  // First piece, cut at the document boundary (valid YAML on its own): still not trusted.
  appendFileSync(file, v2.slice(0, v2.indexOf('---')));
  r = await readManifestFiles([file], limits, fakeClock(0));
  t.deepEqual(issues(r), [[file, 'unsettled', 'error']]);

  // With waiting allowed, the reader waits while the writer adds the remaining pieces during its sleeps,
  // and trusts the file only once the same bytes were seen a quiet time apart.
  const rest = v2.slice(v2.indexOf('---'));
  const pieces = [rest.slice(0, 40), rest.slice(40, 90), rest.slice(90)];
  const clock = fakeClock(0, (n) => {
    const piece = pieces[n - 1];
    if (piece !== undefined) appendFileSync(file, piece);
  });
  r = await readManifestFiles([file], { ...limits, settleWaitMs: 30 * minute }, clock);
  t.deepEqual(r.issues, []);
  t.deepEqual(r.files.map((f) => f.text), [v2]);
  t.true(clock.sleeps.length > pieces.length, 'trusted only after a read that followed the last piece');
});

test('a file that keeps changing is reported as unsettled once the wait is over', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'busy.yaml');
  writeFileSync(file, policy('busy'));
  const clock = fakeClock(0, (n) => appendFileSync(file, `# ${n}\n`));
  const r = await readManifestFiles([file], { maxFileBytes: 1 << 20, settleMs: minute, settleWaitMs: 10 * minute }, clock);
  t.deepEqual(r.files, []);
  t.deepEqual(issues(r), [[file, 'unsettled', 'error']]);
  t.regex(r.issues[0]?.message ?? '', /still changing/);
});

test('an mtime in the future (clock skew) never defers a file for good: two equal reads a quiet time apart', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'future.yaml');
  writeFileSync(file, policy('f'));
  const tomorrow = new Date(Date.now() + 24 * 3600_000);
  utimesSync(file, tomorrow, tomorrow);
  const clock = fakeClock(0);
  const r = await readManifestFiles([file], { maxFileBytes: 1 << 20, settleMs: minute, settleWaitMs: 5 * minute }, clock);
  t.deepEqual(r.files.map((f) => f.file), [file]);
  t.deepEqual(clock.sleeps, [minute]);
});

test('settleVerdict: a change during the read is never settled, however old the mtime', (t) => {
  const sig = { dev: 1n, ino: 2n, size: 10n, mtimeNs: 1_000_000_000n, ctimeNs: 1_000_000_000n };
  const wallNow = 1_000_000; // far after the mtime
  t.true(settleVerdict(sig, sig, 'h', undefined, 300, wallNow, 0).settled);
  t.false(settleVerdict(sig, { ...sig, size: 11n }, 'h', undefined, 300, wallNow, 0).settled);
  t.false(settleVerdict(sig, { ...sig, ino: 3n }, 'h', undefined, 300, wallNow, 0).settled);
  t.false(settleVerdict(sig, { ...sig, ctimeNs: 1_000_000_001n }, 'h', undefined, 300, wallNow, 0).settled);
  // young: 100 ms old with 300 ms quiet time -> wait the remaining 200 ms
  const young = settleVerdict(sig, sig, 'h', undefined, 300, 1100, 0);
  t.deepEqual([young.settled, young.waitMs], [false, 200]);
  // same signature but other bytes than the previous read: not settled by the two-reads rule
  t.false(settleVerdict(sig, sig, 'other', { sig, hash: 'h', atMono: 0 }, 300, 1100, 500).settled);
  t.true(settleVerdict(sig, sig, 'h', { sig, hash: 'h', atMono: 0 }, 300, 1100, 500).settled);
});

test('the CLI loader: an empty file or one with only comments is a warning; a FIFO in the directory does not block', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a.yaml'), policy('a'));
  writeFileSync(join(dir, 'empty.yaml'), '');
  writeFileSync(join(dir, 'comments.yaml'), '# nothing here\n---\n');
  execFileSync('mkfifo', [join(dir, 'fifo.yml')]);
  const r = await loadManifestPaths([dir], quiet);
  t.deepEqual(r.policies.map((p) => p.name), ['a']);
  t.deepEqual(r.problems.map((p) => [p.severity, p.code, p.pos.file]).sort(), [
    ['warning', 'load/empty-file', join(dir, 'comments.yaml')],
    ['warning', 'load/empty-file', join(dir, 'empty.yaml')],
    ['warning', 'load/not-regular', join(dir, 'fifo.yml')],
  ]);
});

test('limits from the config: maxFileBytes and the quiet time (debounceMs); the in-read wait is capped', (t) => {
  t.deepEqual(fileReadLimits(parseConfig('maxFileBytes: 1000\ndebounceMs: 50\n', '/c.yaml')), { maxFileBytes: 1000, settleMs: 50, settleWaitMs: 1000 });
  t.deepEqual(fileReadLimits(parseConfig('', '/c.yaml')), { maxFileBytes: DEFAULT_MAX_FILE_BYTES, settleMs: 300, settleWaitMs: 1200 });
  t.is(fileReadLimits({ debounceMs: 60_000 }).settleWaitMs, 5000);
  const err = t.throws(() => parseConfig('maxFileBytes: 0\n', '/c.yaml'), { instanceOf: InputError });
  t.deepEqual(err?.problems.map((p) => [p.field, p.pos.line]), [['maxFileBytes', 1]]);
});
