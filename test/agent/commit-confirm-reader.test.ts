import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { changedPendingReader, newPending, pendingPath, writePending } from '../../src/agent/commit-confirm.js';

test('changedPendingReader re-reads the pending record only when the file changed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nwt-cwd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = 'table inet nodewall {\n}\n';
  const a = newPending({ origin: 'cli', by: 'test', seconds: 30, table: 'nodewall', previous: { kind: 'table', ownership: 'mark', script } });
  await writePending(dir, a);
  const reader = changedPendingReader();
  const read = () => reader(dir);
  const r1 = await read();
  t.like(r1, { kind: 'ok', value: { id: a.id } });
  // Unchanged file: the same parsed record, not a second read.
  t.is(await read(), r1);
  // Replaced (rename, as every writer does): read again.
  const b = newPending({ origin: 'cli', by: 'test', seconds: 30, table: 'nodewall', previous: { kind: 'absent' } });
  await writePending(dir, b);
  t.like(await read(), { kind: 'ok', value: { id: b.id } });
  // Gone (claimed): missing; then corrupt in place: corrupt, never the cached record.
  await unlink(pendingPath(dir));
  t.like(await read(), { kind: 'missing' });
  await writeFile(pendingPath(dir), '{"version":1,');
  t.like(await read(), { kind: 'corrupt' });
});
