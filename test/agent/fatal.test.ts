// A start that fails, an uncaught exception and an unhandled rejection end the
// process with a non-zero exit (systemd restarts it), even with timers and
// watchers that would otherwise keep a do-nothing zombie alive.

import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';

const fatalModule = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'agent', 'fatal.js')).href;
const logModule = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'agent', 'log.js')).href;

function runScript(body: string): Promise<{ code: number | null; stdout: string }> {
  const script = `
    import { exitOnUncaught, startOrDie } from ${JSON.stringify(fatalModule)};
    import { createAgentLogger } from ${JSON.stringify(logModule)};
    const log = createAgentLogger({ env: {} });
    exitOnUncaught(log);
    setInterval(() => undefined, 1 << 30); // what keeps the agent alive
    ${body}
  `;
  return new Promise((resolve) => {
    // The 60 s bound only stops a hang (the defect): the child exits as soon as the error happens.
    const child = execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 }, (_err, stdout) => resolve({ code: child.exitCode, stdout }));
  });
}

const fatalLine = (stdout: string, msg: RegExp) =>
  stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } }).find((l) => l.level === 60 && msg.test(l.msg));

test('a rejected start logs at fatal level and exits 1', async (t) => {
  const r = await runScript(`await startOrDie(() => Promise.reject(new Error('state dir is a file')), log);`);
  t.is(r.code, 1);
  t.is(fatalLine(r.stdout, /agent could not start: exiting for a restart/)?.err?.message, 'state dir is a file');
});

test('an uncaught exception exits 1', async (t) => {
  const r = await runScript(`setTimeout(() => { throw new Error('bug in a timer'); }, 10);`);
  t.is(r.code, 1);
  t.is(fatalLine(r.stdout, /uncaught exception/)?.err?.message, 'bug in a timer');
});

test('an unhandled rejection exits 1', async (t) => {
  const r = await runScript(`void Promise.reject(new Error('forgotten promise'));`);
  t.is(r.code, 1);
  t.is(fatalLine(r.stdout, /unhandled rejection/)?.err?.message, 'forgotten promise');
});

test('a start that succeeds does not exit', async (t) => {
  const r = await runScript(`await startOrDie(() => Promise.resolve(), log); log.info('started'); setTimeout(() => process.exit(0), 50);`);
  t.is(r.code, 0);
  t.regex(r.stdout, /"msg":"started"/);
});
