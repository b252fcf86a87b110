import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEntry, DetachedStartError, startDetached } from '../../src/agent/detached-cli.js';

async function script(t: { teardown(fn: () => Promise<void>): void }, body: string): Promise<{ file: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'nw-detached-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'entry.mjs');
  await writeFile(file, body);
  return { file, dir };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(pred: () => boolean | Promise<boolean>, ms = 30_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test('the CLI entry is the built bin next to the module, not process.argv[1]', (t) => {
  t.regex(cliEntry(), /\/src\/bin\/nodewall\.js$/);
  t.not(cliEntry(), process.argv[1]);
});

test('resolves with the pid the child says it armed with; the child lives on in a session of its own', async (t) => {
  const { file } = await script(t, `process.stdout.write('starting\\narmed ' + process.pid + '\\n'); setTimeout(() => {}, 20000);`);
  const pid = await startDetached({ what: 'the test watchdog', args: ['x'], waitMs: 30_000, entry: file });
  t.teardown(() => void (alive(pid) && process.kill(pid, 'SIGKILL')));
  t.true(alive(pid));
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  t.is(Number(fields[3]), pid, 'its own session (setsid): session id = its pid');
});

test('a child that exits before arming is an error naming it and its log', async (t) => {
  const { file } = await script(t, `process.exit(3);`);
  const err = await t.throwsAsync(startDetached({ what: 'the test watchdog', args: [], waitMs: 30_000, entry: file, logHint: '/var/lib/x.log' }));
  t.true(err instanceof DetachedStartError);
  t.regex(err?.message ?? '', /the test watchdog exited \(3\) before arming; see \/var\/lib\/x\.log/);
});

test('a child that never arms is killed and the start fails', async (t) => {
  const { file, dir } = await script(t, `import { writeFileSync } from 'node:fs'; writeFileSync(process.argv[2], String(process.pid)); setTimeout(() => {}, 60000);`);
  const pidFile = join(dir, 'pid');
  const err = await t.throwsAsync(startDetached({ what: 'the test watchdog', args: [pidFile], waitMs: 3000, entry: file }));
  t.regex(err?.message ?? '', /did not arm within 3000 ms/);
  t.true(await until(async () => (await readFile(pidFile, 'utf8').catch(() => '')) !== ''));
  const pid = Number(await readFile(pidFile, 'utf8'));
  t.true(await until(() => !alive(pid)), 'the silent child was killed');
});

test('a child that says something else at length is refused', async (t) => {
  const { file } = await script(t, `process.stdout.write('x'.repeat(10000)); setTimeout(() => {}, 20000);`);
  const err = await t.throwsAsync(startDetached({ what: 'the test watchdog', args: [], waitMs: 30_000, entry: file }));
  t.regex(err?.message ?? '', /said something unexpected/);
});
