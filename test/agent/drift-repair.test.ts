import test from 'ava';
import { pino, type Logger } from 'pino';
import { DriftRepair, type DriftKernel } from '../../src/agent/drift-repair.js';
import { NftWriteLock } from '../../src/agent/nft-lock.js';
import type { ApplyOptions, ApplyResult, PredictableLoad } from '../../src/nft/apply.js';
import { PredictionSwitch, type HashPrediction } from '../../src/agent/table-hash-after-apply.js';
import type { HostModel } from '../../src/policy/model.js';

/** A kernel with one table whose structure hash the test sets; apply puts the model's hash back. */
class FakeKernel implements DriftKernel {
  table: string | undefined;
  applies: { model: HostModel; opts: ApplyOptions }[] = [];
  failWith: string | undefined;

  async tableState(): Promise<{ present: false; error: string } | { present: true; hash: string }> {
    return this.table === undefined ? { present: false, error: 'No such file or directory' } : { present: true, hash: this.table };
  }

  async applyModel(model: HostModel, opts: ApplyOptions): Promise<ApplyResult> {
    this.applies.push({ model, opts });
    if (this.failWith !== undefined) throw new Error(this.failWith);
    this.table = `hash-of-${(model as unknown as { id: string }).id}`;
    return { kind: 'full', reason: 'test', rules: 1, sets: 0, elements: 0 } as unknown as ApplyResult;
  }
}

const model = (id: string): HostModel => ({ id }) as unknown as HostModel;

function logger(): { log: Logger; lines: { msg: string }[] } {
  const lines: { msg: string }[] = [];
  return { lines, log: pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) }) as unknown as Logger };
}

test('nothing applied, in sync: no kernel write', async (t) => {
  const k = new FakeKernel();
  const repair = new DriftRepair(new NftWriteLock(), k);
  const { log } = logger();
  t.is((await repair.check(log)).kind, 'nothing-applied');
  k.table = 'hash-of-a';
  repair.record({ nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce', model: model('a'), tableHash: 'hash-of-a' });
  t.is((await repair.check(log)).kind, 'in-sync');
  t.deepEqual(k.applies, []);
});

test('a flushed or changed table is restored from the last applied model (full replace, no previous)', async (t) => {
  const k = new FakeKernel();
  const repair = new DriftRepair(new NftWriteLock(), k);
  const { log, lines } = logger();
  repair.record({ nftPath: '/x/nft', table: 'nw', mode: 'audit', model: model('a'), tableHash: 'hash-of-a' });
  k.table = undefined; // nft flush ruleset
  const r = await repair.check(log);
  t.like(r, { kind: 'restored', drift: 'missing' });
  t.deepEqual(k.applies.map((a) => [a.model, a.opts]), [[model('a'), { nftPath: '/x/nft', table: 'nw', mode: 'audit', replace: true }]]);
  t.true(lines.some((l) => /table missing/.test(l.msg)));
  t.true(lines.some((l) => l.msg === 'ruleset applied'));
  t.is((await repair.check(log)).kind, 'in-sync');

  k.table = 'hand-edited';
  t.like(await repair.check(log), { kind: 'restored', drift: 'changed' });
  t.is(k.table, 'hash-of-a');
});

test('a failed restore is reported and retried on the next check', async (t) => {
  const k = new FakeKernel();
  const repair = new DriftRepair(new NftWriteLock(), k);
  const { log } = logger();
  repair.record({ nftPath: '/x/nft', table: 'nw', mode: 'enforce', model: model('a'), tableHash: 'hash-of-a' });
  k.failWith = 'simulated nft failure';
  t.like(await repair.check(log), { kind: 'failed', error: 'simulated nft failure' });
  k.failWith = undefined;
  t.like(await repair.check(log), { kind: 'restored' });
});

test('a transaction in flight under the lock is never mistaken for drift', async (t) => {
  const k = new FakeKernel();
  const lock = new NftWriteLock();
  const repair = new DriftRepair(lock, k);
  const { log } = logger();
  k.table = 'hash-of-a';
  repair.record({ nftPath: '/x/nft', table: 'nw', mode: 'enforce', model: model('a'), tableHash: 'hash-of-a' });
  let release!: () => void;
  const inFlight = new Promise<void>((resolve) => (release = resolve));
  // A pass applying model b: mid-transaction the table is in neither state.
  const pass = lock.run(async () => {
    k.table = 'half-written';
    await inFlight;
    k.table = 'hash-of-b';
    repair.record({ nftPath: '/x/nft', table: 'nw', mode: 'enforce', model: model('b'), tableHash: 'hash-of-b' });
  });
  const check = repair.check(log);
  let checked = false;
  void check.then(() => (checked = true));
  await new Promise((r) => setImmediate(r));
  t.false(checked, 'the check waits for the lock');
  t.true(lock.held);
  release();
  await pass;
  t.is((await check).kind, 'in-sync');
  t.deepEqual(k.applies, []);
});

test('forget: nothing is restored any more (dry-run, removeOnStop)', async (t) => {
  const k = new FakeKernel();
  const repair = new DriftRepair(new NftWriteLock(), k);
  const { log } = logger();
  repair.record({ nftPath: '/x/nft', table: 'nw', mode: 'enforce', model: model('a'), tableHash: 'hash-of-a' });
  repair.forget();
  t.is((await repair.check(log)).kind, 'nothing-applied');
  t.deepEqual(k.applies, []);
});

test('the lock runs holders one at a time, in order, and survives a rejection', async (t) => {
  const lock = new NftWriteLock();
  const order: string[] = [];
  const slow = lock.run(async () => {
    order.push('a-start');
    await new Promise((r) => setImmediate(r));
    order.push('a-end');
  });
  const failing = lock.run(async () => {
    order.push('b');
    throw new Error('boom');
  });
  const last = lock.run(async () => {
    order.push('c');
    return 42;
  });
  await slow;
  await t.throwsAsync(failing, { message: 'boom' });
  t.is(await last, 42);
  t.deepEqual(order, ['a-start', 'a-end', 'b', 'c']);
  t.false(lock.held);
});

/** FakeKernel with the cheap structural listing too, counting the listings of each kind. */
class StructuredKernel extends FakeKernel {
  structure: string | undefined = 'chains-of-a';
  full = 0;
  cheap = 0;

  override async tableState(): Promise<{ present: false; error: string } | { present: true; hash: string }> {
    this.full++;
    return super.tableState();
  }

  async structureState(): Promise<{ present: false; error: string } | { present: true; hash: string }> {
    this.cheap++;
    return this.table === undefined || this.structure === undefined ? { present: false, error: 'not listed' } : { present: true, hash: this.structure };
  }
}

test('structure depth: the cheap listing only once a full check verified the table; a structural difference falls through to the full check and is repaired', async (t) => {
  const k = new StructuredKernel();
  const repair = new DriftRepair(new NftWriteLock(), k);
  const { log } = logger();
  k.table = 'hash-of-a';
  repair.record({ nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce', model: model('a'), tableHash: 'hash-of-a' });
  // Unknown cheap hash: a full check, which learns it.
  t.is((await repair.check(log, 'structure')).kind, 'in-sync');
  t.is(k.full, 1);
  t.is(repair.applied?.cheapHash, 'chains-of-a');
  // Known: the cheap listing alone.
  t.is((await repair.check(log, 'structure')).kind, 'in-sync');
  t.deepEqual([k.full, k.cheap], [1, 2]);
  // A rule edited inside a chain: invisible to the cheap listing, caught by the next full check.
  k.table = 'rule-edited';
  t.is((await repair.check(log, 'structure')).kind, 'in-sync');
  t.like(await repair.check(log, 'full'), { kind: 'restored', drift: 'changed' });
  t.is(k.table, 'hash-of-a');
  t.is(repair.applied?.cheapHash, undefined, 'relearnt after a restore');
  t.is((await repair.check(log, 'structure')).kind, 'in-sync');
  t.is(repair.applied?.cheapHash, 'chains-of-a');
  // A chain deleted (structure differs): the cheap check falls through to the full one, which repairs.
  const applies = k.applies.length;
  k.structure = 'chain-gone';
  k.table = 'chain-gone-full';
  t.like(await repair.check(log, 'structure'), { kind: 'restored', drift: 'changed' });
  t.is(k.applies.length, applies + 1);
  // The table flushed: the cheap listing does not show it, the full check says missing.
  k.structure = 'chains-of-a';
  await repair.check(log, 'structure');
  k.table = undefined;
  t.like(await repair.check(log, 'structure'), { kind: 'restored', drift: 'missing' });
});

test('record keeps the learnt structural hash while the table hash is the same (element-only deltas) and drops it when it changed', async (t) => {
  const k = new StructuredKernel();
  const repair = new DriftRepair(new NftWriteLock(), k);
  const { log } = logger();
  k.table = 'hash-of-a';
  const base = { nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce' as const, model: model('a'), tableHash: 'hash-of-a' };
  repair.record(base);
  await repair.check(log, 'structure');
  t.is(repair.applied?.cheapHash, 'chains-of-a');
  repair.record({ ...base, model: model('a2') });
  t.is(repair.applied?.cheapHash, 'chains-of-a', 'element-only delta: same table hash');
  repair.record({ ...base, model: model('b'), tableHash: 'hash-of-b' });
  t.is(repair.applied?.cheapHash, undefined, 'chain delta: new table hash');
  repair.record({ ...base, model: model('c'), tableHash: 'hash-of-b', table: 'other' });
  t.is(repair.applied?.cheapHash, undefined);
  // Without a structural listing every check is a full one.
  const plain = new FakeKernel();
  plain.table = 'hash-of-a';
  const r2 = new DriftRepair(new NftWriteLock(), plain);
  r2.record(base);
  t.is((await r2.check(log, 'structure')).kind, 'in-sync');
  t.is(r2.applied?.cheapHash, undefined);
});

/** A kernel that predicts the hash of what it loads (as the real one does in a scratch namespace). */
class PredictingKernel extends FakeKernel {
  reads = 0;
  predicted = 'hash-of-a';
  structure = 's-a';
  override async tableState(): Promise<{ present: false; error: string } | { present: true; hash: string }> {
    this.reads++;
    return super.tableState();
  }
  override async applyModel(model: HostModel, opts: ApplyOptions): Promise<ApplyResult> {
    const r = await super.applyModel(model, opts);
    opts.onFullLoad?.({ structureHash: 's-a', structureScript: '' });
    return { ...r, transactions: 1, predictable: opts.onFullLoad !== undefined, build: 'one-transaction', structureHash: this.structure };
  }
  predict(_o: unknown, rendered: PredictableLoad): HashPrediction {
    return { structureHash: rendered.structureHash, outcome: Promise.resolve({ hash: this.predicted }) };
  }
}

test('a repair records the predicted hash of what it loaded, with no read-back; a prediction of another structure is not used', async (t) => {
  const k = new PredictingKernel();
  const repair = new DriftRepair(new NftWriteLock(), k, new PredictionSwitch());
  const { log } = logger();
  repair.record({ nftPath: '/x/nft', table: 'nw', mode: 'enforce', model: model('a'), tableHash: 'hash-of-a' });
  k.table = 'hand-edited';
  t.like(await repair.check(log), { kind: 'restored', drift: 'changed' });
  t.is(k.reads, 1, 'only the check read the table');
  t.is(repair.applied?.tableHash, 'hash-of-a');
  // Drift again while that predicted hash is unconfirmed (no check has listed it yet): this repair is read back,
  // not predicted (the read-back equals the prediction: it was real drift, and predicting stays on).
  k.predicted = 'predicted-other';
  k.table = 'hand-edited';
  const before = k.reads;
  await repair.check(log);
  t.is(k.reads, before + 2, 'the check, then the read-back');
  t.is(repair.applied?.tableHash, 'hash-of-a');
  // A load of another structure than predicted: read back.
  k.structure = 's-b';
  k.table = 'hand-edited-2';
  const reads = k.reads;
  await repair.check(log);
  t.is(k.reads, reads + 2, 'the check, then the read-back');
  t.is(repair.applied?.tableHash, 'hash-of-a');
});

/** StructuredKernel that runs `between` once, right after the first listing (of either kind) of a check. */
class InterleavingKernel extends StructuredKernel {
  between: (() => void) | undefined;

  #after<T>(r: T): T {
    const b = this.between;
    this.between = undefined;
    b?.();
    return r;
  }

  pendingChange(): (() => void) | undefined {
    return this.between;
  }

  override async tableState(): Promise<{ present: false; error: string } | { present: true; hash: string }> {
    return this.#after(await super.tableState());
  }

  override async structureState(): Promise<{ present: false; error: string } | { present: true; hash: string }> {
    return this.#after(await super.structureState());
  }
}

for (const depth of ['full', 'structure'] as const) {
  test(`learning the structural hash (${depth} check): a chain added between the two listings is repaired, never learnt as in sync`, async (t) => {
    const k = new InterleavingKernel();
    const repair = new DriftRepair(new NftWriteLock(), k);
    const { log } = logger();
    k.table = 'hash-of-a';
    repair.record({ nftPath: '/usr/sbin/nft', table: 'nodewall', mode: 'enforce', model: model('a'), tableHash: 'hash-of-a' });
    // Someone adds a chain while the check lists the table: both listings see it from then on.
    k.between = () => {
      k.table = 'chain-added';
      k.structure = 'chains-of-a-plus-one';
    };
    const first = await repair.check(log, depth);
    t.true(k.pendingChange() === undefined, 'the change landed between the listings');
    // Either this check saw it, or the cheap hash it learnt is that of the applied table, so the next cheap check
    // falls through to the full one and repairs it. Never: in sync while the chain is there.
    const second = first.kind === 'restored' ? first : await repair.check(log, 'structure');
    t.like(second, { kind: 'restored', drift: 'changed' });
    t.is(k.table, 'hash-of-a');
    t.not(repair.applied?.cheapHash, 'chains-of-a-plus-one');
  });
}

// --- a predicted hash that is wrong: no repair loop ------------------------------------------------------

const applied = { nftPath: '/x/nft', table: 'nw', mode: 'enforce' as const, model: model('a'), tableHash: 'hash-of-a', structureHash: 's-a', build: 'one-transaction' as const };

test('a predicted hash that differs from the live listing: one repair read back, a warning with both hashes once, predicting off for good; never a repair loop', async (t) => {
  const k = new PredictingKernel();
  const sw = new PredictionSwitch();
  const repair = new DriftRepair(new NftWriteLock(), k, sw);
  const { log, lines } = logger();
  // What a future render feature could do: the scratch namespace lists the table otherwise than the live one.
  k.predicted = 'predicted-wrong';
  k.table = 'hash-of-a';
  // The pass's full load recorded the (wrong) prediction.
  repair.record({ ...applied, tableHash: 'predicted-wrong' }, 'predicted');
  const outcomes: string[] = [];
  for (let i = 0; i < 8; i++) outcomes.push((await repair.check(log)).kind);
  t.deepEqual(outcomes, ['restored', 'in-sync', 'in-sync', 'in-sync', 'in-sync', 'in-sync', 'in-sync', 'in-sync']);
  t.is(k.applies.length, 1, 'one repair of our own table, then never again');
  t.is(k.applies[0]?.opts.onFullLoad, undefined, 'that repair was not predicted: it was read back');
  t.is(repair.applied?.tableHash, 'hash-of-a', 'the read-back is adopted');
  t.false(sw.enabled);
  t.deepEqual(sw.off, { predicted: 'predicted-wrong', readBack: 'hash-of-a' });
  const warned = lines.filter((l) => /prediction turned off/.test(l.msg)) as unknown as { predicted: string; readBack: string }[];
  t.is(warned.length, 1);
  t.like(warned[0], { predicted: 'predicted-wrong', readBack: 'hash-of-a' });
  // Real drift later: repaired, read back (no prediction any more), no second warning.
  k.table = 'hand-edited';
  const reads = k.reads;
  t.like(await repair.check(log), { kind: 'restored' });
  t.is(k.reads, reads + 2);
  t.is(k.applies.at(-1)?.opts.onFullLoad, undefined);
  t.is((await repair.check(log)).kind, 'in-sync');
  t.is(lines.filter((l) => /prediction turned off/.test(l.msg)).length, 1);
});

test('a right prediction and an outside change right after the apply: the change is repaired (never adopted) and predicting stays on', async (t) => {
  const k = new PredictingKernel();
  const sw = new PredictionSwitch();
  const repair = new DriftRepair(new NftWriteLock(), k, sw);
  const { log } = logger();
  repair.record(applied, 'predicted');
  k.table = 'chain-added-right-after';
  t.like(await repair.check(log), { kind: 'restored', drift: 'changed' });
  t.is(k.table, 'hash-of-a', 'the outside change was replaced');
  t.is(repair.applied?.tableHash, 'hash-of-a');
  t.true(sw.enabled, 'the read-back after the repair matched the prediction');
  t.is((await repair.check(log)).kind, 'in-sync');
  // Confirmed: the next repair predicts again (only the check reads the table).
  k.table = 'edited-again';
  const reads = k.reads;
  t.like(await repair.check(log), { kind: 'restored' });
  t.is(k.reads, reads + 1);
  t.not(k.applies.at(-1)?.opts.onFullLoad, undefined);
});

test('an unconfirmed prediction stays unconfirmed through a kept hash (element-only delta); a check that lists it confirms it', async (t) => {
  const k = new PredictingKernel();
  const sw = new PredictionSwitch();
  const repair = new DriftRepair(new NftWriteLock(), k, sw);
  const { log } = logger();
  k.predicted = 'predicted-wrong';
  k.table = 'hash-of-a';
  repair.record({ ...applied, tableHash: 'predicted-wrong' }, 'predicted');
  repair.record({ ...applied, model: model('a'), tableHash: 'predicted-wrong' }, 'kept');
  t.like(await repair.check(log), { kind: 'restored' });
  t.is(k.applies[0]?.opts.onFullLoad, undefined, 'still unconfirmed after the kept hash: read back');
  t.false(sw.enabled);
  // Confirmed by an in-sync check: a later drift is repaired with a prediction (a fresh switch).
  const sw2 = new PredictionSwitch();
  const r2 = new DriftRepair(new NftWriteLock(), k, sw2);
  k.predicted = 'hash-of-a';
  r2.record(applied, 'predicted');
  t.is((await r2.check(log)).kind, 'in-sync');
  k.table = 'edited';
  t.like(await r2.check(log), { kind: 'restored' });
  t.not(k.applies.at(-1)?.opts.onFullLoad, undefined, 'confirmed: predicted');
  t.true(sw2.enabled);
  // A prediction equal to the confirmed hash recorded before is confirmed; a read-back record always is.
  const r3 = new DriftRepair(new NftWriteLock(), k, new PredictionSwitch());
  r3.record(applied);
  r3.record(applied, 'predicted');
  k.table = 'edited';
  await r3.check(log);
  t.not(k.applies.at(-1)?.opts.onFullLoad, undefined, 'predicted equal to a listed hash: confirmed');
  r3.record({ ...applied, tableHash: 'predicted-new' }, 'predicted');
  r3.record({ ...applied, tableHash: 'read-back' }, 'read-back');
  k.table = 'edited';
  await r3.check(log);
  t.not(k.applies.at(-1)?.opts.onFullLoad, undefined, 'read back: confirmed');
});

/**
 * The real apply since make-before-break: a table that is there is replaced staged in several transactions and
 * never predicted (onFullLoad is for cold starts); a missing one is cold-started, staged when it has elements.
 */
class StagedKernel extends PredictingKernel {
  elements = true;
  override async applyModel(model: HostModel, opts: ApplyOptions): Promise<ApplyResult> {
    const cold = this.table === undefined;
    this.applies.push({ model, opts });
    this.table = `hash-of-${(model as unknown as { id: string }).id}`;
    const base = { kind: 'full', reason: 'test', rules: 1, sets: 0, elements: 0, structureHash: this.structure } as unknown as ApplyResult;
    if (!cold) return { ...base, transactions: 6, predictable: false, build: 'staged' };
    opts.onFullLoad?.({ structureHash: this.structure, structureScript: '' });
    return { ...base, transactions: this.elements ? 3 : 1, predictable: opts.onFullLoad !== undefined, build: this.elements ? 'staged' : 'one-transaction' };
  }
}

test('a wrong prediction of a staged cold start is found by the (staged, read back) repair of the table: predicting off, one warning', async (t) => {
  const k = new StagedKernel();
  const sw = new PredictionSwitch();
  const repair = new DriftRepair(new NftWriteLock(), k, sw);
  const { log, lines } = logger();
  k.table = 'hash-of-a';
  // The pass's staged cold start recorded a wrong prediction; the repair replaces the table made before break.
  repair.record({ ...applied, tableHash: 'predicted-wrong', build: 'staged' }, 'predicted');
  const outcomes: string[] = [];
  for (let i = 0; i < 4; i++) outcomes.push((await repair.check(log)).kind);
  t.deepEqual(outcomes, ['restored', 'in-sync', 'in-sync', 'in-sync']);
  t.false(sw.enabled, 'the read-back of a staged build differs from the prediction of a staged build: the prediction is wrong');
  t.deepEqual(sw.off, { predicted: 'predicted-wrong', readBack: 'hash-of-a' });
  t.is(lines.filter((l) => /prediction turned off/.test(l.msg)).length, 1);
});

test('a one-transaction cold start\'s prediction is not judged by a staged repair (their listings differ in order)', async (t) => {
  const k = new StagedKernel();
  const sw = new PredictionSwitch();
  const repair = new DriftRepair(new NftWriteLock(), k, sw);
  const { log } = logger();
  k.table = 'hash-of-a';
  repair.record({ ...applied, tableHash: 'predicted-one-transaction', build: 'one-transaction' }, 'predicted');
  t.like(await repair.check(log), { kind: 'restored' });
  t.true(sw.enabled);
  // An element delta afterwards keeps the hash and the build it came from.
  repair.record({ ...applied, tableHash: 'x', build: 'staged' }, 'predicted');
  repair.record({ ...applied, tableHash: 'x', build: undefined }, 'kept');
  t.is(repair.applied?.build, 'staged');
});
