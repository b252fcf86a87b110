// The agent collects garbage once when idle after a model built from scratch, never after incremental
// passes, never while a pass runs, and not after stop. Timer order, not wall-clock margins: a timer armed
// later with a longer delay fires after one armed earlier with a shorter one.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { Agent } from '../../src/agent/agent.js';
import { HeapCompaction, obtainGc } from '../../src/agent/heap-compaction.js';
import { createAgentLogger } from '../../src/agent/log.js';
import { policyYaml } from '../e2e/agent-harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const idleMs = 20;
/** Two steps, as the agent's: the second a while after the first. */
const delaysMs = [idleMs, 2 * idleMs];

/** Waits (bounded by count, not by a margin) until `pred` holds. */
async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3000 && !pred(); i++) await sleep(10);
  if (!pred()) throw new Error(`never: ${what}`);
}

function counted(): { gc: () => void; calls: () => number } {
  let n = 0;
  return { gc: () => void n++, calls: () => n };
}

test('a full build is followed by two collections once idle, then none', async (t) => {
  const c = counted();
  const h = new HeapCompaction({ gc: c.gc, delaysMs });
  t.teardown(() => h.stop());
  h.passStarting();
  h.passEnded(true);
  await until(() => c.calls() === 2, 'two collections');
  await sleep(10 * idleMs);
  t.is(c.calls(), 2, 'owed once, collected in two steps');
  t.is(h.collections, 2);
  // An incremental pass afterwards owes nothing.
  h.passStarting();
  h.passEnded(false);
  await sleep(10 * idleMs);
  t.is(c.calls(), 2);
  // Another full build owes both steps again.
  h.passStarting();
  h.passEnded(true);
  await until(() => c.calls() === 4, 'two more');
  t.pass();
});

test('incremental passes never collect', async (t) => {
  const c = counted();
  const h = new HeapCompaction({ gc: c.gc, delaysMs });
  t.teardown(() => h.stop());
  for (let i = 0; i < 3; i++) {
    h.passStarting();
    h.passEnded(false);
  }
  await sleep(5 * idleMs);
  t.is(c.calls(), 0);
});

test('a pass starting before the idle time is over postpones the collection to after it', async (t) => {
  const c = counted();
  const h = new HeapCompaction({ gc: c.gc, delaysMs });
  t.teardown(() => h.stop());
  h.passStarting();
  h.passEnded(true);
  h.passStarting();
  await sleep(10 * idleMs);
  t.is(c.calls(), 0, 'not while a pass runs');
  // The next pass is incremental: the collections owed by the full build are still made.
  h.passEnded(false);
  await until(() => c.calls() === 2, 'the owed collections');
  t.pass();
});

test('stop cancels a pending collection; gc null never collects', async (t) => {
  const c = counted();
  const h = new HeapCompaction({ gc: c.gc, delaysMs });
  h.passStarting();
  h.passEnded(true);
  h.stop();
  const never = new HeapCompaction({ gc: null, delaysMs });
  never.passStarting();
  never.passEnded(true);
  await sleep(5 * idleMs);
  t.is(c.calls(), 0);
  t.is(never.collections, 0);
});

test('a collection that throws (gc, or process.memoryUsage on EMFILE) is skipped without an uncaught exception; the next step still runs', async (t) => {
  let calls = 0;
  const h = new HeapCompaction({
    gc: () => {
      calls++;
      if (calls === 1) throw new Error('boom');
    },
    delaysMs,
  });
  t.teardown(() => h.stop());
  h.passStarting();
  h.passEnded(true);
  await until(() => calls === 2, 'the second step after the first threw');
  t.is(h.collections, 1);
});

test('obtainGc gives V8\'s full collection: an object only a WeakRef holds is gone after it', async (t) => {
  const gc = obtainGc();
  t.is(typeof gc, 'function');
  const ref = new WeakRef({ big: new Array(1000).fill(1) });
  // A WeakRef's target is kept until the end of the job that made it.
  await sleep(0);
  gc?.();
  t.is(ref.deref(), undefined);
});

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-heap-compaction-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('agent: the first pass (a full build) is followed by two collections, logged at debug; a pass with an unchanged input makes none', async (t) => {
  const root = await tmp(t);
  await mkdir(join(root, 'policies'));
  await writeFile(join(root, 'policies', 'ssh.yaml'), policyYaml('ssh', [22]));
  const config = join(root, 'nodewall.yaml');
  await writeFile(config, `mode: dry-run\nlogLevel: debug\nsources: [${join(root, 'policies')}]\nstateDir: ${join(root, 'state')}\n`);
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = createAgentLogger({ level: 'debug', destination, env: {} });
  const agent = new Agent({ configFile: config, overrides: { nodeName: 'node-a' }, log });
  t.teardown(() => agent.stop('test'));
  await agent.start();
  const collected = () => lines.filter((l) => l['msg'] === 'heap collected after a full build');
  await until(() => collected().length === 2, 'the collections after the first pass');
  t.deepEqual(collected().map((c) => c['step']), [1, 2]);
  t.is(typeof collected()[0]?.['heapBeforeMB'], 'number');
  t.is(typeof collected()[0]?.['heapAfterMB'], 'number');
  await agent.reconcile('resync');
  // A later full build would owe two more (1 s, then 5 s); this pass built nothing: a wait longer than the
  // first step (bounded by timer order: a 3 s sleep armed after the pass ends) shows none.
  await sleep(3000);
  t.is(collected().length, 2);
});
