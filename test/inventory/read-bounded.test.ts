// readBounded is the one reader of files nodewall did not write itself; config
// and kubeconfig go through it too, so a FIFO, /dev/zero or a huge file named
// there can neither hang nor exhaust the agent or the CLI.

import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/api/problem.js';
import { readAgentConfig } from '../../src/agent/read-config.js';
import { loadConfig, maxConfigBytes, readConfigText } from '../../src/inventory/config.js';
import { BoundedReadError, readBounded } from '../../src/inventory/read-bounded.js';
import { KubernetesSource } from '../../src/inventory/sources/kubernetes.js';
import { runCli } from '../helpers/run-cli.js';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nwt-read-bounded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function failure(t: ExecutionContext, p: Promise<unknown>): Promise<BoundedReadError> {
  const err = await t.throwsAsync(p, { instanceOf: BoundedReadError });
  return err!;
}

test('reads a regular file, with the fstat before and after', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a'), 'hello');
  const r = await readBounded(join(dir, 'a'), 5);
  t.is(r.bytes.toString(), 'hello');
  t.is(r.before.size, 5n);
  t.is(r.after.ino, r.before.ino);
});

// Serial: Buffer.allocUnsafe is replaced for the whole worker meanwhile; a concurrent test's reads would land in `asked`.
test.serial('a small file under a large limit is read into small buffers (no 1 MiB buffer per read: V8 counts them against its heap)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'small'), 'x'.repeat(300));
  writeFileSync(join(dir, 'big'), 'y'.repeat(3 * 1024 * 1024 + 5));
  const asked: number[] = [];
  const real = Buffer.allocUnsafe;
  Buffer.allocUnsafe = (size: number) => {
    asked.push(size);
    return real(size);
  };
  try {
    const r = await readBounded(join(dir, 'small'), 64 * 1024 * 1024);
    t.is(r.bytes.toString(), 'x'.repeat(300));
    // Every buffer from Node's shared pool (below half of Buffer.poolSize).
    t.true(asked.length > 0);
    t.true(asked.every((n) => n < Buffer.poolSize / 2), `asked for ${asked.join(', ')} bytes`);
    asked.length = 0;
    // A file bigger than one chunk is still read whole, in chunks of at most 1 MiB.
    const b = await readBounded(join(dir, 'big'), 64 * 1024 * 1024);
    t.is(b.bytes.length, 3 * 1024 * 1024 + 5);
    t.true(b.bytes.every((c) => c === 0x79));
    // (Buffer.concat's result is the one allocation of the whole size.)
    t.true(asked.filter((n) => n !== b.bytes.length).every((n) => n <= 1024 * 1024), `asked for ${asked.join(', ')} bytes`);
  } finally {
    Buffer.allocUnsafe = real;
  }
});

// Serial: replaces Buffer.allocUnsafe too.
test.serial('a file whose fstat size lies (procfs: 0) is read whole, and never more than limit + 1 bytes of it', async (t) => {
  // /proc/PID/environ: size 0 in fstat, a content fixed at exec (here > 20 KB: many reads past the first).
  const sleeper = spawn('sleep', ['60'], { env: { NWT_BIG: 'e'.repeat(20_000), PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: 'ignore' });
  t.teardown(() => sleeper.kill());
  await new Promise<void>((r) => sleeper.once('spawn', () => r()));
  const file = `/proc/${sleeper.pid}/environ`;
  // exec may not have replaced the environment yet: wait until the file shows the one given.
  for (let i = 0; i < 1000 && !readFileSync(file).includes('NWT_BIG='); i++) await new Promise((r) => setTimeout(r, 10));
  const whole = readFileSync(file);
  t.true(whole.length > 20_000);
  const r = await readBounded(file, 1024 * 1024);
  t.is(r.before.size, 0n);
  t.true(r.bytes.equals(whole));
  // Exactly at the limit: read; one byte less: refused, and no more than limit + 1 bytes asked for.
  t.true((await readBounded(file, whole.length)).bytes.equals(whole));
  const asked: number[] = [];
  const real = Buffer.allocUnsafe;
  Buffer.allocUnsafe = (size: number) => {
    asked.push(size);
    return real(size);
  };
  let err: BoundedReadError | undefined;
  try {
    err = await failure(t, readBounded(file, whole.length - 1));
  } finally {
    Buffer.allocUnsafe = real;
  }
  t.is(err.kind, 'too-large');
  t.is(err.size, undefined);
  t.regex(err.message, /grew past/);
  t.true(asked.reduce((a, b) => a + b, 0) <= whole.length, `asked for ${asked.join(', ')} bytes`);
});

test('missing, FIFO, /dev/zero (directly and through a symlink), directory, over the limit: typed failures, no hang', async (t) => {
  const dir = tempDir(t);
  t.is((await failure(t, readBounded(join(dir, 'nope'), 10))).kind, 'missing');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  const fifo = await failure(t, readBounded(join(dir, 'fifo'), 10));
  t.is(fifo.kind, 'not-regular');
  t.is(fifo.fileType, 'FIFO');
  t.is((await failure(t, readBounded('/dev/zero', 10))).fileType, 'character device');
  symlinkSync('/dev/zero', join(dir, 'zero'));
  t.is((await failure(t, readBounded(join(dir, 'zero'), 10))).kind, 'not-regular');
  t.is((await failure(t, readBounded(dir, 10))).fileType, 'directory');
  writeFileSync(join(dir, 'big'), 'x'.repeat(11));
  const big = await failure(t, readBounded(join(dir, 'big'), 10));
  t.is(big.kind, 'too-large');
  t.is(big.size, 11n);
  t.regex(big.message, /11 bytes, over the limit of 10/);
});

test('noFollow refuses a symlink at the path itself', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a'), 'x');
  symlinkSync('a', join(dir, 'link'));
  t.is((await readBounded(join(dir, 'link'), 10)).bytes.toString(), 'x');
  t.is((await failure(t, readBounded(join(dir, 'link'), 10, { noFollow: true }))).kind, 'symlink');
});

test('a config file that is a FIFO, /dev/zero or huge is a config/read InputError naming the file, never a hang', async (t) => {
  const dir = tempDir(t);
  execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
  symlinkSync('/dev/zero', join(dir, 'zero.yaml'));
  writeFileSync(join(dir, 'huge.yaml'), `# ${'x'.repeat(maxConfigBytes)}\n`);
  for (const [name, why] of [['fifo.yaml', /not a regular file \(FIFO\): point --config at a regular YAML file/], ['zero.yaml', /character device/], ['huge.yaml', /over the limit.*not a nodewall config/]] as const) {
    const file = join(dir, name);
    for (const read of [() => loadConfig(file), () => readAgentConfig(file), () => readConfigText(file)]) {
      const err = await t.throwsAsync(read(), { instanceOf: InputError });
      t.true(err!.message.startsWith(`${file}: cannot read config:`), err!.message);
      t.regex(err!.message, why);
      t.is(err!.problems[0]?.code, 'config/read');
    }
  }
  // The default config path may be absent; a named one may not.
  t.is(await readConfigText(join(dir, 'absent.yaml'), true), undefined);
  await t.throwsAsync(readConfigText(join(dir, 'absent.yaml')), { instanceOf: InputError });
});

test('nodewall validate --config FIFO returns with an error naming the file', async (t) => {
  const dir = tempDir(t);
  execFileSync('mkfifo', [join(dir, 'nodewall.yaml')]);
  const r = await runCli(['validate', '--config', join(dir, 'nodewall.yaml')]);
  t.not(r.code, 0);
  t.true(r.stderr.includes(join(dir, 'nodewall.yaml')), r.stderr);
  t.regex(r.stderr, /not a regular file \(FIFO\)/);
});

test('a kubeconfig that is a FIFO fails the source start with a clear error instead of blocking the process', async (t) => {
  const dir = tempDir(t);
  execFileSync('mkfifo', [join(dir, 'kubeconfig')]);
  const source = new KubernetesSource({ kubeconfig: join(dir, 'kubeconfig'), stateDir: dir, node: { name: 'node-a', labels: {}, labelFilter: 'cilium' } });
  t.teardown(() => source.stop());
  const err = await t.throwsAsync(source.start(() => undefined));
  t.regex(err!.message, /cannot load .*kubeconfig.*not a regular file \(FIFO\)/);
});
