// The shared binary search of the sorted model lists against a linear scan.

import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { lastAtOrBefore } from '../../src/policy/last-at-or-before.js';

const atOrBefore = (x: number, key: number, _b: number): boolean => x <= key;

testProp('lastAtOrBefore: the last index whose element is at or before the key, as a scan finds it (-1 when none)', [fc.array(fc.integer({ min: -50, max: 50 }), { maxLength: 40 }), fc.integer({ min: -60, max: 60 })], (t, xs, key) => {
  const sorted = [...xs].sort((a, b) => a - b);
  let expected = -1;
  sorted.forEach((x, i) => {
    if (x <= key) expected = i;
  });
  t.is(lastAtOrBefore(sorted, key, 0, atOrBefore), expected);
});

test('lastAtOrBefore: edges', (t) => {
  t.is(lastAtOrBefore([], 5, 0, atOrBefore), -1, 'empty list');
  t.is(lastAtOrBefore([1, 2, 3], 0, 0, atOrBefore), -1, 'key before every element');
  t.is(lastAtOrBefore([1, 2, 3], 9, 0, atOrBefore), 2, 'key after every element');
  t.is(lastAtOrBefore([1, 2, 2, 2, 3], 2, 0, atOrBefore), 3, 'equal elements: the last of them');
  t.is(lastAtOrBefore(['a', 'b'], 'x', 'b', (s: string, _a: string, b: string) => s <= b), 1, 'the second key argument reaches the test');
});
