// The shipped unit: systemd's own checker accepts it and its exposure score stays low.
// Needs systemd-analyze (Debian package "systemd"; .ci/run installs it).

import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

const run = promisify(execFile);
const unitPath = join(repoRoot(), 'systemd', 'nodewall.service');

async function analyze(args: string[]): Promise<{ code: number; out: string }> {
  // Run from an empty directory: verify also loads units next to the cwd.
  const cwd = await mkdtemp(join(tmpdir(), 'nwt-agent-unit-'));
  try {
    const r = await run('systemd-analyze', args, { cwd, timeout: 60_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('systemd-analyze not found: install the Debian package "systemd"');
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

test('systemd-analyze verify accepts the unit', async (t) => {
  const r = await analyze(['verify', unitPath]);
  t.is(r.code, 0, r.out);
  t.notRegex(r.out, /nodewall\.service:\d+:/, 'no warning about a line of the unit');
});

test('systemd-analyze security exposure is below 3', async (t) => {
  const r = await analyze(['security', '--offline=true', unitPath]);
  const m = /Overall exposure level for nodewall\.service: (\d+(?:\.\d+)?)/.exec(r.out);
  t.truthy(m, r.out.slice(-500));
  t.true(Number(m?.[1]) < 3, `exposure ${m?.[1]}`);
});

test('the unit keeps only CAP_NET_ADMIN, never MemoryDenyWriteExecute, restarts and reloads', async (t) => {
  const text = await readFile(unitPath, 'utf8');
  const values = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]?.trim());
  t.deepEqual(values('CapabilityBoundingSet'), ['CAP_NET_ADMIN']);
  t.deepEqual(values('AmbientCapabilities'), ['CAP_NET_ADMIN']);
  t.deepEqual(values('NoNewPrivileges'), ['yes']);
  t.deepEqual(values('ProtectSystem'), ['strict']);
  t.deepEqual(values('MemoryDenyWriteExecute'), ['no']);
  t.true(values('RestrictAddressFamilies')[0]?.split(/\s+/).includes('AF_NETLINK'));
  t.deepEqual(values('Restart'), ['on-failure']);
  t.deepEqual(values('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  t.true(values('After')[0]?.split(/\s+/).includes('nftables.service'));
  t.deepEqual(values('Before'), ['network-pre.target']);
  t.deepEqual(values('Wants'), ['network-pre.target']);
  t.deepEqual(values('PrivateNetwork'), []);
  t.regex(values('ExecStart')[0] ?? '', / agent --config \/etc\/nodewall\/nodewall\.yaml$/);
});
