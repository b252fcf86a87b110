// resolvePlainScalar (the fast decoder's typing of plain scalars, with its
// shortcuts for letters, addresses and integers) against yaml itself.
import { fc, testProp } from '@fast-check/ava';
import { isScalar, parseDocument } from 'yaml';
import { resolvePlainScalar } from '../../src/api/fast-yaml.js';

const numberish = fc.string({ unit: fc.constantFrom(...'0123456789.+-eExXoOabcdfinNaAlLuUrRtTsSF~:_/'), minLength: 1, maxLength: 10 });
const shaped = fc.oneof(
  numberish,
  fc.ipV4(), fc.ipV6(), fc.integer().map(String), fc.double().map(String),
  fc.constantFrom('null', 'Null', 'NULL', 'nUll', 'true', 'True', 'TRUE', 'tRue', 'false', 'FALSE', 'fAlse', 'no', 'yes', 'node-7', 'name', 'Nan', '.nan', '-.inf', '+.Inf', '~', '~x', '0o7', '0x1F', '1e3', '1.', '.5', '10.0.0.0/8'),
);

testProp('a plain scalar resolves as yaml (core schema) resolves it', [shaped], (t, s) => {
  const doc = parseDocument(`a: ${s}\n`);
  const node = doc.get('a', true);
  // Only texts that yaml reads as one plain scalar are the decoder's business.
  if (doc.errors.length > 0 || !isScalar(node) || node.type !== 'PLAIN' || node.source !== s) {
    t.pass();
    return;
  }
  t.true(Object.is(resolvePlainScalar(s), node.value), `${s}: fast ${String(resolvePlainScalar(s))}, yaml ${String(node.value)}`);
}, { numRuns: 3000, seed: 0x9f41 });
