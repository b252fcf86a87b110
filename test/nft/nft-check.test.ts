// Every rendered flavour passes `nft -c` in the kernel (inside a throwaway namespace).

import test from 'ava';
import { checkScript } from '../../src/nft/nft-exec.js';
import { renderPlan } from '../../src/nft/render.js';
import * as b from '../helpers/model-builders.js';
import { throwawayNetns } from './netns.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' });
const pods = b.identity('pods', ['198.51.100.5/32'], [], { kind: 'endpoints' });
const cidr = b.identity('cidr_1', ['10.0.0.0/8', '172.16.0.0/12'], ['2001:db8::/32'], { exclude: 'cluster_non_node' });
const full = b.model({
  sets: [world, pods, cidr],
  exclusions: { cluster: { v4: ['198.51.100.0/24'], v6: [] }, cluster_non_node: { v4: ['198.51.100.0/25'], v6: ['2001:db8:100::/64'] } },
  ingress: b.enforced([
    b.deny('cidr_1', [b.tcp(25)], 'spec.ingressDeny[0]'),
    b.allow('world', [b.tcp(22, [30000, 32767]), b.udp(53), { kind: 'ports', proto: 'sctp', ranges: [[5000, 5000]] }]),
    b.allow('pods', [b.anyL4], 'spec.ingress[1]'),
    b.allow(null, [b.icmp('ipv4', 0, 8), b.icmp('ipv6', 128), { kind: 'proto', proto: 112, name: 'vrrp' }], 'spec.ingress[2]'),
  ]),
  egress: b.enforced([b.allow('cidr_1', [b.udp(123)], 'spec.egress[0]')], false),
  datapath: { extendedProtocols: true },
});

for (const mode of ['enforce', 'audit', 'dry-run'] as const) {
  test(`nft -c accepts the ${mode} ruleset, its structure-only variant, and an empty model`, async (t) => {
    const ns = await throwawayNetns(t, 'chk');
    const plan = renderPlan(full, { table: 'nodewall', mode });
    await checkScript('/usr/sbin/nft', plan.script, { netns: ns });
    await checkScript('/usr/sbin/nft', plan.structureScript, { netns: ns });
    await checkScript('/usr/sbin/nft', renderPlan(b.model(), { table: 'nodewall', mode }).script, { netns: ns });
    t.pass();
  });
}

test('nft -c accepts 20k-element hash sets and many interval elements', async (t) => {
  const ns = await throwawayNetns(t, 'chk');
  const big = b.model({
    sets: [b.identity('pods', b.podAddresses(20000), [], { kind: 'endpoints' }), b.identity('nets', Array.from({ length: 500 }, (_, i) => `10.${i >> 4}.${(i & 15) * 16}.0/20`))],
    ingress: b.enforced([b.allow('pods', [b.tcp(80)]), b.allow('nets', [b.tcp(443)], 'spec.ingress[1]')]),
  });
  await checkScript('/usr/sbin/nft', renderPlan(big, { table: 'nodewall', mode: 'enforce' }).script, { netns: ns });
  t.pass();
});
