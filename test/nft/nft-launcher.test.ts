// The nft launcher (src/nft/nft-launcher.ts): framing that hostile bytes cannot break, the same results as a
// direct spawn, fallback when the launcher dies/hangs/answers garbage, timeouts, and no processes left behind.
// Fake programs stand in for nft here (no kernel); test/e2e/nft-launcher.test.ts runs the real nft.

import { execFile, spawn } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, linkSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { NftError, runNft, spawnNft, type NftExecOptions, type NftOutput } from '../../src/nft/nft-exec.js';
import { AnswerLines, NftLauncher, NftRerunError, NftStillRunningError, maxSyncScriptChars, waitGroupGone, commandLine, installedNftLauncher, liveGroupMembers, mayCommit, parseReply, scriptChunks, shellQuote, statusToExit, syncNftLauncher, tooLong, type NftLauncherOptions } from '../../src/nft/nft-launcher.js';
import { runningPid as alive } from '../helpers/proc.js';

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-launcher-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A shell script standing in for nft (or for the launcher shell). */
function program(t: ExecutionContext, body: string, name = 'nft'): string {
  const path = join(scratch(t), name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function launcher(t: ExecutionContext, opts: NftLauncherOptions = {}): NftLauncher {
  // One shell unless a test asks for more: the tests below follow that one shell through its failures.
  const l = new NftLauncher({ parentDir: scratch(t), backoffMs: { first: 10, max: 20 }, shells: 1, ...opts });
  t.teardown(() => l.close());
  return l;
}

type Outcome = { ok: NftOutput } | { error: { message: string; exitCode: number | null; signal: string | null; failure: string; stderr: string; line: number | undefined } };

async function outcome(p: Promise<NftOutput>): Promise<Outcome> {
  try {
    return { ok: await p };
  } catch (e) {
    if (!(e instanceof NftError)) throw e;
    return { error: { message: e.message, exitCode: e.exitCode, signal: e.signal, failure: e.failure, stderr: e.stderr, line: e.line } };
  }
}

/** The launcher and a direct spawn give the same outcome for this command. */
async function same(t: ExecutionContext, l: NftLauncher, nftPath: string, args: readonly string[], opts: NftExecOptions = {}): Promise<Outcome> {
  const before = l.stats.viaLauncher;
  const via = await outcome(l.run(nftPath, args, opts));
  t.is(l.stats.viaLauncher, before + 1, 'the launcher ran it');
  const direct = await outcome(spawnNft(nftPath, args, opts));
  t.deepEqual(via, direct);
  return via;
}


/** Waits (up to 30 s) for `cond`; no timing is asserted. */
async function eventually(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

async function readPid(file: string): Promise<number> {
  for (let i = 0; i < 600; i++) {
    const n = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : Number.NaN;
    if (Number.isInteger(n) && n > 0) return n;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no pid in ${file}`);
}

// --- framing ---------------------------------------------------------------------------------------------

test('shellQuote: the shell reads back exactly the string, whatever its bytes (fast-check)', async (t) => {
  const sh = (s: string) => new Promise<string>((resolve, reject) =>
    execFile('/bin/sh', ['-c', `printf %s ${shellQuote(s)}`], { encoding: 'utf8' }, (err, out) => (err === null ? resolve(out) : reject(err))));
  // Every ASCII byte but NUL (no argument can hold one), shell-special ones often, and some non-ASCII.
  const unit = fc.oneof(fc.integer({ min: 1, max: 127 }).map((c) => String.fromCharCode(c)), fc.constantFrom("'", '\\', '"', '$', '`', '\n', '%', 'é', '\u{1F525}'));
  const noNul = fc.string({ unit, maxLength: 40 });
  await fc.assert(fc.asyncProperty(noNul, async (s) => (await sh(s)) === s), { numRuns: 60 });
  for (const s of ["'", "'\\''", '$(touch /tmp/nodewall-pwned)', '`id`', '\n; echo R 1 0\n', '"$HOME"']) t.is(await sh(s), s);
});

test('a command line is one shell command whatever the arguments hold', (t) => {
  const line = commandLine(7, ['/usr/sbin/nft', "it's\nR 7 0", '-f'], '/tmp/d', '/tmp/d/in');
  t.true(line.endsWith('fi\n'));
  t.regex(line, /'it'\\''s\nR 7 0'/);
  t.regex(line, /<'\/tmp\/d\/in' >'\/tmp\/d\/out' 2>'\/tmp\/d\/err'/);
  t.regex(commandLine(8, ['nft', 'list', 'tables'], '/tmp/d', undefined), / <\/dev\/null /);
});

test('parseReply accepts only the three answers', (t) => {
  t.deepEqual(parseReply('S 12 345'), { kind: 'S', id: 12, pid: 345 });
  t.deepEqual(parseReply('R 12 0'), { kind: 'R', id: 12, status: 0 });
  t.deepEqual(parseReply('E 3'), { kind: 'E', id: 3 });
  for (const bad of ['', 'R 12', 'R 12 0 ', ' R 12 0', 'R x 0', 'R 12 1000', 'S 1', 'S 1 2 3', 'E', 'E 1 2', 'r 1 0', 'R 1 0\r', 'R 99999999999999999 0', 'table inet x {']) {
    t.is(parseReply(bad), undefined, bad);
  }
});

test('AnswerLines: any split of the answer stream gives the same lines (fast-check); a line too long is flagged', (t) => {
  fc.assert(fc.property(
    fc.array(fc.constantFrom('S 1 42', 'R 1 0', 'E 2', 'garbage'), { maxLength: 8 }),
    fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 10 }),
    (lines, cuts) => {
      const text = lines.map((l) => `${l}\n`).join('');
      const points = [...new Set(cuts.filter((c) => c <= text.length))].sort((a, b) => a - b);
      const a = new AnswerLines();
      const got: string[] = [];
      let at = 0;
      for (const p of [...points, text.length]) {
        got.push(...a.push(text.slice(at, p)));
        at = p;
      }
      return JSON.stringify(got) === JSON.stringify(lines) && a.rest === '';
    },
  ));
  const a = new AnswerLines();
  t.deepEqual(a.push('R 1 '), []);
  t.deepEqual(a.push('0\nS 2'), ['R 1 0']);
  t.is(a.rest, 'S 2');
  t.is(a.push('x'.repeat(300)), tooLong);
});

test('statusToExit: 128+N is signal N, as a direct spawn reports it', (t) => {
  t.deepEqual(statusToExit(0), { code: 0, signal: null });
  t.deepEqual(statusToExit(1), { code: 1, signal: null });
  t.deepEqual(statusToExit(137), { code: null, signal: 'SIGKILL' });
  t.deepEqual(statusToExit(143), { code: null, signal: 'SIGTERM' });
  t.deepEqual(statusToExit(128), { code: 128, signal: null });
  t.deepEqual(statusToExit(255), { code: 255, signal: null });
});

// --- same results as a direct spawn ---------------------------------------------------------------------

test('hostile output (fake answers, NUL, invalid UTF-8, no final newline) comes back byte for byte as from a direct spawn', async (t) => {
  const l = launcher(t);
  const nft = program(t, String.raw`printf 'R 1 0\nS 2 3\nE 1\n\000\377\376 end'; printf 'R 1 0\nError: fake\n\000' >&2; cat`);
  const r = await same(t, l, nft, ['-f', '-'], { stdin: "S 1 1\nR 1 0\n'\"$(id)\0\u00ff" });
  t.true('ok' in r);
  if ('ok' in r) {
    t.true(r.ok.stdout.startsWith('R 1 0\nS 2 3\nE 1\n\0'));
    t.true(r.ok.stdout.endsWith("S 1 1\nR 1 0\n'\"$(id)\0\u00ff"));
  }
  t.is(l.stats.fallbacks, 0);
});

test('exit status, signal, stderr and the script line of an error are those of a direct spawn', async (t) => {
  const l = launcher(t);
  const failing = program(t, `cat >/dev/null; echo '/dev/stdin:2:1-5: Error: syntax error' >&2; exit 1`);
  const r = await same(t, l, failing, ['-f', '-'], { stdin: 'table inet x {}\nbogus\n' });
  t.true('error' in r && r.error.line === 2 && r.error.exitCode === 1 && /script line 2: bogus/.test(r.error.message));
  const killed = program(t, 'kill -TERM $$');
  const k = await same(t, l, killed, ['list', 'tables']);
  t.true('error' in k && k.error.signal === 'SIGTERM' && k.error.exitCode === null);
  const status = program(t, 'exit 3');
  await same(t, l, status, ['-c', '-f', '-'], { stdin: '' });
  const quiet = program(t, 'exit 0');
  t.deepEqual(await same(t, l, quiet, ['list', 'ruleset']), { ok: { stdout: '', stderr: '' } });
  t.is(l.stats.fallbacks, 0);
});

test('huge output and a huge script (partial reads on both sides) are carried whole', async (t) => {
  const l = launcher(t);
  // Reads its input in odd-sized pieces and writes it back twice, 24 MB each way.
  const echo = program(t, 'dd bs=4093 2>/dev/null | tee /dev/stderr');
  const script = Array.from({ length: 300_000 }, (_, i) => `add element inet nodewall s { 198.51.100.${i % 256} } # ${i}`).join('\n');
  const r = await outcome(l.run(echo, ['-f', '-'], { stdin: script }));
  t.deepEqual(r, { ok: { stdout: script, stderr: script } });
  t.is(l.stats.viaLauncher, 1);
});

test('runaway output: a program stopped by the output limit (SIGXFSZ from the launcher\'s ulimit) is an "output" failure, as when a direct spawn kills it', async (t) => {
  const l = launcher(t);
  const r = await outcome(l.run(program(t, 'echo some; kill -XFSZ $$'), ['list', 'ruleset']));
  t.true('error' in r && r.error.failure === 'output', JSON.stringify(r));
  if ('error' in r) t.regex(r.error.message, /printed more than 256 MB and was killed; nothing was changed\. Is nft\.path really nft\?/);
});

test('a missing or non-executable program fails as from a direct spawn (spawn error with its hint)', async (t) => {
  const l = launcher(t);
  const r = await same(t, l, '/nonexistent/nft', ['list', 'tables']);
  t.true('error' in r && r.error.failure === 'spawn');
  const dir = scratch(t);
  const notExec = join(dir, 'nft');
  writeFileSync(notExec, '#!/bin/sh\n');
  chmodSync(notExec, 0o644);
  const e = await outcome(l.run(notExec, ['list', 'tables']));
  t.deepEqual(e, await outcome(spawnNft(notExec, ['list', 'tables'])));
  // A NUL in an argument never reaches the shell.
  const n = await outcome(l.run('/usr/sbin/nft', ['list', 'table', 'inet', 'a\0b']));
  t.deepEqual(n, await outcome(spawnNft('/usr/sbin/nft', ['list', 'table', 'inet', 'a\0b'])));
});

test('a busy launcher sends a concurrent call to a direct spawn: calls never wait for each other', async (t) => {
  const l = launcher(t);
  const dir = scratch(t);
  const gate = join(dir, 'gate');
  const slow = program(t, `while [ ! -e '${gate}' ]; do sleep 0.05; done; echo slow`);
  const fast = program(t, 'echo fast');
  const first = l.run(slow, ['list', 'tables']);
  // The second call finishes while the first still waits for the gate (which only the test opens).
  t.deepEqual(await l.run(fast, ['list', 'tables']), { stdout: 'fast\n', stderr: '' });
  t.is(l.stats.direct, 1);
  writeFileSync(gate, '');
  t.deepEqual(await first, { stdout: 'slow\n', stderr: '' });
  t.is(l.stats.viaLauncher, 1);
});

test('two launcher shells (the default) take two concurrent calls; a third one, with both busy, spawns directly', async (t) => {
  const l = launcher(t, { shells: 2 });
  const dir = scratch(t);
  const gate = join(dir, 'gate');
  const slow = program(t, `while [ ! -e '${gate}' ]; do sleep 0.05; done; echo slow`);
  const first = l.run(slow, ['list', 'tables']);
  const second = l.run(slow, ['list', 'tables']);
  t.deepEqual(await l.run(program(t, 'echo fast'), ['list', 'tables']), { stdout: 'fast\n', stderr: '' });
  t.is(l.stats.direct, 1);
  writeFileSync(gate, '');
  t.deepEqual(await Promise.all([first, second]), [{ stdout: 'slow\n', stderr: '' }, { stdout: 'slow\n', stderr: '' }]);
  t.is(l.stats.viaLauncher, 2);
  t.is(l.stats.starts, 2);
});

// --- timeouts and failures ------------------------------------------------------------------------------

test('a hung nft is killed at the timeout with the launcher, reported as a direct spawn would, and a new launcher takes the next call', async (t) => {
  const l = launcher(t);
  const dir = scratch(t);
  const pidFile = join(dir, 'pid');
  const hung = program(t, `echo $$ > '${pidFile}'; echo 'partial complaint' >&2; exec sleep 1000`);
  const firstShell = l.pid;
  t.truthy(firstShell);
  const via = await outcome(l.run(hung, ['-f', '-'], { stdin: 'flush ruleset\n', timeoutMs: 1500 }));
  const nftPid = await readPid(pidFile);
  t.false(alive(nftPid), 'the hung program is gone when the timeout is reported (a direct spawn reports at its exit)');
  t.true('error' in via && via.error.failure === 'timeout' && via.error.signal === 'SIGKILL');
  if ('error' in via) {
    t.regex(via.error.message, /timed out after 1\.5 s and was killed \(SIGKILL\); an nft transaction is all or nothing/);
    t.is(via.error.message, (await outcome(spawnNft(program(t, "echo 'partial complaint' >&2; exec sleep 1000"), ['-f', '-'], { stdin: 'flush ruleset\n', timeoutMs: 1500 })) as { error: { message: string } }).error.message.replace(/\(\/[^)]*\)/, `(${hung})`));
  }
  t.true(await eventually(() => firstShell === undefined || !alive(firstShell)), 'the launcher shell is gone');
  t.deepEqual(await l.run(program(t, 'echo next'), ['list', 'tables']), { stdout: 'next\n', stderr: '' });
  t.is(l.stats.starts, 2);
  t.is(l.stats.failures, 0, 'a timeout is nft hanging, not the launcher failing');
});

test('launcher SIGKILLed mid-command: the started nft is killed, the command runs again directly, its result and its error are kept; a new launcher follows', async (t) => {
  const l = launcher(t);
  const dir = scratch(t);
  const log = join(dir, 'log');
  const gate = join(dir, 'gate');
  // Records each start; the launcher's run waits for the gate, which opens only after the launcher was killed.
  const nft = program(t, `echo "start $$" >> '${log}'; cat > '${dir}/script.'$$; while [ ! -e '${gate}' ]; do sleep 0.05; done; echo "end $$" >> '${log}'; echo out; echo 'Error: it failed' >&2; exit 1`);
  const shell = l.pid!;
  const p = outcome(l.run(nft, ['-f', '-'], { stdin: 'table inet x {}\n' }));
  t.true(await eventually(() => existsSync(log)));
  process.kill(shell, 'SIGKILL');
  // The fallback runs only once the first program is gone; then the gate may open.
  t.true(await eventually(() => readFileSync(log, 'utf8').split('\n').filter((x) => x.startsWith('start')).length === 2));
  writeFileSync(gate, '');
  const r = await p;
  t.true('error' in r && r.error.exitCode === 1 && /it failed/.test(r.error.message), 'the error of the direct run is reported');
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  const starts = lines.filter((x) => x.startsWith('start ')).map((x) => x.slice(6));
  const ends = lines.filter((x) => x.startsWith('end ')).map((x) => x.slice(4));
  t.deepEqual(ends, [starts[1]], 'only the direct (second) run finished; the one the launcher started was killed');
  t.is(l.stats.fallbacks, 1);
  t.is(l.stats.failures, 1);
  // After the backoff (10 ms here) a new launcher runs the next call.
  await new Promise((r) => setTimeout(r, 50));
  const ok = await l.run(program(t, 'echo fine'), ['list', 'tables']);
  t.deepEqual(ok, { stdout: 'fine\n', stderr: '' });
  t.is(l.stats.starts, 2);
  t.true(l.stats.viaLauncher >= 1);
});

test('launcher SIGKILLed mid-command of a successful script: success comes from the direct rerun, never from the killed one', async (t) => {
  const l = launcher(t);
  const dir = scratch(t);
  const started = join(dir, 'started');
  const gate = join(dir, 'gate');
  // The gate opens only after the launcher was killed, so the launcher's run cannot have finished.
  const nft = program(t, `cat > /dev/null; echo $$ >> '${started}'; while [ ! -e '${gate}' ]; do sleep 0.05; done; echo "loaded by $$"`);
  const shell = l.pid!;
  const p = l.run(nft, ['-f', '-'], { stdin: 'x\n' });
  t.true(await eventually(() => existsSync(started)));
  process.kill(shell, 'SIGKILL');
  t.true(await eventually(() => readFileSync(started, 'utf8').trim().split('\n').length === 2));
  writeFileSync(gate, '');
  const second = readFileSync(started, 'utf8').trim().split('\n')[1];
  t.deepEqual(await p, { stdout: `loaded by ${second}\n`, stderr: '' });
  t.is(l.stats.fallbacks, 1);
});

test('a launcher that answers garbage, or answers for another command, is replaced; the command runs directly', async (t) => {
  for (const answer of ['hello', 'R 999 0', 'R 1 0', 'S 1 x']) {
    // Reads the three setup lines, then answers the command with `answer`.
    const fakeShell = program(t, `read a; read b; read c; read d; echo '${answer}'; exec sleep 1000`, 'sh');
    const l = launcher(t, { shell: fakeShell });
    const r = await l.run(program(t, 'cat; echo done'), ['-f', '-'], { stdin: 'script\n' });
    t.deepEqual(r, { stdout: 'script\ndone\n', stderr: '' }, answer);
    t.is(l.stats.fallbacks, 1, answer);
    t.is(l.stats.failures, 1, answer);
    t.is(l.stats.viaLauncher, 0, answer);
  }
});

test('a hung launcher (no "started" answer) is replaced and the command runs directly', async (t) => {
  const fakeShell = program(t, 'exec sleep 1000', 'sh');
  const l = launcher(t, { shell: fakeShell, startAckMs: 300 });
  const shellPid = l.pid!;
  const r = await l.run(program(t, 'echo ran'), ['list', 'tables'], { timeoutMs: 60_000 });
  t.deepEqual(r, { stdout: 'ran\n', stderr: '' });
  t.is(l.stats.failures, 1);
  t.true(await eventually(() => !alive(shellPid)), 'the hung launcher was killed');
});

test('a launcher that cannot start (missing shell) leaves every call to direct spawns, with backoff', async (t) => {
  const l = launcher(t, { shell: '/nonexistent/sh', backoffMs: { first: 60_000, max: 60_000 } });
  const echo = program(t, 'echo direct');
  t.deepEqual(await l.run(echo, ['list', 'tables']), { stdout: 'direct\n', stderr: '' });
  t.deepEqual(await l.run(echo, ['list', 'tables']), { stdout: 'direct\n', stderr: '' });
  t.is(l.stats.viaLauncher, 0);
  t.is(l.stats.failures, 1, 'one failure, then the backoff holds');
  t.is(l.stats.starts, 1);
});

test('a vanished private directory: the command runs directly and a new launcher gets a new directory', async (t) => {
  const l = launcher(t);
  const dir = l.dir!;
  rmSync(dir, { recursive: true, force: true });
  const echo = program(t, 'cat');
  t.deepEqual(await l.run(echo, ['-f', '-'], { stdin: 'abc' }), { stdout: 'abc', stderr: '' });
  t.is(l.stats.fallbacks, 1);
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(await l.run(echo, ['-f', '-'], { stdin: 'def' }), { stdout: 'def', stderr: '' });
  t.not(l.dir, dir);
  t.is(l.stats.viaLauncher, 1);
});

// --- scripts written asynchronously; the truth after a launcher failure -------------------------------------

test('scriptChunks: the pieces join to the script and encode to its exact UTF-8 bytes, surrogate pairs never split (fast-check)', (t) => {
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom('a', '\n', 'é', '😀', '\ud800', '\udc00', '𝄞'), maxLength: 200 }), fc.integer({ min: 1, max: 9 }), (text, size) => {
    const pieces = [...scriptChunks(text, size)];
    if (pieces.join('') !== text) return false;
    if (pieces.some((p) => p.length === 0 || p.length > Math.max(size, 2))) return false;
    return Buffer.concat(pieces.map((p) => Buffer.from(p, 'utf8'))).equals(Buffer.from(text, 'utf8'));
  }));
  t.deepEqual([...scriptChunks('')], []);
  t.pass();
});

// Serial (these run first): their writes would otherwise share the thread pool with the short timeouts of other tests.
test.serial('a script is written asynchronously: run() returns before the script file holds it; the program gets it whole', async (t) => {
  const l = launcher(t);
  const dir = l.dir!;
  const script = `${'add element inet nodewall s { 198.51.100.1 }\n'.repeat(50_000)}😀\n`;
  const p = l.run(program(t, 'wc -c'), ['-f', '-'], { stdin: script });
  // A synchronous write would have written all 2 MB before run() returned.
  const size = existsSync(join(dir, 'in')) ? readFileSync(join(dir, 'in')).length : 0;
  t.true(size < Buffer.byteLength(script), `${size} bytes written when run() returned`);
  t.deepEqual(await p, { stdout: `${Buffer.byteLength(script)}\n`, stderr: '' });
  t.is(l.stats.viaLauncher, 1);
  t.false(existsSync(join(dir, 'in')), 'the script file is removed');
});

test.serial('close() while the script is being written: the command is never sent to the launcher; it runs once, directly', async (t) => {
  const l = launcher(t);
  const log = join(scratch(t), 'log');
  const nft = program(t, `echo run >> '${log}'; wc -c`);
  const script = 'x'.repeat(4 << 20);
  const p = l.run(nft, ['-f', '-'], { stdin: script });
  l.close();
  t.deepEqual(await p, { stdout: `${script.length}\n`, stderr: '' });
  t.deepEqual(readFileSync(log, 'utf8'), 'run\n');
  t.is(l.stats.viaLauncher, 0);
});

test('mayCommit: loads and edits may change the ruleset; checks, listings and the monitor do not', (t) => {
  t.true(mayCommit(['-f', '-']));
  t.true(mayCommit(['delete', 'table', 'inet', 'nodewall']));
  t.false(mayCommit(['-c', '-f', '-']));
  t.false(mayCommit(['-t', 'list', 'table', 'inet', 'nodewall']));
  t.false(mayCommit(['-j', 'list', 'ruleset']));
  t.false(mayCommit(['monitor']));
});

test('liveGroupMembers lists the live processes of a group, not its zombies; empty once it is killed', async (t) => {
  const child = spawn('/bin/sh', ['-c', 'sleep 1000 & sleep 1000 & wait'], { detached: true, stdio: 'ignore' });
  const pgid = child.pid!;
  t.teardown(() => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  t.true(await eventually(() => liveGroupMembers(pgid).length === 3), 'the shell and its two sleeps');
  t.false(liveGroupMembers(pgid).includes(process.pid));
  process.kill(-pgid, 'SIGKILL');
  t.true(await eventually(() => liveGroupMembers(pgid).length === 0));
});

/**
 * A launcher shell (the real /bin/sh) whose answer channel dies at its first "R" answer: the launcher fails
 * after nft has finished and before it could report, as when the shell is killed in between.
 */
function dyingAtReport(t: ExecutionContext): string {
  // The pipeline runs in the background so that this shell can close its copy of the answer pipe: the
  // filter's exit must close it (explicit stdin: a background list's stdin is /dev/null otherwise).
  return program(t, `exec 6<&0; /bin/sh -s <&6 | { while IFS= read -r l; do case "$l" in R*) exit 0;; esac; printf '%s\\n' "$l"; done; } & exec >/dev/null 6<&-; wait`, 'sh');
}

test('a launcher that dies after nft finished: nft\'s own result is reported from its files, never a second run (a delta run twice fails on "no such element")', async (t) => {
  const dir = scratch(t);
  const log = join(dir, 'log');
  // Like an element delta: the first run commits, a second one fails on the elements the first removed.
  const delta = program(t, `cat >/dev/null; echo run >> '${log}'; if [ -e '${dir}/committed' ]; then echo 'Error: Could not process rule: No such file or directory' >&2; exit 1; fi; : > '${dir}/committed'; echo loaded`);
  const l = launcher(t, { shell: dyingAtReport(t) });
  t.deepEqual(await l.run(delta, ['-f', '-'], { stdin: 'delete element inet nodewall s { 192.0.2.1 }\n' }), { stdout: 'loaded\n', stderr: '' });
  t.deepEqual(readFileSync(log, 'utf8'), 'run\n', 'run once');
  t.is(l.stats.failures, 1);
  // Its failure too is its own (exit status and stderr), not a rerun's.
  const l2 = launcher(t, { shell: dyingAtReport(t) });
  const failing = program(t, `cat >/dev/null; echo run >> '${log}.2'; echo '/dev/stdin:1:1-5: Error: syntax error' >&2; exit 1`);
  const r = await outcome(l2.run(failing, ['-f', '-'], { stdin: 'bogus\n' }));
  t.true('error' in r && r.error.exitCode === 1 && r.error.line === 1 && /script line 1: bogus/.test(r.error.message), JSON.stringify(r));
  t.deepEqual(readFileSync(`${log}.2`, 'utf8'), 'run\n');
});

test('a hung launcher that started nft without announcing it: the rerun starts only once no process of its group is left', async (t) => {
  const dir = scratch(t);
  const seen = join(dir, 'seen');
  // The fake launcher starts "nft" itself (never says "started"), then hangs; its group id is its pid.
  const first = program(t, `echo $$ > '${dir}/first'; exec sleep 1000`, 'first');
  const fakeShell = program(t, `echo $$ > '${dir}/pgid'; read a; read b; read c; read d; '${first}' & exec sleep 1000`, 'sh');
  // The rerun records the live processes of the old group at its start (none may be left).
  const rerun = program(t, `pg=$(cat '${dir}/pgid'); n=0; for f in /proc/[0-9]*/stat; do set -- $(sed 's/.*) //' "$f" 2>/dev/null); [ "$1" != Z ] && [ "$3" = "$pg" ] && n=$((n+1)); done; echo $n > '${seen}'; echo ran`);
  const l = launcher(t, { shell: fakeShell, startAckMs: 300 });
  t.deepEqual(await l.run(rerun, ['-f', '-'], { stdin: 'x\n', timeoutMs: 60_000 }), { stdout: 'ran\n', stderr: '' });
  t.is(readFileSync(seen, 'utf8').trim(), '0', 'no process of the hung launcher\'s group was alive when the rerun started');
  t.false(alive(await readPid(join(dir, 'first'))), 'the unannounced nft was killed');
  t.is(l.stats.failures, 1);
});

test('launcher killed while nft runs, then the rerun fails: the error says the first run may have committed (NftRerunError); a listing\'s error does not', async (t) => {
  const dir = scratch(t);
  const gate = join(dir, 'gate');
  const started = join(dir, 'started');
  // First run: waits (killed with the launcher). Second run: fails like a delta whose elements are gone.
  const nft = program(t, `cat >/dev/null; if [ -e '${started}' ]; then echo 'Error: Could not process rule: No such file or directory' >&2; exit 1; fi; : > '${started}'; while [ ! -e '${gate}' ]; do sleep 0.05; done`);
  for (const [args, rerunError] of [[['-f', '-'], true], [['list', 'ruleset'], false]] as const) {
    rmSync(started, { force: true });
    const l = launcher(t);
    const shell = l.pid!;
    const p = l.run(nft, args, { stdin: 'x\n' }).then(() => undefined, (e: unknown) => e);
    t.true(await eventually(() => existsSync(started)));
    process.kill(shell, 'SIGKILL');
    const err = await p;
    t.true(err instanceof NftError, String(err));
    t.is(err instanceof NftRerunError, rerunError, args.join(' '));
    if (err instanceof NftRerunError) {
      t.true(err.firstRunMayHaveCommitted);
      t.regex(err.message, /No such file or directory.*second run.*may have committed/);
      t.is(err.exitCode, 1);
    }
  }
});

// --- no processes left behind ---------------------------------------------------------------------------

test('close() kills the launcher and removes its directory', async (t) => {
  const l = new NftLauncher({ parentDir: scratch(t) });
  await l.run('/bin/true', []);
  const pid = l.pid!;
  const dir = l.dir!;
  l.close();
  t.true(await eventually(() => !alive(pid)));
  t.false(existsSync(dir));
  t.deepEqual(await l.run(program(t, 'echo after'), []), { stdout: 'after\n', stderr: '' });
  t.is(l.stats.direct, 1);
});

test('close() with a command in flight: its nft is killed and the command runs again directly (it does not wait for the nft timeout)', async (t) => {
  const l = launcher(t);
  const dir = scratch(t);
  const pidFile = join(dir, 'pid');
  // The first run (the launcher's) hangs; the rerun answers.
  const nft = program(t, `if [ -e '${pidFile}' ]; then echo rerun; exit 0; fi; echo $$ > '${pidFile}'; exec sleep 1000`);
  const p = outcome(l.run(nft, ['list', 'tables'], { timeoutMs: 600_000 }));
  const first = await readPid(pidFile);
  l.close();
  const settled = await Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), 30_000))]);
  t.deepEqual(settled, { ok: { stdout: 'rerun\n', stderr: '' } });
  t.false(alive(first), 'the nft the launcher started is gone');
  t.is(l.stats.fallbacks, 1);
});

test('an owner process killed by SIGKILL mid-command leaves no launcher, no nft and no directory behind', async (t) => {
  const dir = scratch(t);
  const pidFile = join(dir, 'nft-pid');
  const hung = program(t, `echo $$ > '${pidFile}'; exec sleep 1000`);
  const mod = new URL('../../src/nft/nft-launcher.js', import.meta.url).href;
  const code = `
    const { NftLauncher } = await import(${JSON.stringify(mod)});
    const l = new NftLauncher({ parentDir: ${JSON.stringify(dir)} });
    process.stdout.write(JSON.stringify({ pid: l.pid, dir: l.dir }) + '\\n');
    await l.run(${JSON.stringify(hung)}, ['-f', '-'], { stdin: 'x', timeoutMs: 600000 });
  `;
  const owner = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => owner.kill('SIGKILL'));
  const first = await new Promise<string>((resolve) => owner.stdout.once('data', (b: Buffer) => resolve(b.toString())));
  const { pid, dir: launcherDir } = JSON.parse(first) as { pid: number; dir: string };
  const nftPid = await readPid(pidFile);
  t.true(alive(pid) && alive(nftPid) && existsSync(launcherDir));
  owner.kill('SIGKILL');
  t.true(await eventually(() => !alive(pid)), 'launcher shell gone');
  t.true(await eventually(() => !alive(nftPid)), 'nft gone');
  t.true(await eventually(() => !existsSync(launcherDir)), 'directory removed');
});

// --- the process-wide switch ----------------------------------------------------------------------------

test('syncNftLauncher routes runNft through the launcher, and back to direct spawns when switched off', async (t) => {
  t.teardown(() => syncNftLauncher(false));
  const echo = program(t, 'echo hi');
  syncNftLauncher(true);
  const l = installedNftLauncher();
  t.truthy(l);
  syncNftLauncher(true);
  t.is(installedNftLauncher(), l, 'idempotent');
  t.deepEqual(await runNft(echo, ['list', 'tables']), { stdout: 'hi\n', stderr: '' });
  t.is(l?.stats.viaLauncher, 1);
  const pid = l!.pid!;
  syncNftLauncher(false);
  t.is(installedNftLauncher(), undefined);
  t.deepEqual(await runNft(echo, ['list', 'tables']), { stdout: 'hi\n', stderr: '' });
  t.is(l?.stats.viaLauncher, 1, 'not through the closed launcher');
  t.true(await eventually(() => !alive(pid)));
});

// --- the real nft, in a throwaway namespace -------------------------------------------------------------

test('real nft through the launcher (netns): a load, a check, a listing and a rejected script give what a direct spawn gives; the rejected one changes nothing', async (t) => {
  const { throwawayNetns } = await import('./netns.js');
  const ns = await throwawayNetns(t, 'launch');
  const l = launcher(t);
  const nft = '/usr/sbin/nft';
  const good = [
    'table inet nodewall {',
    '\tset s {', '\t\ttype ipv4_addr', '\t\tflags interval', '\t\telements = { 198.51.100.0/28, 203.0.113.7 }', '\t}',
    '\tchain input {', '\t\ttype filter hook input priority 0; policy accept;', '\t\tip saddr @s tcp dport 22 accept', '\t}',
    '}', '',
  ].join('\n');
  t.deepEqual(await outcome(l.run(nft, ['-c', '-f', '-'], { netns: ns, stdin: good })), { ok: { stdout: '', stderr: '' } });
  t.deepEqual(await outcome(l.run(nft, ['list', 'tables'], { netns: ns })), { ok: { stdout: '', stderr: '' } }, 'a check commits nothing');
  await l.run(nft, ['-f', '-'], { netns: ns, stdin: good });
  const listed = await same(t, l, nft, ['list', 'table', 'inet', 'nodewall'], { netns: ns });
  t.true('ok' in listed && listed.ok.stdout.includes('198.51.100.0/28'));
  const bad = 'add element inet nodewall s { 192.0.2.1 }\nadd rule inet nodewall no_such_chain accept\n';
  const rejected = await same(t, l, nft, ['-f', '-'], { netns: ns, stdin: bad });
  t.true('error' in rejected && rejected.error.exitCode === 1 && rejected.error.line === 2, JSON.stringify(rejected));
  t.deepEqual(await outcome(l.run(nft, ['list', 'table', 'inet', 'nodewall'], { netns: ns })), listed, 'the rejected transaction changed nothing');
  t.is(l.stats.fallbacks, 0);
});

test('real nft (netns): an element delta through a launcher that dies after nft committed is reported loaded, and the kernel holds it; run a second time it would have failed', async (t) => {
  const { throwawayNetns } = await import('./netns.js');
  const ns = await throwawayNetns(t, 'ldie');
  const nft = '/usr/sbin/nft';
  await spawnNft(nft, ['-f', '-'], { netns: ns, stdin: 'table inet nodewall {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 198.51.100.1 }\n\t}\n}\n' });
  // What an element delta loads: a delete and an add in one transaction.
  const delta = 'delete element inet nodewall s { 198.51.100.1 }\nadd element inet nodewall s { 198.51.100.2 }\n';
  const l = launcher(t, { shell: dyingAtReport(t) });
  t.deepEqual(await outcome(l.run(nft, ['-f', '-'], { netns: ns, stdin: delta })), { ok: { stdout: '', stderr: '' } });
  t.is(l.stats.failures, 1, 'the launcher failed after nft ended');
  const listed = (await spawnNft(nft, ['list', 'set', 'inet', 'nodewall', 's'], { netns: ns })).stdout;
  t.regex(listed, /elements = \{ 198\.51\.100\.2 \}/);
  // The false error a second run would have reported: the element the first run deleted is gone.
  const again = await outcome(spawnNft(nft, ['-f', '-'], { netns: ns, stdin: delta }));
  t.true('error' in again && /No such file or directory/.test(again.error.message), JSON.stringify(again));
});

// --- session 16: a busy event loop, a group that does not go away, a stuck script write ------------------

/** Blocks this process's event loop (a synchronous busy loop) until `done()` or 60 s; true when `done()`. */
function busyUntil(done: () => boolean): boolean {
  const end = performance.now() + 60_000;
  while (performance.now() < end) if (done()) return true;
  return false;
}

test.serial('a command that finished while the event loop was blocked past its timeout is reported as it ended, not as timed out (nft did commit)', async (t) => {
  const l = launcher(t);
  const dir = l.dir!;
  const shell = l.pid;
  const log = join(scratch(t), 'log');
  const nft = program(t, `cat >/dev/null; echo run >> '${log}'; echo loaded`);
  for (const [i, stdin] of ['add element inet nodewall s { 192.0.2.1 }\n', 'x\n', 'y\n'].entries()) {
    const timeoutMs = 200;
    const p = outcome(l.run(nft, ['-f', '-'], { stdin, timeoutMs }));
    // The event loop is blocked until nft has ended (its status file is written) and its timeout has passed:
    // when the loop runs again, the timeout is due and the answers are in the pipe (or about to be).
    const t0 = performance.now();
    t.true(busyUntil(() => readdirSync(dir).some((f) => f.startsWith('status.'))), 'nft ended');
    t.true(busyUntil(() => performance.now() - t0 > 3 * timeoutMs));
    t.deepEqual(await p, { ok: { stdout: 'loaded\n', stderr: '' } }, `command ${i}`);
  }
  t.deepEqual(readFileSync(log, 'utf8'), 'run\nrun\nrun\n', 'each ran once (never run again, never reported timed out)');
  t.is(l.stats.failures, 0, 'no malformed answer: the late "S" and "R" answers are skipped');
  t.is(l.stats.viaLauncher, 3);
  t.is(l.pid, shell, 'the same launcher shell carried all three');
});

/**
 * A group that stays "not gone" whatever SIGKILL does: no test can make a process that survives SIGKILL (an
 * nft in uninterruptible sleep in the kernel), so the wait is replaced; it still waits for the real group
 * first (its real result is recorded) and then reports what such a process would leave.
 */
function neverGone(real: boolean[]): (pgid: number | undefined, boundMs: number) => Promise<boolean> {
  return async (pgid, boundMs) => {
    real.push(await waitGroupGone(pgid, 30_000));
    await new Promise((r) => setTimeout(r, boundMs));
    return false;
  };
}

test('the group of a killed launcher still not gone after groupGoneMs: a change is not run again, the call fails with NftStillRunningError (timeout and launcher death)', async (t) => {
  const dir = scratch(t);
  const log = join(dir, 'log');
  const started = join(dir, 'started');
  // "nft": records its run, then hangs (killed with the launcher's group).
  const nft = program(t, `cat >/dev/null; echo run >> '${log}'; : > '${started}'; exec sleep 1000`);
  for (const how of ['timeout', 'launcher killed'] as const) {
    rmSync(log, { force: true });
    rmSync(started, { force: true });
    const real: boolean[] = [];
    const l = launcher(t, { groupGoneMs: 500, waitGroupGone: neverGone(real) });
    const shell = l.pid!;
    const p = l.run(nft, ['-f', '-'], { stdin: 'x\n', timeoutMs: how === 'timeout' ? 1000 : 60_000 }).then(() => undefined, (e: unknown) => e);
    if (how === 'launcher killed') {
      t.true(await eventually(() => existsSync(started)));
      process.kill(shell, 'SIGKILL');
    }
    const err = await p;
    t.deepEqual(real, [true], 'the real group was killed and waited for once');
    t.true(err instanceof NftStillRunningError, `${how}: ${String(err)}`);
    if (err instanceof NftStillRunningError) {
      t.true(err.mayStillCommit);
      t.is(err.failure, 'timeout');
      t.regex(err.message, /still not gone 0\.5 s later, so that nft may still commit .* it is not run again/);
    }
    t.deepEqual(readFileSync(log, 'utf8'), 'run\n', `${how}: run once, never again while the first may still commit`);
    t.false(existsSync(l.dir ?? '/nonexistent/x'), 'its directory is removed');
  }
});

test('the group still not gone after a listing\'s launcher died: a listing (it commits nothing) runs again directly', async (t) => {
  const dir = scratch(t);
  const log = join(dir, 'log');
  const started = join(dir, 'started');
  const nft = program(t, `echo run >> '${log}'; if [ -e '${started}' ]; then echo listed; exit 0; fi; : > '${started}'; exec sleep 1000`);
  const l = launcher(t, { groupGoneMs: 200, waitGroupGone: neverGone([]) });
  const shell = l.pid!;
  const p = l.run(nft, ['list', 'ruleset']);
  t.true(await eventually(() => existsSync(started)));
  process.kill(shell, 'SIGKILL');
  t.deepEqual(await p, { stdout: 'listed\n', stderr: '' });
  t.deepEqual(readFileSync(log, 'utf8'), 'run\nrun\n');
});

test('waitGroupGone is bounded by time, not by a count of scans: a live group is reported not gone after the bound; a killed one as gone', async (t) => {
  const child = spawn('/bin/sh', ['-c', 'sleep 1000 & wait'], { detached: true, stdio: 'ignore' });
  const pgid = child.pid!;
  t.teardown(() => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  t.true(await eventually(() => liveGroupMembers(pgid).length === 2));
  const t0 = performance.now();
  t.false(await waitGroupGone(pgid, 300));
  // A lower bound only (the clock was waited for); no upper bound is asserted.
  t.true(performance.now() - t0 >= 300, 'it waited its bound');
  // The clock is read every 64 entries: 64 of them (this process, not of the group), whatever the number of
  // processes of the machine running the test (a slim CI container may have fewer than 64).
  const many = Array.from({ length: 64 }, () => process.pid);
  t.deepEqual(liveGroupMembers(pgid, performance.now() - 1, many), undefined, 'a scan past its deadline is unknown, not empty');
  t.deepEqual(liveGroupMembers(pgid, Number.POSITIVE_INFINITY, many), [], 'the same scan without a deadline: empty');
  // A look among given pids only: the group's members found, this process (not of the group) not.
  const members = liveGroupMembers(pgid);
  t.deepEqual(liveGroupMembers(pgid, Number.POSITIVE_INFINITY, [...members, process.pid]), members);
  t.deepEqual(liveGroupMembers(pgid, Number.POSITIVE_INFINITY, [process.pid]), []);
  process.kill(-pgid, 'SIGKILL');
  t.true(await waitGroupGone(pgid, 30_000));
  t.true(await waitGroupGone(undefined, 0));
});

test.serial('a big script whose write does not finish by the deadline: the call fails as a timeout; nft never ran, and is not started for a second full timeout', async (t) => {
  const l = launcher(t);
  const dir = l.dir!;
  const log = join(scratch(t), 'log');
  const nft = program(t, `echo run >> '${log}'; wc -c`);
  // The script file is a FIFO nobody reads: the write blocks (a stuck file system). A second name keeps it
  // reachable to release the blocked writer afterwards.
  const fifo = join(scratch(t), 'fifo');
  await new Promise<void>((resolve, reject) => execFile('mkfifo', [fifo], (e) => (e === null ? resolve() : reject(e))));
  linkSync(fifo, join(dir, 'in'));
  t.teardown(() => {
    const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    closeSync(fd);
  });
  const err = await l.run(nft, ['-f', '-'], { stdin: 'x'.repeat(maxSyncScriptChars + 1), timeoutMs: 500 }).then(() => undefined, (e: unknown) => e);
  t.true(err instanceof NftError && err.failure === 'timeout', String(err));
  t.regex(String((err as Error).message), /timed out after 0\.5 s: its script could not be written .* nft was never started; nothing was changed/);
  t.false(existsSync(log), 'nft never ran: not by the launcher, not by a direct spawn');
  t.is(l.stats.failures, 1, 'this launcher is not used again');
  t.deepEqual(await l.run(nft, ['list', 'tables']), { stdout: '0\n', stderr: '' }, 'the next call works (directly, or a new launcher)');
});
