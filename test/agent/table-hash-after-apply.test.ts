import test from 'ava';
import type { AppliedRuleset } from '../../src/agent/drift-repair.js';
import { PredictionSwitch, keptTableHash, startPrediction, tableHashAfterApply, type AfterApply } from '../../src/agent/table-hash-after-apply.js';
import type { ApplyResult } from '../../src/nft/apply.js';
import type { HostModel } from '../../src/policy/model.js';

const before: AppliedRuleset = {
  nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce', model: {} as HostModel, tableHash: 'terse-1', structureHash: 's1',
};

function after(result: Partial<ApplyResult>, over: Partial<AfterApply> = {}): AfterApply {
  return { nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce', fromMemory: true, result: { kind: 'delta', chains: [], structureHash: 's1', ...result } as ApplyResult, ...over };
}

test('an element-only delta or a noop keeps the recorded hash (the terse listing has no elements)', (t) => {
  t.is(keptTableHash(before, after({ kind: 'delta' })), 'terse-1');
  t.is(keptTableHash(before, after({ kind: 'noop' })), 'terse-1');
});

test('anything that can change the listing is read back', (t) => {
  t.is(keptTableHash(before, after({ kind: 'full' })), undefined, 'full replace');
  t.is(keptTableHash(before, after({ kind: 'delta', chains: ['nw_p_x_in'] })), undefined, 'chain delta');
  t.is(keptTableHash(before, after({ kind: 'delta', structureHash: 's2' })), undefined, 'another structure');
  t.is(keptTableHash(undefined, after({ kind: 'delta' })), undefined, 'nothing recorded');
  t.is(keptTableHash({ ...before, tableHash: undefined }, after({ kind: 'delta' })), undefined, 'table was absent');
  t.is(keptTableHash(before, after({ kind: 'delta' }, { fromMemory: false })), undefined, 'kernel was read (after drift)');
  t.is(keptTableHash(before, after({ kind: 'delta' }, { table: 'other' })), undefined, 'another table');
  t.is(keptTableHash(before, after({ kind: 'delta' }, { nftPath: '/sbin/nft' })), undefined, 'another nft');
  t.is(keptTableHash(before, after({ kind: 'delta' }, { mode: 'audit' })), undefined, 'another mode');
});

test('a cold start (one transaction or staged) records the predicted hash of its own structure, nothing read back', async (t) => {
  const prediction = { structureHash: 's2', outcome: Promise.resolve({ hash: 'predicted-2' }) };
  const full = after({ kind: 'full', structureHash: 's2', transactions: 1, predictable: true }, { nftPath: '/nonexistent/nft' });
  t.deepEqual(await tableHashAfterApply(before, full, prediction), { hash: 'predicted-2', source: 'predicted' });
  const staged = after({ kind: 'full', structureHash: 's2', transactions: 3, predictable: true }, { nftPath: '/nonexistent/nft' });
  t.deepEqual(await tableHashAfterApply(before, staged, prediction), { hash: 'predicted-2', source: 'predicted' });
  // The same after a drift (kernel read) or with nothing recorded before.
  t.is((await tableHashAfterApply(undefined, { ...full, fromMemory: false }, prediction)).source, 'predicted');
});

test('a prediction that does not describe the result is not used: read back (here: nft missing -> absent)', async (t) => {
  const prediction = { structureHash: 's2', outcome: Promise.resolve({ hash: 'predicted-2' }) };
  const nft = { nftPath: '/nonexistent/nft' };
  for (const [what, result] of [
    ['another structure', { kind: 'full', structureHash: 's3', transactions: 1, predictable: true }],
    ['a make-before-break replace (or a full load after a failed delta)', { kind: 'full', structureHash: 's2', transactions: 6, predictable: false }],
    ['a chain delta', { kind: 'delta', structureHash: 's2', transactions: 1, chains: ['nw_p_x_in'] }],
  ] as const) {
    const r = await tableHashAfterApply(before, after(result, nft), prediction);
    t.deepEqual(r, { hash: undefined, source: 'read-back' }, what);
  }
  t.deepEqual(await tableHashAfterApply(before, after({ kind: 'full', structureHash: 's2', transactions: 1, predictable: true }, nft)), { hash: undefined, source: 'read-back' }, 'no prediction');
  // Skipped (no unshare, a wrapper nft): read back, and why is kept for the debug log.
  const skipped = { structureHash: 's2', outcome: Promise.resolve({ skipped: 'no unshare' }) };
  t.deepEqual(await tableHashAfterApply(before, after({ kind: 'full', structureHash: 's2', transactions: 1, predictable: true }, nft), skipped), { hash: undefined, source: 'read-back', skipped: 'no unshare' });
});

test('an element-only delta keeps the recorded hash even with a prediction at hand', async (t) => {
  const prediction = { structureHash: 's1', outcome: Promise.resolve({ hash: 'predicted-1' }) };
  t.deepEqual(await tableHashAfterApply(before, after({ kind: 'delta' }), prediction), { hash: 'terse-1', source: 'kept' });
});

test('the prediction switch: on until disabled once (true only then), and a disabled switch starts no prediction at all', async (t) => {
  const sw = new PredictionSwitch();
  t.true(sw.enabled);
  t.true(sw.disable('p', 'r'));
  t.false(sw.disable('p2', 'r2'), 'logged once');
  t.deepEqual(sw.off, { predicted: 'p', readBack: 'r' });
  // An nft that does not exist would fail if anything were run: the outcome says why nothing was.
  const p = startPrediction({ nftPath: '/nonexistent/nft', table: 'nw' }, { structureHash: 's1', structureScript: 'x' }, sw);
  t.is(p.structureHash, 's1');
  t.regex(String(((await p.outcome) as { skipped?: string }).skipped), /prediction turned off for this process/);
  // Read back then (here: nft missing -> absent), with that reason.
  const full = after({ kind: 'full', structureHash: 's1', transactions: 1, predictable: true }, { nftPath: '/nonexistent/nft' });
  t.like(await tableHashAfterApply(before, full, p), { source: 'read-back', skipped: 'prediction turned off for this process: a predicted hash differed from the live table' });
});
