import test from 'ava';
import fc from 'fast-check';
import type { Prefix } from '../../src/policy/cidr.js';
import { PrefixCounts } from '../../src/policy/prefix-counts.js';

// PrefixCounts against the representation it replaced: a Map keyed by one bigint per prefix.
const oldKey = (p: Prefix): bigint => (p.bits << 9n) | (p.family === 'ipv6' ? 256n : 0n) | BigInt(p.len);

function prefixOf(family: 'ipv4' | 'ipv6', raw: bigint, len: number): Prefix {
  const width = family === 'ipv4' ? 32 : 128;
  const shift = BigInt(width - len);
  return { family, bits: (raw >> shift) << shift, len };
}

// Few distinct values so that adds and removes meet: addresses around 0, 2^31 (the int32 sign) and 2^32 - 1.
const v4 = fc
  .tuple(fc.constantFrom(0n, 0x7fffff00n, 0x80000000n, 0xc0000200n, 0xffffff00n), fc.integer({ min: 0, max: 255 }), fc.oneof(fc.constant(32), fc.integer({ min: 0, max: 32 })))
  .map(([base, off, len]) => prefixOf('ipv4', base + BigInt(off), len));
const v6 = fc
  // Bases equal above bit 30 and differing there (the compact IPv6 host keys, prefix-counts.ts), and far apart.
  .tuple(
    fc.constantFrom(0n, 0x20010db8n << 96n, (0x20010db8n << 96n) + (1n << 30n) - 128n, (0x20010db8n << 96n) + (1n << 31n), (1n << 128n) - 256n),
    fc.integer({ min: 0, max: 255 }),
    fc.oneof(fc.constant(128), fc.integer({ min: 0, max: 128 })),
  )
  .map(([base, off, len]) => prefixOf('ipv6', base + BigInt(off), len));

for (const [family, arb] of [['ipv4', v4], ['ipv6', v6]] as const) {
  test(`${family}: any sequence of adds and removes gives the counts, results and contents of a bigint-keyed Map`, (t) => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), arb), { maxLength: 200 }), (ops) => {
        const counts = new PrefixCounts(family);
        const ref = new Map<bigint, { p: Prefix; n: number }>();
        for (const [add, p] of ops) {
          const k = oldKey(p);
          const had = ref.get(k)?.n ?? 0;
          if (add) {
            ref.set(k, { p, n: had + 1 });
            if (counts.add(p.bits, p.len) !== had + 1) return false;
          } else {
            const got = counts.remove(p.bits, p.len);
            if (had === 0) {
              if (got !== -1) return false;
            } else {
              if (got !== had - 1) return false;
              if (had === 1) ref.delete(k);
              else ref.set(k, { p, n: had - 1 });
            }
          }
          if (counts.count(p.bits, p.len) !== (ref.get(k)?.n ?? 0) || counts.has(p.bits, p.len) !== ref.has(k)) return false;
        }
        if (counts.size !== ref.size) return false;
        const listed = [...counts.entries()].map(([bits, len, n]) => `${oldKey({ family, bits, len })}:${n}`).sort();
        const expected = [...ref.entries()].map(([k, { n }]) => `${k}:${n}`).sort();
        t.deepEqual(listed, expected);
        counts.clear();
        return counts.size === 0 && [...counts.entries()].length === 0;
      }),
      { numRuns: 2000 },
    );
  });
}

test('an IPv4 host address at or above 2^31 keeps its value (int32 keys are signed)', (t) => {
  const c = new PrefixCounts('ipv4');
  for (const bits of [0x80000000n, 0xffffffffn, 0n, 0x7fffffffn]) c.add(bits, 32);
  t.deepEqual([...c.entries()].map(([b]) => b).sort((a, b) => (a < b ? -1 : 1)), [0n, 0x7fffffffn, 0x80000000n, 0xffffffffn]);
  t.is(c.count(0xffffffffn, 32), 1);
  t.is(c.count(0xfffffffen, 32), 0);
});
