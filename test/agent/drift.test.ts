// The drift check's kernel reads report nft failures in nft-exec's words: what
// ran, how it failed, what to do (not a bare "exited with null").

import test from 'ava';
import { deleteTable, structureState, tableBlock, tableState } from '../../src/agent/drift.js';

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

test('tableBlock: our table out of a listing of several, or undefined', (t) => {
  const listing = 'table inet other {\n\tchain x {\n\t}\n}\ntable inet nodewall {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\ntable inet zz {\n}\n';
  t.is(tableBlock(listing, 'nodewall'), 'table inet nodewall {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}');
  t.is(tableBlock(listing, 'nodewal'), undefined);
  t.is(tableBlock('', 'nodewall'), undefined);
});

test('structureState with an nft that does not exist: not present, with the reason', async (t) => {
  const s = await structureState('/nonexistent/nft', 'nodewall');
  t.false(s.present);
  if (!s.present) t.regex(s.error, /\/nonexistent\/nft/);
});
