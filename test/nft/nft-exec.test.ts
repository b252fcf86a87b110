import test from 'ava';
import { NftError, checkScript, errorLine, loadScript, parseNftJson, runNft, stderrTail } from '../../src/nft/nft-exec.js';
import { throwawayNetns } from './netns.js';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { applyModel } from '../../src/nft/apply.js';
import { readTable } from '../../src/nft/read-kernel.js';
import * as b from '../helpers/model-builders.js';

const nft = '/usr/sbin/nft';

test('errorLine finds the script line nft reports', (t) => {
  t.is(errorLine('/dev/stdin:12:5-10: Error: syntax error, unexpected junk\nfoo\n'), 12);
  t.is(errorLine('-:3:1-2: Error: Could not process rule: No such file or directory'), 3);
  t.is(errorLine('Error: something without a position'), undefined);
});

test('a failing script is an NftError with argv, exit code, stderr and the offending line', async (t) => {
  const ns = await throwawayNetns(t, 'exec');
  const script = 'table inet x {\n\tchain c {\n\t\tbogus stuff here\n\t}\n}\n';
  const err = await t.throwsAsync(loadScript(nft, script, { netns: ns }), { instanceOf: NftError });
  t.is(err?.line, 3);
  t.is(err?.scriptLine?.trim(), 'bogus stuff here');
  t.is(err?.exitCode, 1);
  t.true(err?.argv.includes(nft));
  t.regex(err?.stderr ?? '', /Error/);
  t.regex(err?.message ?? '', /script line 3: bogus stuff here/);
});

test('check (-c) validates without committing; load commits', async (t) => {
  const ns = await throwawayNetns(t, 'exec');
  await checkScript(nft, 'table inet x {}\n', { netns: ns });
  t.is((await runNft(nft, ['list', 'tables'], { netns: ns })).stdout, '');
  await loadScript(nft, 'table inet x {}\n', { netns: ns });
  t.regex((await runNft(nft, ['list', 'tables'], { netns: ns })).stdout, /table inet x/);
});

test('a missing binary is an NftError with a cause', async (t) => {
  const err = await t.throwsAsync(runNft('/nonexistent/nft', ['list', 'tables']), { instanceOf: NftError });
  t.truthy(err?.cause);
  t.is(err?.exitCode, null);
});

// --- fake programs as nft.path: every failure says what ran, how it failed and what to do -----------

/** A shell script in a fresh directory, removed after the test. */
function fakeProgram(t: ExecutionContext, body: string, mode = 0o755): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodewall-fake-nft-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nft');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

const someModel = () => b.model({ sets: [b.identity('pods', ['198.51.100.5/32'], [])], ingress: b.enforced([b.allow('pods', [b.tcp(22)], 'spec.ingress[0]')]) });

test('a program that prints nothing is not taken for an empty ruleset: "printed no JSON ... is it nft?"', async (t) => {
  const silent = fakeProgram(t, 'cat >/dev/null; exit 0');
  const err = await t.throwsAsync(readTable(silent, 'nodewall'), { instanceOf: NftError });
  t.is(err?.failure, 'output');
  t.is(err?.message, `\`${silent}\` (nft.path) printed no JSON for \`nft -n -j list table inet nodewall\`: is it nft? Set nft.path to the nft binary (usually /usr/sbin/nft)`);
  // apply reads the table first, so it fails the same way and loads nothing.
  const e2 = await t.throwsAsync(applyModel(someModel(), { nftPath: silent, table: 'nodewall', mode: 'enforce' }), { instanceOf: NftError });
  t.regex(e2?.message ?? '', /printed no JSON .*is it nft\?/);
});

test('a program that prints something else names what it printed', async (t) => {
  const chatty = fakeProgram(t, 'echo "hello from not-nft"');
  const err = await t.throwsAsync(readTable(chatty, 'nodewall'), { instanceOf: NftError });
  t.regex(err?.message ?? '', /\(nft\.path\) printed something that is not JSON for `nft -n -j list table inet nodewall` \("hello from not-nft"\): is it nft\?/);
  t.true(err?.cause instanceof SyntaxError);
  const json = fakeProgram(t, 'echo "{\\"answer\\": 42}"');
  const e2 = await t.throwsAsync(readTable(json, 'nodewall'), { instanceOf: NftError });
  t.regex(e2?.message ?? '', /printed JSON without an "nftables" list/);
  t.throws(() => parseNftJson('[1,2]', '/x', ['-j', 'list', 'ruleset']), { instanceOf: NftError, message: /without an "nftables" list/ });
});

test('a timeout is reported as a kill with the configured time and what stays in force, not "exited with null"', async (t) => {
  const hang = fakeProgram(t, 'echo "Error: stuck on the lock" >&2\nexec sleep 600');
  const err = await t.throwsAsync(loadScript(hang, 'table inet x {}\n', { timeoutMs: 200 }), { instanceOf: NftError });
  t.is(err?.failure, 'timeout');
  t.is(err?.signal, 'SIGKILL');
  t.notRegex(err?.message ?? '', /null/);
  t.regex(err?.message ?? '', /^`nft -f -` \(.*\/nft\) timed out after 0\.2 s and was killed \(SIGKILL\); an nft transaction is all or nothing, so the previous ruleset stays in force; stderr: Error: stuck on the lock\. A very large ruleset needs a longer nft\.timeoutSeconds/);
  const check = await t.throwsAsync(checkScript(hang, 'table inet x {}\n', { timeoutMs: 200 }), { instanceOf: NftError });
  t.regex(check?.message ?? '', /`nft -c -f -` .* timed out after 0\.2 s and was killed \(SIGKILL\); nothing was changed \(a check never commits\)/);
  // Through apply: the configured timeout reaches every nft run.
  const e3 = await t.throwsAsync(applyModel(someModel(), { nftPath: hang, table: 'nodewall', mode: 'enforce', timeoutMs: 200 }), { instanceOf: NftError });
  t.regex(e3?.message ?? '', /timed out after 0\.2 s and was killed \(SIGKILL\)/);
});

test('a non-zero exit carries the exit status, the stderr tail and what stays in force', async (t) => {
  const fails = fakeProgram(t, 'cat >/dev/null; echo "line one" >&2; echo "Error: Could not process rule: Operation not permitted" >&2; exit 1');
  const err = await t.throwsAsync(loadScript(fails, 'table inet x {}\n'), { instanceOf: NftError });
  t.is(err?.exitCode, 1);
  t.is(err?.message, `\`nft -f -\` (${fails}) exited with status 1: Error: Could not process rule: Operation not permitted; an nft transaction is all or nothing, so the previous ruleset stays in force`);
  const quiet = fakeProgram(t, 'exit 2');
  const e2 = await t.throwsAsync(runNft(quiet, ['list', 'tables']), { instanceOf: NftError });
  t.regex(e2?.message ?? '', /exited with status 2 and printed nothing on stderr; nothing was changed$/);
  const killed = fakeProgram(t, 'kill -TERM $$');
  const e3 = await t.throwsAsync(runNft(killed, ['list', 'tables']), { instanceOf: NftError });
  t.regex(e3?.message ?? '', /was killed by SIGTERM/);
  t.is(e3?.signal, 'SIGTERM');
});

test('spawn failures name the path, the config key and the fix', async (t) => {
  const missing = await t.throwsAsync(runNft('/nonexistent/nft', ['list', 'tables']), { instanceOf: NftError });
  t.is(missing?.failure, 'spawn');
  t.is(missing?.message, 'cannot run `nft list tables`: `/nonexistent/nft` (nft.path) does not exist; set nft.path in the config to the nft binary (usually /usr/sbin/nft) or install nftables');
  t.is((missing?.cause as NodeJS.ErrnoException).code, 'ENOENT');
  const notExecutable = fakeProgram(t, 'exit 0', 0o644);
  const denied = await t.throwsAsync(runNft(notExecutable, ['list', 'tables']), { instanceOf: NftError });
  t.regex(denied?.message ?? '', new RegExp(`\`${notExecutable}\` \\(nft\\.path\\) is not executable by this user \\(permission denied\\)`));
  t.is((denied?.cause as NodeJS.ErrnoException).code, 'EACCES');
  const nul = await t.throwsAsync(runNft('/usr/sbin/nft\u0000x', ['list', 'tables']), { instanceOf: NftError });
  t.is(nul?.failure, 'spawn');
});

test('stderrTail prefers nft\'s Error line and bounds what it quotes', (t) => {
  t.is(stderrTail('noise\n/dev/stdin:3:1-2: Error: boom\n   ^^^\n'), '/dev/stdin:3:1-2: Error: boom');
  t.is(stderrTail('a\nb\nc\nd\n'), 'b | c | d');
  t.is(stderrTail(''), '');
  t.true(stderrTail('x'.repeat(10_000)).length <= 303);
});

test('a timeout that is not a positive number falls back to the default instead of killing nft at once', async (t) => {
  const slowish = fakeProgram(t, 'sleep 0.3; echo ok');
  for (const timeoutMs of [Number.NaN, 0, -5]) t.is((await runNft(slowish, ['list', 'tables'], { timeoutMs })).stdout, 'ok\n');
});
