import test from 'ava';
import type { AppliedRuleset } from '../../src/agent/drift-repair.js';
import { keptTableHash, type AfterApply } from '../../src/agent/table-hash-after-apply.js';
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
