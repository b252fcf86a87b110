import test from 'ava';
import { debounce } from '../../src/agent/debounce.js';
import { fakeTimers } from '../helpers/fake-timers.js';

test('a burst of events runs once, after the quiet time, with every reason', (t) => {
  const f = fakeTimers();
  const runs: string[][] = [];
  const d = debounce((r) => runs.push(r), 300, f.timers);
  d.trigger('watch:a.yaml');
  f.advance(100);
  d.trigger('watch:.a.yaml.tmp');
  f.advance(100);
  d.trigger('watch:a.yaml');
  f.advance(299);
  t.deepEqual(runs, []);
  t.true(d.pending);
  f.advance(1);
  t.deepEqual(runs, [['watch:a.yaml', 'watch:.a.yaml.tmp']]);
  t.false(d.pending);
  t.is(f.pending(), 0);
});

test('events after a run start a new batch; cancel drops a pending one', (t) => {
  const f = fakeTimers();
  const runs: string[][] = [];
  const d = debounce((r) => runs.push(r), 300, f.timers);
  d.trigger('a');
  f.advance(300);
  d.trigger('b');
  f.advance(300);
  d.trigger('c');
  d.cancel();
  f.advance(1000);
  t.deepEqual(runs, [['a'], ['b']]);
});

test('with real timers the callback fires once', async (t) => {
  let runs = 0;
  const d = debounce(() => runs++, 20);
  for (let i = 0; i < 5; i++) d.trigger('x');
  await new Promise((r) => setTimeout(r, 80));
  t.is(runs, 1);
});

test('a stream that never goes quiet still runs every maxWaitMs, with every reason', (t) => {
  const f = fakeTimers();
  const runs: string[][] = [];
  const d = debounce((r) => runs.push(r), 300, f.timers, 3000);
  // An event every 100 ms for 10 s: the quiet time alone would never run.
  for (let ms = 0; ms < 10_000; ms += 100) {
    d.trigger(`e${Math.floor(ms / 1000)}`);
    f.advance(100);
  }
  t.is(runs.length, 3, 'at 3 s, 6 s and 9 s after the first event of each batch');
  t.deepEqual(runs[0], ['e0', 'e1', 'e2']);
  // After the stream stops, the rest runs after the quiet time; no timer is left.
  f.advance(300);
  t.is(runs.length, 4);
  t.is(f.pending(), 0);
  t.false(d.pending);
});

test('maxWaitMs does not shorten the quiet time of an ordinary burst', (t) => {
  const f = fakeTimers();
  const runs: string[][] = [];
  const d = debounce((r) => runs.push(r), 300, f.timers, 3000);
  d.trigger('a');
  f.advance(200);
  d.trigger('b');
  f.advance(299);
  t.deepEqual(runs, []);
  f.advance(1);
  t.deepEqual(runs, [['a', 'b']]);
  t.is(f.pending(), 0, 'the max-wait timer is cleared with the run');
  f.advance(5000);
  t.is(runs.length, 1);
});
