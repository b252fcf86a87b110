import test from 'ava';
import { InputError, formatProblem } from '../../src/api/problem.js';
import { parseConfig } from '../../src/inventory/config.js';
import { defaultDropRecords, dropRecordsOf } from '../../src/inventory/types.js';

const file = '/etc/nodewall/nodewall.yaml';

function problems(text: string): string[] {
  try {
    parseConfig(text, file);
  } catch (err) {
    if (err instanceof InputError) return err.problems.map(formatProblem);
    throw err;
  }
  throw new Error('expected an InputError');
}

test('dropRecords: absent means on with the defaults; off turns it off; a map sets size and timeout', (t) => {
  t.deepEqual(dropRecordsOf(parseConfig('', file)), defaultDropRecords);
  t.deepEqual(defaultDropRecords, { size: 65_536, timeoutSeconds: 3600 });
  t.is(dropRecordsOf(parseConfig('dropRecords: off\n', file)), undefined);
  t.is(dropRecordsOf(parseConfig('dropRecords: false\n', file)), undefined);
  t.deepEqual(dropRecordsOf(parseConfig('dropRecords: {size: 1024}\n', file)), { size: 1024, timeoutSeconds: 3600 });
  t.deepEqual(dropRecordsOf(parseConfig('dropRecords:\n  size: 10\n  timeoutSeconds: 60\n', file)), { size: 10, timeoutSeconds: 60 });
});

test('bad dropRecords values are errors at file:line:col naming the field', (t) => {
  t.deepEqual(problems('mode: enforce\ndropRecords:\n  size: 0\n'), [`${file}:3:9: error: dropRecords.size: must be a whole number from 1 to 1048576`]);
  t.deepEqual(problems('dropRecords: {size: 1.5}\n'), [`${file}:1:21: error: dropRecords.size: must be a whole number from 1 to 1048576`]);
  t.deepEqual(problems('dropRecords: {timeoutSeconds: 604801}\n'), [`${file}:1:31: error: dropRecords.timeoutSeconds: must be a whole number from 1 to 604800`]);
  t.deepEqual(problems('dropRecords: {sizee: 5}\n'), [`${file}:1:15: error: dropRecords.sizee: unknown key (known: size, timeoutSeconds)`]);
  t.deepEqual(problems('dropRecords: on\n'), [`${file}:1:14: error: dropRecords: must be off or a map {size, timeoutSeconds}`]);
  t.deepEqual(problems('dropRecords: [1]\n'), [`${file}:1:14: error: dropRecords: must be off or a map {size, timeoutSeconds}`]);
  t.deepEqual(problems('dropRecords: {__proto__: 1}\n'), [`${file}:1:15: error: dropRecords.__proto__: unknown key (known: size, timeoutSeconds)`]);
});
