// The runtime settings of src/bin/runtime-settings.ts are what the shipped deployments run with
// (the systemd unit and the DaemonSet say exactly them, nothing more), node accepts the flags in
// NODE_OPTIONS, and they take effect there.

import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { agentEnv, agentNodeFlags, agentNodeOptions, missingRuntimeSettings } from '../../src/bin/runtime-settings.js';
import { repoRoot } from '../agent/paths.js';

const run = promisify(execFile);

/** `Environment=` assignments of a unit (the shipped unit quotes none of them). */
function unitEnvironment(unit: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const m of unit.matchAll(/^Environment=(.*)$/gm)) {
    for (const word of (m[1] ?? '').trim().split(/\s+/)) {
      const eq = word.indexOf('=');
      if (eq > 0) env.set(word.slice(0, eq), word.slice(eq + 1));
    }
  }
  return env;
}

test('the systemd unit starts node with exactly the flags and environment of runtime-settings', async (t) => {
  const unit = await readFile(join(repoRoot(), 'systemd', 'nodewall.service'), 'utf8');
  const execStart = [...unit.matchAll(/^ExecStart=(.*)$/gm)].map((m) => m[1]?.trim().split(/\s+/) ?? []);
  t.is(execStart.length, 1);
  const argv = execStart[0] ?? [];
  // install.sh replaces "/usr/bin/node " with the node it found: the flags stay right after it.
  t.is(argv[0], '/usr/bin/node');
  const script = argv.indexOf('/opt/nodewall/dist/src/bin/nodewall.js');
  t.true(script > 0, argv.join(' '));
  t.deepEqual(argv.slice(1, script), [...agentNodeFlags]);
  const env = unitEnvironment(unit);
  for (const [k, v] of Object.entries(agentEnv)) t.is(env.get(k), v, k);
  // Flags only in ExecStart: a NODE_OPTIONS in the unit would be a second place to change.
  t.false(env.has('NODE_OPTIONS'));
});

test('the DaemonSet container has the node flags (NODE_OPTIONS) and the environment of runtime-settings', async (t) => {
  const docs = parseAllDocuments(await readFile(join(repoRoot(), 'deploy', 'daemonset.yaml'), 'utf8'));
  if (!Array.isArray(docs)) {
    t.fail('not a YAML stream');
    return;
  }
  const ds = docs.map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: { name: string; env?: { name: string; value?: string }[] }[] } } } }).find((d) => d.kind === 'DaemonSet');
  const containers = ds?.spec?.template?.spec?.containers ?? [];
  t.is(containers.length, 1);
  const env = new Map((containers[0]?.env ?? []).map((e) => [e.name, e.value]));
  if (agentNodeFlags.length === 0) t.false(env.has('NODE_OPTIONS'), 'no flags shipped: no NODE_OPTIONS');
  else t.is(env.get('NODE_OPTIONS'), agentNodeOptions());
  for (const [k, v] of Object.entries(agentEnv)) t.is(env.get(k), v, k);
});

/**
 * The malloc arenas of threads other than the main one in a child that runs eight pbkdf2 jobs on
 * libuv's pool (each pool thread mallocs): glibc maps each such arena as a 64 MiB-aligned run of
 * 64 MiB (its unused part PROT_NONE).
 */
async function threadArenas(env: NodeJS.ProcessEnv): Promise<number> {
  const script = [
    "const crypto = require('node:crypto');",
    "const fs = require('node:fs');",
    'let left = 8;',
    "for (let i = 0; i < 8; i++) crypto.pbkdf2('secret', 'salt' + i, 50000, 64, 'sha512', () => { if (--left === 0) report(); });",
    'function report() {',
    '  const maps = [];',
    "  for (const l of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {",
    '    const m = /^([0-9a-f]+)-([0-9a-f]+) (\\S+) \\S+ \\S+ \\S+\\s*(.*)$/.exec(l);',
    "    if (m) maps.push({ s: BigInt('0x' + m[1]), e: BigInt('0x' + m[2]), p: m[3], path: m[4] });",
    '  }',
    '  const A = 64n << 20n;',
    '  let n = 0;',
    '  for (let i = 0; i < maps.length; i++) {',
    '    const m = maps[i];',
    "    if (m.path !== '' || !m.p.startsWith('rw') || m.s % A !== 0n) continue;",
    '    const nx = maps[i + 1];',
    "    const end = nx && nx.s === m.e && nx.path === '' && nx.p.startsWith('---') ? nx.e : m.e;",
    '    if (end - m.s === A) n++;',
    '  }',
    '  process.stdout.write(String(n));',
    '}',
  ].join('\n');
  const r = await run(process.execPath, ['-e', script], { env, timeout: 120_000 });
  return Number(r.stdout);
}

test('MALLOC_ARENA_MAX bounds the malloc arenas of the agent process (glibc)', async (t) => {
  const max = Number(agentEnv['MALLOC_ARENA_MAX']);
  if (!Number.isInteger(max) || max < 1) {
    t.pass('no arena bound shipped');
    return;
  }
  const base: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: '4' };
  for (const k of Object.keys(base)) if (k.startsWith('MALLOC_')) delete base[k];
  const shipped = await threadArenas({ ...base, ...agentEnv });
  t.true(shipped <= max - 1, `${shipped} thread arenas with ${JSON.stringify(agentEnv)}`);
  // Control: without the bound the pool threads get arenas of their own.
  const unbounded = await threadArenas(base);
  t.true(unbounded > max - 1, `${unbounded} thread arenas without the bound`);
});

test('missingRuntimeSettings: none under the shipped settings (arguments or NODE_OPTIONS), each one missing or different named', (t) => {
  t.deepEqual(missingRuntimeSettings(agentNodeFlags, { ...agentEnv }), []);
  t.deepEqual(missingRuntimeSettings([], { ...agentEnv, NODE_OPTIONS: ` ${agentNodeOptions()}  --trace-gc` }), []);
  t.deepEqual(missingRuntimeSettings([], {}), [...agentNodeFlags, ...Object.entries(agentEnv).map(([k, v]) => `${k}=${v}`)]);
  t.deepEqual(missingRuntimeSettings(['--max-semi-space-size=16'], { ...agentEnv, MALLOC_ARENA_MAX: '8' }), [...agentNodeFlags, `MALLOC_ARENA_MAX=${agentEnv['MALLOC_ARENA_MAX'] ?? ''}`]);
});

test('the agent says at start when it runs without the shipped settings, and says nothing under them', async (t) => {
  const bin = join(repoRoot(), 'dist/src/bin/nodewall.js');
  const stateDir = await mkdtemp(join(tmpdir(), 'nwt-runtime-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  // Output up to the agent's 'agent starting' line (logged after the check), then the agent is stopped.
  const startLines = (args: string[], env: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [...args, bin, 'agent', '--config', join(stateDir, 'none.yaml'), '--state-dir', stateDir], {
        env: { PATH: process.env['PATH'] ?? '', ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      const bound = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"agent starting"')) child.kill('SIGKILL');
      });
      child.on('error', reject);
      child.on('close', () => {
        clearTimeout(bound);
        resolve(out);
      });
    });
  const without = await startLines([], {});
  t.regex(without, /agent starting/);
  t.regex(without, /not running with the shipped runtime settings \(MALLOC_ARENA_MAX=2, MALLOC_TRIM_THRESHOLD_=131072\)/);
  const shipped = await startLines([...agentNodeFlags], { ...agentEnv });
  t.regex(shipped, /agent starting/, 'the agent ran and logged');
  t.notRegex(shipped, /shipped runtime settings/);
});
