import test from 'ava';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import pino from 'pino';
import { NftMonitor, monitorKinds, tableEvent } from '../../src/agent/nft-monitor.js';

test('tableEvent: only events of table inet <ours>', (t) => {
  t.deepEqual(tableEvent('{"delete": {"table": {"family": "inet", "name": "nodewall", "handle": 1}}}', 'nodewall'), { op: 'delete', object: 'table' });
  t.deepEqual(tableEvent('{"add": {"rule": {"family": "inet", "table": "nodewall", "chain": "input", "handle": 4, "expr": []}}}', 'nodewall'), { op: 'add', object: 'rule' });
  t.deepEqual(tableEvent('{"delete": {"chain": {"family": "inet", "table": "nodewall", "name": "input"}}}', 'nodewall'), { op: 'delete', object: 'chain' });
  t.deepEqual(tableEvent('{"delete": {"set": {"family": "inet", "name": "nw_owner", "table": "nodewall"}}}', 'nodewall'), { op: 'delete', object: 'set' });
  // Other owners, other families, our name as another table's chain name, elements, garbage.
  t.is(tableEvent('{"delete": {"table": {"family": "inet", "name": "firewalld"}}}', 'nodewall'), undefined);
  t.is(tableEvent('{"delete": {"table": {"family": "ip", "name": "nodewall"}}}', 'nodewall'), undefined);
  t.is(tableEvent('{"add": {"chain": {"family": "inet", "table": "filter", "name": "nodewall"}}}', 'nodewall'), undefined);
  t.is(tableEvent('{"add": {"element": {"family": "inet", "table": "nodewall", "name": "s"}}}', 'nodewall'), undefined);
  for (const junk of ['', 'not json', '[]', 'null', '{"a":1,"b":2}', '{"add": null}', '{"add": {"table": null}}', '{"add": {"table": "nodewall"}}',
    '{"__proto__": {"table": {"family": "inet", "name": "nodewall"}}}', '{"add": {"constructor": {}}}']) {
    t.is(tableEvent(junk, 'nodewall'), undefined, junk);
  }
});

class FakeChild extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  exitCode: number | null = null;
  signalCode: string | null = null;
  readonly pid: number;
  killed: string | undefined;
  constructor(pid: number) {
    super();
    this.pid = pid;
  }
  kill(sig: string): boolean {
    this.killed = sig;
    this.die(null, sig);
    return true;
  }
  die(code: number | null, signal: string | null = null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code ?? -1;
    this.signalCode = signal;
    this.emit('close', code, signal);
  }
}

function harness() {
  const children: { kind: string; child: FakeChild; args: readonly string[] }[] = [];
  const triggers: string[] = [];
  const restarts: string[] = [];
  let pid = 100;
  const waiters: (() => void)[] = [];
  const monitor = new NftMonitor({
    log: pino({ level: 'silent' }),
    onTrigger: (r) => {
      triggers.push(r);
      for (const w of waiters.splice(0)) w();
    },
    onRestart: (k) => restarts.push(k),
    coalesceMs: 5,
    backoff: { initialMs: 5, maxMs: 20 },
    spawnChild: (_path, args) => {
      const child = new FakeChild(pid++);
      children.push({ kind: args[2] ?? '', child, args });
      return child as unknown as ChildProcess;
    },
  });
  const nextTrigger = (): Promise<void> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no trigger')), 10_000);
    waiters.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { monitor, children, triggers, restarts, nextTrigger };
}

test('one child per kind; events of our table trigger one coalesced check; others none', async (t) => {
  const h = harness();
  h.monitor.sync({ nftPath: '/usr/sbin/nft', table: 'nodewall' });
  t.deepEqual(h.children.map((c) => c.args.join(' ')), monitorKinds.map((k) => `-j monitor ${k}`));
  t.is(h.monitor.pids.size, 4);
  const rules = h.children.find((c) => c.kind === 'rules')!.child;
  const tables = h.children.find((c) => c.kind === 'tables')!.child;
  const next = h.nextTrigger();
  rules.stdout.write('{"add": {"rule": {"family": "inet", "table": "other", "chain": "c"}}}\n');
  rules.stdout.write('{"delete": {"rule": {"family": "inet", "table": "nodewall", "chain": "input"}}}\n{"delete": {"rule": {"family": "inet", "table": "nodew');
  rules.stdout.write('all", "chain": "input"}}}\n');
  tables.stdout.write('{"delete": {"table": {"family": "inet", "name": "nodewall"}}}\n');
  await next;
  t.deepEqual(h.triggers, ['delete rule'], 'a burst is one check');
  // A same target is no restart; stop kills every child.
  h.monitor.sync({ nftPath: '/usr/sbin/nft', table: 'nodewall' });
  t.is(h.children.length, 4);
  h.monitor.stop();
  t.true(h.children.every((c) => c.child.killed === 'SIGTERM'));
  t.is(h.monitor.pids.size, 0);
  await new Promise((r) => setTimeout(r, 50));
  t.is(h.children.length, 4, 'a stopped monitor restarts nothing');
});

test('a child that dies is restarted (with a check, events may have been missed); a new table restarts all', async (t) => {
  const h = harness();
  h.monitor.sync({ nftPath: '/usr/sbin/nft', table: 'nodewall' });
  const sets = h.children.find((c) => c.kind === 'sets')!.child;
  const next = h.nextTrigger();
  sets.stderr.write('Error: something\n');
  sets.die(1);
  await next;
  t.deepEqual(h.triggers, ['monitor restarted']);
  t.deepEqual(h.restarts, ['sets']);
  t.is(h.children.length, 5);
  t.is(h.children[4]?.kind, 'sets');
  t.is(h.monitor.pids.size, 4);
  // Spawn errors are retried the same way.
  const again = h.nextTrigger();
  h.children[4]!.child.emit('error', new Error('spawn /usr/sbin/nft ENOENT'));
  await again;
  t.is(h.children.length, 6);
  // Another table: the old children stop, four new ones follow it.
  h.monitor.sync({ nftPath: '/usr/sbin/nft', table: 'other' });
  t.is(h.children.length, 10);
  // The live children of the old target (not the dead sets child, nor the one that failed to spawn) were stopped.
  t.deepEqual([0, 1, 3, 5].map((i) => h.children[i]?.child.killed), ['SIGTERM', 'SIGTERM', 'SIGTERM', 'SIGTERM']);
  h.monitor.sync(undefined);
  t.is(h.monitor.pids.size, 0);
});

test('a huge line is dropped; the monitor goes on', async (t) => {
  const h = harness();
  h.monitor.sync({ nftPath: '/usr/sbin/nft', table: 'nodewall' });
  const rules = h.children.find((c) => c.kind === 'rules')!.child;
  const next = h.nextTrigger();
  rules.stdout.write(Buffer.alloc(300 * 1024, 0x7b));
  rules.stdout.write('\n{"delete": {"rule": {"family": "inet", "table": "nodewall", "chain": "input"}}}\n');
  await next;
  t.deepEqual(h.triggers, ['delete rule']);
  h.monitor.stop();
});
