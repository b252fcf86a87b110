// What `nodewall status` says about commit-confirm, from the files in the state dir.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { appendOutcome, newPending, pendingFileName, writePending } from '../../src/agent/commit-confirm.js';
import { confirmStatus, pendingLines } from '../../src/cli/commands/confirm.js';

test('a pending confirmation: origin, who, deadline, rollback target and watchdog; then the last outcome', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-confirm-status-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.deepEqual(await confirmStatus(dir), { lines: [], json: { pendingConfirmation: null, lastConfirmation: null } });

  const r = { ...newPending({ origin: 'agent', by: 'agent pid 7', seconds: 120, table: 'nodewall', previous: { kind: 'absent' }, inputHash: 'abc' }), watchdogPid: 4194305 };
  await writePending(dir, r);
  const s = await confirmStatus(dir);
  t.regex(s.lines[0] ?? '', new RegExp(`^pending confirmation: agent change ${r.id} by agent pid 7, deadline ${r.deadline.replace(/\./g, '\\.')} \\(in 1[12]\\d s\\)$`));
  t.regex(s.lines[1] ?? '', /rolls back to no table; watchdog pid 4194305 \(not running\)$/);
  t.like(s.json['pendingConfirmation'] as object, { id: r.id, origin: 'agent', deadline: r.deadline, rollsBackTo: 'absent', watchdogPid: 4194305 });

  await appendOutcome(dir, { id: r.id, origin: 'agent', outcome: 'rolled-back', at: r.deadline, by: 'watchdog pid 9', detail: 'not confirmed' });
  await writeFile(join(dir, pendingFileName), '{"version":1,');
  const after = await confirmStatus(dir);
  t.regex(after.lines[0] ?? '', /^pending confirmation: UNREADABLE \(not valid JSON/);
  t.is(after.lines[1], `last confirmation: rolled-back ${r.id} (agent) at ${r.deadline} by watchdog pid 9: not confirmed`);
  t.like(after.json['pendingConfirmation'] as object, { unreadable: (after.json['pendingConfirmation'] as { unreadable: string }).unreadable });
});

test('a passed deadline reads as rolling back', (t) => {
  const r = newPending({ origin: 'cli', by: 'root (pid 1)', seconds: 1, table: 'nodewall', previous: { kind: 'absent' } });
  const lines = pendingLines({ ...r, deadlineMono: 0 }, undefined, undefined);
  t.regex(lines[0] ?? '', /\(passed: rolling back\)$/);
  t.regex(lines[1] ?? '', /no watchdog$/);
});
