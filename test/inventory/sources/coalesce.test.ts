import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { coalesce } from '../../../src/inventory/sources/coalesce.js';
import { fakeTimers } from '../../helpers/fake-timers.js';

/** A coalescer on a fake clock that records each hand-off: when, and how many notifications it covered. */
function rig(windowMs: number, onHandOff?: () => void) {
  const clock = fakeTimers();
  let notified = 0;
  const handOffs: { at: number; upTo: number }[] = [];
  const c = coalesce(() => {
    handOffs.push({ at: clock.now(), upTo: notified });
    onHandOff?.();
  }, windowMs, clock.timers);
  return {
    clock,
    c,
    handOffs,
    notify() {
      notified++;
      c.notify();
    },
    get notified() {
      return notified;
    },
  };
}

test('an isolated change is handed off at once (next timer turn, not inside notify)', (t) => {
  const r = rig(200);
  r.notify();
  t.deepEqual(r.handOffs, [], 'not synchronously: the caller may be in the middle of applying a batch');
  t.true(r.c.pending);
  r.clock.advance(0);
  t.deepEqual(r.handOffs, [{ at: 0, upTo: 1 }]);
  t.false(r.c.pending);
  // The window ends quietly: idle again, nothing more is handed off and no timer is left.
  r.clock.advance(1000);
  t.is(r.handOffs.length, 1);
  t.is(r.clock.pending(), 0);
});

test('changes notified in the same turn are one hand-off', (t) => {
  const r = rig(200);
  for (let i = 0; i < 50; i++) r.notify();
  r.clock.advance(0);
  t.deepEqual(r.handOffs, [{ at: 0, upTo: 50 }]);
});

test('a burst: the first change at once, the rest together at the end of the window', (t) => {
  const r = rig(200);
  r.notify();
  r.clock.advance(0);
  for (let i = 0; i < 10; i++) {
    r.clock.advance(10);
    r.notify();
  }
  t.is(r.handOffs.length, 1);
  r.clock.advance(99);
  t.is(r.handOffs.length, 1, 'still inside the window');
  r.clock.advance(1);
  t.deepEqual(r.handOffs, [{ at: 0, upTo: 1 }, { at: 200, upTo: 11 }]);
  r.clock.advance(200);
  t.is(r.handOffs.length, 2);
  t.is(r.clock.pending(), 0);
});

test('an isolated change after a quiet window is handed off at once again', (t) => {
  const r = rig(200);
  r.notify();
  r.clock.advance(500);
  r.notify();
  r.clock.advance(0);
  t.deepEqual(r.handOffs, [{ at: 0, upTo: 1 }, { at: 500, upTo: 2 }]);
});

test('a continuous stream is handed off once per window, never starved', (t) => {
  const r = rig(100);
  for (let ms = 0; ms < 1000; ms += 5) {
    r.notify();
    r.clock.advance(5);
  }
  r.clock.runAll();
  t.deepEqual(r.handOffs.map((h) => h.at), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  t.is(r.handOffs.at(-1)?.upTo, r.notified);
});

test('a notify from inside the hand-off is handed off when that window ends', (t) => {
  let again = true;
  const r = rig(50, () => {
    if (again) {
      again = false;
      r.notify();
    }
  });
  r.notify();
  r.clock.advance(0);
  t.is(r.handOffs.length, 1);
  t.true(r.c.pending);
  r.clock.advance(50);
  t.deepEqual(r.handOffs, [{ at: 0, upTo: 1 }, { at: 50, upTo: 2 }]);
});

test('a hand-off that throws leaves the coalescer working', (t) => {
  const clock = fakeTimers();
  let calls = 0;
  const c = coalesce(() => {
    calls++;
    if (calls === 1) throw new Error('boom');
  }, 100, clock.timers);
  c.notify();
  t.throws(() => clock.advance(0), { message: 'boom' });
  c.notify();
  clock.advance(100);
  t.is(calls, 2);
  t.false(c.pending);
});

test('cancel drops the pending hand-off and the window', (t) => {
  const r = rig(100);
  r.notify();
  r.clock.advance(0);
  r.notify();
  r.c.cancel();
  t.false(r.c.pending);
  t.is(r.clock.pending(), 0);
  r.clock.advance(1000);
  t.is(r.handOffs.length, 1);
  // Usable again after cancel.
  r.notify();
  r.clock.advance(0);
  t.is(r.handOffs.length, 2);
});

test('window 0: every turn with changes is one hand-off', (t) => {
  const r = rig(0);
  r.notify();
  r.notify();
  r.clock.advance(0);
  r.notify();
  r.clock.advance(0);
  t.deepEqual(r.handOffs, [{ at: 0, upTo: 2 }, { at: 0, upTo: 3 }]);
});

test('an invalid window is refused', (t) => {
  for (const w of [-1, Number.NaN, Number.POSITIVE_INFINITY]) t.throws(() => coalesce(() => undefined, w), { instanceOf: RangeError });
});

test('with real timers: a burst in one turn is one hand-off, a later change another', async (t) => {
  let runs = 0;
  const c = coalesce(() => void runs++, 20);
  for (let i = 0; i < 5; i++) c.notify();
  // Waiting for an event (the hand-off), not asserting a margin.
  for (let i = 0; i < 1000 && runs === 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.is(runs, 1);
  c.notify();
  for (let i = 0; i < 1000 && runs === 1; i++) await new Promise((r) => setTimeout(r, 5));
  t.is(runs, 2);
  c.cancel();
});

// Random streams: gaps between notifications (0 = same turn), window sizes.
const stream = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 400 })), { minLength: 1, maxLength: 200 });
const windowArb = fc.integer({ min: 0, max: 250 });

testProp('no notification is lost, the last is always handed off, each within one window', [stream, windowArb], (t, gaps, windowMs) => {
  const r = rig(windowMs);
  const arrivals: number[] = [];
  for (const gap of gaps) {
    r.clock.advance(gap);
    arrivals.push(r.clock.now());
    r.notify();
  }
  r.clock.runAll();
  t.false(r.c.pending);
  t.is(r.clock.pending(), 0);
  t.is(r.handOffs.at(-1)?.upTo, arrivals.length, 'the last state is handed off');
  // Each notification i (1-based) is covered by the first hand-off with upTo >= i, within windowMs.
  let h = 0;
  for (let i = 1; i <= arrivals.length; i++) {
    while ((r.handOffs[h]?.upTo ?? Infinity) < i) h++;
    const handOff = r.handOffs[h];
    if (handOff === undefined) return t.fail(`notification ${i} never handed off`);
    const delay = handOff.at - (arrivals[i - 1] ?? NaN);
    t.true(delay >= 0 && delay <= windowMs, `notification ${i}: delay ${delay} > window ${windowMs}`);
  }
  return undefined;
});

testProp('hand-offs are at least one window apart and never empty', [stream, windowArb], (t, gaps, windowMs) => {
  const r = rig(windowMs);
  for (const gap of gaps) {
    r.clock.advance(gap);
    r.notify();
  }
  r.clock.runAll();
  for (let i = 1; i < r.handOffs.length; i++) {
    const [a, b] = [r.handOffs[i - 1], r.handOffs[i]];
    if (a === undefined || b === undefined) return t.fail('hole');
    t.true(b.at - a.at >= windowMs, `hand-offs at ${a.at} and ${b.at}`);
    t.true(b.upTo > a.upTo, 'a hand-off carries at least one new notification');
  }
  t.true(r.handOffs.length <= gaps.length);
  return undefined;
});

testProp('an isolated notification (none handed off in the window before it) goes out at once', [stream, windowArb], (t, gaps, windowMs) => {
  const r = rig(windowMs);
  for (const gap of gaps) {
    r.clock.advance(gap);
    const now = r.clock.now();
    const lastHandOff = r.handOffs.at(-1);
    const idle = !r.c.pending && (lastHandOff === undefined || now - lastHandOff.at > windowMs);
    const before = r.handOffs.length;
    r.notify();
    if (idle) {
      r.clock.advance(0);
      t.is(r.handOffs.length, before + 1);
      t.is(r.handOffs.at(-1)?.at, now);
    }
  }
});

test('a hand-off that returns false (nothing to hand on yet) opens no window: the next change goes out at once', (t) => {
  const clock = fakeTimers();
  const at: number[] = [];
  let ready = false;
  const c = coalesce(() => {
    at.push(clock.now());
    return ready;
  }, 200, clock.timers);
  c.notify();
  clock.advance(0);
  t.is(clock.pending(), 0, 'no window after a hand-off that handed nothing on');
  clock.advance(10);
  ready = true;
  c.notify();
  clock.advance(0);
  t.deepEqual(at, [0, 10]);
  // A real hand-off opens the window as usual.
  clock.advance(10);
  c.notify();
  clock.advance(0);
  t.deepEqual(at, [0, 10]);
  clock.advance(190);
  t.deepEqual(at, [0, 10, 210]);
});

test('a notify from inside a hand-off that returns false goes out on the next turn', (t) => {
  const clock = fakeTimers();
  const at: number[] = [];
  const c = coalesce(() => {
    at.push(clock.now());
    if (at.length === 1) c.notify();
    return at.length > 1;
  }, 200, clock.timers);
  c.notify();
  clock.advance(0);
  t.deepEqual(at, [0, 0]);
  t.false(c.pending);
});
