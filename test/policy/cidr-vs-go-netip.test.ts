// Differential check: src/policy/cidr.ts and src/api/go-netip.ts (the validator's
// Go-compatible parser) must accept and reject the same prefixes.
import { fc, testProp } from '@fast-check/ava';
import { parsePrefix as goParsePrefix } from '../../src/api/go-netip.js';
import { formatAddress, parsePrefixDetailed } from '../../src/policy/cidr.js';

const v4 = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }).map((b) => formatAddress('ipv4', b));
const v6 = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((gs) => formatAddress('ipv6', gs.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n)));
const valid = fc.oneof(
  fc.tuple(v4, fc.integer({ min: 0, max: 40 })).map(([a, l]) => `${a}/${l}`),
  fc.tuple(v6, fc.integer({ min: 0, max: 140 })).map(([a, l]) => `${a}/${l}`),
  fc.tuple(v6, v4, fc.integer({ min: 90, max: 128 })).map(([a, b, l]) => `${a.split(':').slice(0, 3).join(':')}::${b}/${l}`),
);
const edit = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('insert', 'delete', 'replace'),
  ch: fc.constantFrom(...'0123456789afAF:./%'.split('')),
});
const mutated = fc.tuple(valid, fc.array(edit, { maxLength: 3 })).map(([s, edits]) => {
  let out = s;
  for (const e of edits) {
    const i = out.length === 0 ? 0 : e.at % (out.length + 1);
    if (e.op === 'insert') out = out.slice(0, i) + e.ch + out.slice(i);
    else if (e.op === 'delete') out = out.slice(0, i) + out.slice(i + 1);
    else out = out.slice(0, i) + e.ch + out.slice(i + 1);
  }
  return out;
});

testProp(
  'cidr.parsePrefix and go-netip.parsePrefix agree',
  [mutated],
  (t, s) => {
    let ours: ReturnType<typeof parsePrefixDetailed> | undefined;
    try {
      ours = parsePrefixDetailed(s);
    } catch {
      ours = undefined;
    }
    const theirs = goParsePrefix(s);
    t.is(ours !== undefined, theirs.ok, `${JSON.stringify(s)}: cidr ${ours === undefined ? 'rejects' : 'accepts'}, go-netip ${theirs.ok ? 'accepts' : `rejects (${theirs.error})`}`);
    if (ours !== undefined && theirs.ok) {
      const width = theirs.value.family === 4 ? 32 : 128;
      const shift = BigInt(width - theirs.value.bits);
      t.is(ours.prefix.family, theirs.value.family === 4 ? 'ipv4' : 'ipv6');
      t.is(ours.prefix.len, theirs.value.bits);
      t.is(ours.prefix.bits, (theirs.value.addr >> shift) << shift);
    }
  },
  { numRuns: 3000 },
);
