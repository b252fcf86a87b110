import test from 'ava';
import { renderRuleset } from '../../src/nft/render.js';
import * as b from '../helpers/model-builders.js';

// 150k identity sets with one rule each must render (a fromCIDR list no longer makes one per CIDR, but
// many endpoint selectors still can):
// spreading that many lines into push() overflowed the call stack.
test('a model with 150k rules and sets renders without overflowing the stack', (t) => {
  const n = 150_000;
  const sets = [];
  const entries = [];
  for (let i = 0; i < n; i++) {
    const name = `cidr_${i.toString(16).padStart(8, '0')}`;
    sets.push(b.identity(name, [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`], [], { kind: 'cidr' }));
    entries.push(b.allow(name, [b.tcp(22)], `spec.ingress[${i}]`));
  }
  const script = renderRuleset(b.model({ sets, ingress: b.enforced(entries) }), { table: 'nodewall', mode: 'enforce' });
  t.true(script.includes('comment "p1 spec.ingress[149999]"'));
  t.true(script.split('\n').length > n);
});
