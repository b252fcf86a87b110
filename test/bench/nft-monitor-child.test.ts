// The scale bench's observer child (bench/nft-monitor-child.ts) run against a stand-in for `nft monitor`
// (a script printing what nft 1.0.6 prints), with the bench's own line filter. No timing assertions.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchKeepPattern, elementMarker, MonitorLog, ruleWithPortMarker } from '../../bench/nft-monitor-marks.js';

const child = fileURLToPath(new URL('../../bench/nft-monitor-child.js', import.meta.url));

/** The child's output lines, with a fake nft that prints `lines` and then waits to be stopped. */
async function observe(lines: readonly string[], keep: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'nwt-nftmon-child-'));
  try {
    const fake = join(dir, 'nft');
    writeFileSync(join(dir, 'out.txt'), lines.map((l) => `${l}\n`).join(''));
    writeFileSync(fake, `#!/bin/sh\ncat '${join(dir, 'out.txt')}'\nexec sleep 600\n`);
    chmodSync(fake, 0o755);
    const p = spawn(process.execPath, [child, fake, keep], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    const closed = new Promise<void>((r) => p.on('close', () => r()));
    // Wait for the last line (a generation line always passes), then close stdin: the child stops nft.
    await new Promise<void>((r) => {
      p.stdout.on('data', (s: string) => {
        out += s;
        if (out.includes(lines.at(-1) ?? '')) r();
      });
    });
    p.stdin.end();
    await closed;
    return out.split('\n').filter((l) => l !== '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the first line of each transaction is passed on even when the filter would drop it: a transaction\'s stamp is its first line\'s', async (t) => {
  const lines = [
    // A chain delta whose first lines are other pods' elements and a rewritten chain's deletes (filtered).
    'delete element inet nodewall world_v4 { 100.64.0.0-100.127.255.255 }',
    'delete rule inet nodewall nw_in_allow_host_0_0b6983d2a3e0 handle 263',
    'add rule inet nodewall nw_in_allow_host_0_0b6983d2a3e0 meta nfproto ipv4 tcp dport 20003 accept',
    '# new generation 7 by process 1 (nft)',
    'add element inet nodewall endpoints_v4 { 100.65.0.13 }',
    'add element inet nodewall endpoints_v4 { 100.67.0.1 }',
    '# new generation 8 by process 2 (nft)',
  ];
  const got = await observe(lines, benchKeepPattern);
  const texts = got.map((l) => l.slice(l.indexOf('\t') + 1));
  t.deepEqual(texts, [lines[0], lines[2], lines[3], lines[4], lines[5], lines[6]]);
  // Every transaction's first line is there, so MonitorLog's transaction stamp is that line's.
  const log = new MonitorLog();
  for (const l of got) log.push(l);
  const rule = await log.waitFor(ruleWithPortMarker(20003), 0, 1000, 'rule');
  t.is<bigint | undefined, bigint | undefined>(rule.txNanos, log.lines[0]?.nanos);
  const el = await log.waitFor(elementMarker('add', '100.67.0.1'), 0, 1000, 'element');
  t.is<bigint | undefined, bigint | undefined>(el.txNanos, log.lines.find((l) => l.text === lines[4])?.nanos);
});

test('without a filter every line is passed on', async (t) => {
  const lines = ['add table inet nwbench_probe', 'delete rule inet x c handle 3', '# new generation 2 by process 9 (nft)'];
  t.deepEqual((await observe(lines, '')).map((l) => l.slice(l.indexOf('\t') + 1)), lines);
});
