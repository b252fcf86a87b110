import test from 'ava';
import { ModelKeys } from '../../src/agent/model-key.js';
import type { HostModel } from '../../src/policy/model.js';

const model = (n: number): HostModel => ({ node: 'n1', sets: { a: { v4: [`192.0.2.${n}/32`], v6: [] } } }) as unknown as HostModel;

test('models built in full are keyed by content, so an equal rebuild compares equal', (t) => {
  const keys = new ModelKeys();
  t.is(keys.keyOf(model(1), false), keys.keyOf(model(1), false));
  t.not(keys.keyOf(model(1), false), keys.keyOf(model(2), false));
});

test('incrementally made models are keyed by identity: the same object keeps its key, a new one gets a new key', (t) => {
  const keys = new ModelKeys();
  const a = model(1);
  const k = keys.keyOf(a, true);
  t.is(keys.keyOf(a, true), k);
  t.is(keys.keyOf(a, false), k, 'a model seen before keeps its key');
  t.not(keys.keyOf(model(1), true), k);
});
