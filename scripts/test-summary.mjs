#!/usr/bin/env node
// Runs ava in TAP mode, echoes its output, then prints one plain closing line
// "N passed, N failed, N skipped" and exits with ava's exit code.
// The per-test TAP lines are counted because ava's own summary omits the pass
// count on failure and supertap counts todo tests as failures.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const avaCli = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url));
const child = spawn(process.execPath, [avaCli, '--tap', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});

let passed = 0;
let failed = 0;
let skipped = 0;
const rl = createInterface({ input: child.stdout });
rl.on('line', (line) => {
  process.stdout.write(`${line}\n`);
  const m = /^(not ok|ok)\b.*?(?:\s#\s(SKIP|TODO)\b.*)?$/.exec(line);
  if (!m) return;
  if (m[2]) skipped++;
  else if (m[1] === 'ok') passed++;
  else failed++;
});

child.on('close', (code, signal) => {
  const rc = code ?? (signal ? 1 : 0);
  if (rc !== 0 && failed === 0) failed = 1;
  process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  process.exitCode = rc;
});
