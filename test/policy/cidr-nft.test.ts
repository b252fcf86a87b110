// Differential check against the kernel/nft: random merged prefix lists are
// loaded into interval sets inside a throwaway network namespace, listed back
// with `nft -j`, and must read exactly as formatPrefix wrote them. This is what
// lets the renderer compare its text with `nft list` output. Needs root.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { fc } from '@fast-check/ava';
import { formatAddress, formatPrefix, mergePrefixes, type Prefix } from '../../src/policy/cidr.js';

const nft = '/usr/sbin/nft';

function run(cmd: string, args: readonly string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`, { cause: err }));
      else resolve(stdout);
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

const prefixOf = (family: 'ipv4' | 'ipv6', bits: bigint, len: number): Prefix => {
  const shift = BigInt((family === 'ipv4' ? 32 : 128) - len);
  return { family, bits: (bits >> shift) << shift, len };
};
const v6Bits = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc
    .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
    .map((gs) => gs.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n)),
  fc.tuple(fc.constantFrom(0n, 0xffffn), fc.bigInt({ min: 0n, max: (1n << 32n) - 1n })).map(([hi, lo]) => (hi << 32n) | lo),
);
const v6 = fc.tuple(v6Bits, fc.integer({ min: 40, max: 128 })).map(([b, l]) => prefixOf('ipv6', b, l));
const v4 = fc.tuple(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.integer({ min: 12, max: 32 })).map(([b, l]) => prefixOf('ipv4', b, l));

/** nft -j prints a /32 or /128 as a bare address and anything shorter as {prefix: {addr, len}}. */
function nftText(p: Prefix): string {
  return p.len === (p.family === 'ipv4' ? 32 : 128) ? formatAddress(p.family, p.bits) : formatPrefix(p);
}

function listedElements(json: string): string[] {
  const doc = JSON.parse(json) as { nftables: { set?: { elem?: unknown[] } }[] };
  const set = doc.nftables.find((o) => o.set !== undefined)?.set;
  return (set?.elem ?? []).map((e) => {
    if (typeof e === 'string') return e;
    const p = (e as { prefix?: { addr: string; len: number } }).prefix;
    if (p !== undefined) return `${p.addr}/${p.len}`;
    throw new Error(`unexpected element ${JSON.stringify(e)}`);
  });
}

test.serial('formatted prefixes read back identically from nft interval sets', async (t) => {
  const ns = `nwt-inv-${randomBytes(4).toString('hex')}`;
  await run('ip', ['netns', 'add', ns]);
  t.teardown(() => run('ip', ['netns', 'del', ns]).then(() => undefined));
  const seed = Date.now() % 1_000_000;
  t.log(`seed ${seed}`);
  for (const [family, arb] of [
    ['ipv6', v6],
    ['ipv4', v4],
  ] as const) {
    const merged = mergePrefixes(fc.sample(arb, { numRuns: 300, seed }));
    const expected = merged.map(nftText);
    const type = family === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr';
    const ruleset = `table inet nwt_cidr_${family} {\n  set s { type ${type}; flags interval; elements = { ${expected.join(', ')} } }\n}\n`;
    await run('ip', ['netns', 'exec', ns, nft, '-f', '-'], ruleset);
    const listed = listedElements(await run('ip', ['netns', 'exec', ns, nft, '-j', 'list', 'set', 'inet', `nwt_cidr_${family}`, 's']));
    t.log(`${family}: ${expected.length} elements`);
    t.true(expected.length > 100, 'enough elements to be meaningful');
    t.deepEqual(listed, expected, family);
  }
});
