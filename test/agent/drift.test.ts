// The drift check's kernel reads report nft failures in nft-exec's words: what
// ran, how it failed, what to do (not a bare "exited with null").

import test from 'ava';
import { deleteTable, tableState } from '../../src/agent/drift.js';

test('tableState with an nft.path that does not exist says so and names the key', async (t) => {
  const s = await tableState('/nonexistent/nft', 'nodewall');
  t.false(s.present);
  if (!s.present) t.regex(s.error, /\/nonexistent\/nft.*nft\.path.*does not exist/);
});

test('deleteTable with a program that fails reports its failure, never a silent success', async (t) => {
  const r = await deleteTable('/bin/false', 'nodewall');
  t.false(r.deleted);
  t.truthy(r.error);
});
