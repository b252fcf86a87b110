import test from 'ava';
import { DriftPollDepth, defaultFullCheckEvery } from '../../src/agent/drift-poll-depth.js';

test('with the monitor up, one full check in every N polls (the first is full); with it down, every poll is full', (t) => {
  const d = new DriftPollDepth(4);
  t.deepEqual(Array.from({ length: 9 }, () => d.next(true)), ['full', 'structure', 'structure', 'structure', 'full', 'structure', 'structure', 'structure', 'full']);
  t.deepEqual([d.next(false), d.next(false)], ['full', 'full']);
  // Back up: counting starts over with a full check.
  t.deepEqual([d.next(true), d.next(true)], ['full', 'structure']);
  t.is(defaultFullCheckEvery, 12);
  const every = new DriftPollDepth(1);
  t.deepEqual([every.next(true), every.next(true)], ['full', 'full']);
});
