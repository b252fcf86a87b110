// Random hand-built models (fast-check, fixed seed) through the kernel: for
// every model and flow, the kernel does what evaluate says. Covers renderer
// paths the conformance cases may not combine: overlapping entries, mixed
// hash/interval sets, exclusions, empty families, per-direction switches.

import test from 'ava';
import fc from 'fast-check';
import { renderRuleset } from '../../src/nft/render.js';
import type { Entry, HostModel, IdentitySet, L4Match } from '../../src/policy/model.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import type { Flow } from '../../src/verdict/types.js';
import * as b from '../helpers/model-builders.js';
import { Lab, mapLimit, type Probe } from './lab.js';

/** Disjoint address blocks: a set takes a block whole (prefix) or some single addresses inside it. */
const v4Blocks = [0, 16, 32, 48, 64].map((base) => ({ prefix: `203.0.113.${base}/28`, hosts: [1, 2, 3].map((h) => `203.0.113.${base + h}`) }));
const v6Blocks = [0, 16, 32].map((base) => ({ prefix: `2001:db8:ffff::${base.toString(16)}0/124`, hosts: [1, 2].map((h) => `2001:db8:ffff::${base.toString(16)}${h}`) }));

const blockPick = (blocks: typeof v4Blocks, full: string) =>
  fc.subarray(blocks.map((_, i) => i)).chain((idx) =>
    fc.tuple(...idx.map((i) => fc.oneof(fc.constant('prefix' as const), fc.subarray((blocks[i] ?? blocks[0])!.hosts, { minLength: 1 })))).map((choices) =>
      choices.flatMap((c, k) => {
        const block = blocks[idx[k] ?? 0]!;
        return c === 'prefix' ? [block.prefix] : c.map((h) => `${h}/${full}`);
      }),
    ),
  );

const identityArb = (name: string) =>
  fc.record({ v4: blockPick(v4Blocks, '32'), v6: blockPick(v6Blocks, '128'), excluded: fc.boolean() }).map(
    ({ v4, v6, excluded }): IdentitySet => ({ name, label: `random:${name}`, kind: 'cidr', v4, v6, ...(excluded ? { exclude: 'cluster' as const } : {}) }),
  );

const l4Arb: fc.Arbitrary<L4Match> = fc.oneof(
  fc.constant<L4Match>({ kind: 'all' }),
  fc.record({
    proto: fc.constantFrom('tcp' as const, 'udp' as const),
    ranges: fc.subarray([[22, 22], [80, 90], [1000, 1000], [0, 65535]] as (readonly [number, number])[], { minLength: 1 }),
  }).map((p): L4Match => ({ kind: 'ports', ...p })),
  fc.constant<L4Match>({ kind: 'icmp', family: 'ipv4', types: [8] }),
  fc.constant<L4Match>({ kind: 'icmp', family: 'ipv6', types: [128] }),
);

const entryArb = (names: readonly string[], dir: string, i: number) =>
  fc.record({
    action: fc.constantFrom('allow' as const, 'deny' as const),
    peer: fc.constantFrom<string | null>(null, ...names),
    l4: fc.array(l4Arb, { maxLength: 3 }),
  }).map((e): Entry => ({ ...e, policy: `rand-${i % 3}`, rule: `spec.${dir}[${i}]` }));

const directionArb = (names: readonly string[], dir: string) =>
  fc.record({
    enforced: fc.boolean(),
    defaultDeny: fc.boolean(),
    entries: fc.integer({ min: 0, max: 5 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => entryArb(names, dir, i)))),
  }).map((d) => ({
    ...d,
    // Entries come in random order: the contract lists denies first, but neither the renderer nor evaluate relies on it.
    entries: d.enforced ? d.entries : [],
    reason: 'random',
  }));

const modelArb: fc.Arbitrary<HostModel> = fc
  .tuple(identityArb('id_a'), identityArb('id_b'), identityArb('id_c'), fc.subarray(v4Blocks.map((x) => x.prefix)), fc.subarray(v6Blocks.map((x) => x.prefix)))
  .chain(([a, bb, c, ex4, ex6]) => {
    const names = [a.name, bb.name, c.name];
    return fc.record({ ingress: directionArb(names, 'ingress'), egress: directionArb(names, 'egress') }).map(({ ingress, egress }) =>
      b.model({ sets: [a, bb, c], ingress, egress, exclusions: { cluster: { v4: ex4, v6: ex6 }, cluster_non_node: { v4: [], v6: [] } } }),
    );
  });

const peers4 = [...v4Blocks.flatMap((x) => x.hosts), '203.0.113.9', '203.0.113.200'];
const peers6 = [...v6Blocks.flatMap((x) => x.hosts), '2001:db8:ffff::9', '2001:db8:ffff::ff00'];

const flowArb: fc.Arbitrary<Flow> = fc.oneof(
  fc.record({
    direction: fc.constantFrom('ingress' as const, 'egress' as const),
    peer: fc.constantFrom(...peers4, ...peers6),
    proto: fc.constantFrom('tcp' as const, 'udp' as const),
    port: fc.constantFrom(22, 85, 1000, 2000),
  }),
  fc.record({ direction: fc.constantFrom('ingress' as const, 'egress' as const), peer: fc.constantFrom(...peers4), proto: fc.constant('icmp' as const), icmpType: fc.constant(8) }),
  fc.record({ direction: fc.constantFrom('ingress' as const, 'egress' as const), peer: fc.constantFrom(...peers6), proto: fc.constant('icmpv6' as const), icmpType: fc.constant(128) }),
);

test('random models: the kernel decides every flow as evaluate does', async (t) => {
  const lab = await Lab.create(t, 'rand');
  let flows = 0;
  await fc.assert(
    fc.asyncProperty(modelArb, fc.array(flowArb, { minLength: 12, maxLength: 12 }), async (model, fl) => {
      await lab.load(renderRuleset(model, { table: 'nodewall', mode: 'enforce' }));
      const kernel = await mapLimit(fl, 8, (f) => lab.probeSure(f as Probe, evaluate(model, f).verdict));
      fl.forEach((f, i) => {
        const v = evaluate(model, f);
        if (kernel[i] !== v.verdict) {
          throw new Error(`${f.direction} ${String(f.proto)} ${f.port ?? f.icmpType} ${f.peer}: kernel ${kernel[i]}, evaluate ${v.verdict} (${v.reason})\n${renderRuleset(model, { table: 'nodewall', mode: 'enforce' })}`);
        }
      });
      flows += fl.length;
    }),
    { numRuns: 40, seed: 20261124, endOnFailure: true },
  );
  t.log(`${flows} flows over 40 random models`);
  t.true(flows > 0);
});
