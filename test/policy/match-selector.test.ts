import test from 'ava';
import { fc, testProp } from '@fast-check/ava';
import type { SourcedLabel } from '../../src/policy/label-filter.js';
import { canonicalSelector, matchRequirement, matchSelector, parseSelectorKey } from '../../src/policy/match-selector.js';

const k8s = (key: string, value: string): SourcedLabel => ({ source: 'k8s', key, value });
const labels: SourcedLabel[] = [k8s('app', 'web'), k8s('tier', 'front'), { source: 'reserved', key: 'host', value: '' }];

test('parseSelectorKey: source prefixes and the any default', (t) => {
  t.deepEqual(parseSelectorKey('app'), { source: 'any', key: 'app' });
  t.deepEqual(parseSelectorKey('k8s:app'), { source: 'k8s', key: 'app' });
  t.deepEqual(parseSelectorKey('reserved:host'), { source: 'reserved', key: 'host' });
  t.deepEqual(parseSelectorKey('any:io.kubernetes.pod.namespace'), { source: 'any', key: 'io.kubernetes.pod.namespace' });
  t.deepEqual(parseSelectorKey('$host'), { source: 'reserved', key: 'host' });
});

test('empty selector matches everything, even no labels', (t) => {
  t.true(matchSelector({}, labels));
  t.true(matchSelector({}, []));
  t.true(matchSelector({ matchLabels: {} }, []));
  t.true(matchSelector({ matchExpressions: [] }, []));
});

test('matchLabels: exact value, source honoured', (t) => {
  t.true(matchSelector({ matchLabels: { app: 'web' } }, labels));
  t.true(matchSelector({ matchLabels: { 'k8s:app': 'web' } }, labels));
  t.true(matchSelector({ matchLabels: { 'any:app': 'web' } }, labels));
  t.false(matchSelector({ matchLabels: { 'node:app': 'web' } }, labels));
  t.false(matchSelector({ matchLabels: { app: 'db' } }, labels));
  t.false(matchSelector({ matchLabels: { app: 'web', tier: 'back' } }, labels));
  t.true(matchSelector({ matchLabels: { 'reserved:host': '' } }, labels));
  t.false(matchSelector({ matchLabels: { 'k8s:host': '' } }, labels));
});

test('matchExpressions: In, NotIn, Exists, DoesNotExist; absent keys', (t) => {
  const r = (key: string, operator: string, values?: string[]) => (values === undefined ? { key, operator } : { key, operator, values });
  t.true(matchRequirement(r('app', 'In', ['web', 'db']), labels));
  t.false(matchRequirement(r('app', 'In', ['db']), labels));
  t.false(matchRequirement(r('missing', 'In', ['x']), labels));
  t.true(matchRequirement(r('app', 'NotIn', ['db']), labels));
  t.false(matchRequirement(r('app', 'NotIn', ['web']), labels));
  t.true(matchRequirement(r('missing', 'NotIn', ['x']), labels), 'NotIn holds when the key is absent');
  t.true(matchRequirement(r('tier', 'Exists'), labels));
  t.false(matchRequirement(r('missing', 'Exists'), labels));
  t.true(matchRequirement(r('missing', 'DoesNotExist'), labels), 'DoesNotExist holds when the key is absent');
  t.false(matchRequirement(r('tier', 'DoesNotExist'), labels));
  t.false(matchRequirement(r('app', 'Bogus', ['web']), labels), 'unknown operators select nothing');
});

test('requirements are ANDed across matchLabels and matchExpressions', (t) => {
  t.true(matchSelector({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] }, labels));
  t.false(matchSelector({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, labels));
});

test('canonicalSelector is order-insensitive', (t) => {
  const a = canonicalSelector({ matchLabels: { b: '2', a: '1' }, matchExpressions: [{ key: 'x', operator: 'In', values: ['2', '1'] }, { key: 'w', operator: 'Exists' }] });
  const b = canonicalSelector({ matchExpressions: [{ key: 'w', operator: 'Exists' }, { key: 'x', operator: 'In', values: ['1', '2'] }], matchLabels: { a: '1', b: '2' } });
  t.is(a, b);
  t.is(a, '{a=1, b=2, w Exists, x In (1,2)}');
  t.not(canonicalSelector({ matchLabels: { a: '1' } }), canonicalSelector({ matchLabels: { a: '2' } }));
});

const key = fc.constantFrom('app', 'tier', 'zone', 'k8s:app', 'any:tier', 'node:zone');
const value = fc.constantFrom('a', 'b', 'c', '');
const labelArb = fc.record({ source: fc.constantFrom('k8s', 'node', 'reserved'), key: fc.constantFrom('app', 'tier', 'zone'), value });
const labelSet = fc.uniqueArray(labelArb, { selector: (l) => `${l.source}:${l.key}`, maxLength: 6 });

testProp('In and NotIn are complements', [key, fc.array(value, { minLength: 1, maxLength: 3 }), labelSet], (t, k, values, ls) => {
  t.is(matchRequirement({ key: k, operator: 'In', values }, ls), !matchRequirement({ key: k, operator: 'NotIn', values }, ls));
});

testProp('Exists and DoesNotExist are complements', [key, labelSet], (t, k, ls) => {
  t.is(matchRequirement({ key: k, operator: 'Exists' }, ls), !matchRequirement({ key: k, operator: 'DoesNotExist' }, ls));
});

testProp('matchLabels {k: v} equals In (v)', [key, value, labelSet], (t, k, v, ls) => {
  t.is(matchSelector({ matchLabels: { [k]: v } }, ls), matchRequirement({ key: k, operator: 'In', values: [v] }, ls));
});

testProp('an unprefixed key matches iff some source matches', [fc.constantFrom('app', 'tier', 'zone'), value, labelSet], (t, k, v, ls) => {
  const any = matchSelector({ matchLabels: { [k]: v } }, ls);
  const some = ['k8s', 'node', 'reserved'].some((s) => matchSelector({ matchLabels: { [`${s}:${k}`]: v } }, ls));
  t.is(any, some);
});

testProp('adding a requirement never widens a selector', [labelSet, key, value, key, value], (t, ls, k1, v1, k2, v2) => {
  const narrow = matchSelector({ matchLabels: { [k1]: v1 }, matchExpressions: [{ key: k2, operator: 'In', values: [v2] }] }, ls);
  t.true(!narrow || matchSelector({ matchLabels: { [k1]: v1 } }, ls));
});
