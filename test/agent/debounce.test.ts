import test from 'ava';
import { debounce, type Timers } from '../../src/agent/debounce.js';

function fakeTimers() {
  let now = 0;
  let next = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = next++;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (h) => void pending.delete(h as number),
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [id, p] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
      if (p.at <= now) {
        pending.delete(id);
        p.fn();
      }
    }
  };
  return { timers, advance, count: () => pending.size };
}

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
  t.is(f.count(), 0);
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
