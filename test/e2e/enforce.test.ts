// Hand-built models through the kernel: real packets in a namespace lab.

import test from 'ava';
import { renderRuleset } from '../../src/nft/render.js';
import * as b from '../helpers/model-builders.js';
import { Lab } from './lab.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster' });
const pods = b.identity('pods', ['198.51.100.5/32', '198.51.100.6/32'], ['2001:db8:100::5/128'], { kind: 'endpoints' });
const exclusions = {
  cluster: { v4: ['192.0.2.0/24', '198.51.100.0/24'], v6: ['2001:db8::/64', '2001:db8:100::/64'] },
  cluster_non_node: { v4: ['198.51.100.0/24'], v6: ['2001:db8:100::/64'] },
};

test('allow, deny, exclusion and default deny decide real packets both ways', async (t) => {
  const lab = await Lab.create(t, 'enf');
  const m = b.model({
    sets: [world, pods],
    exclusions,
    ingress: b.enforced([
      b.deny('pods', [b.tcp(2222)], 'spec.ingressDeny[0]'),
      b.allow('world', [b.tcp(22, [8000, 8080]), b.udp(53)], 'spec.ingress[0]'),
      b.allow('pods', [b.tcp([2000, 3000])], 'spec.ingress[1]'),
      b.allow(null, [b.icmp('ipv4', 8), b.icmp('ipv6', 128)], 'spec.ingress[2]'),
    ]),
    egress: b.enforced([b.allow('pods', [b.udp(5353)], 'spec.egress[0]')]),
  });
  await lab.load(renderRuleset(m, { table: 'nodewall', mode: 'enforce' }));
  const cases = [
    [{ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 22 }, 'allow'],
    [{ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 8080 }, 'allow'],
    [{ direction: 'ingress', peer: '203.0.113.7', proto: 'tcp', port: 8081 }, 'deny'],
    [{ direction: 'ingress', peer: '2001:db8:ffff::7', proto: 'udp', port: 53 }, 'allow'],
    [{ direction: 'ingress', peer: '198.51.100.9', proto: 'tcp', port: 22 }, 'deny'], // world excludes cluster
    [{ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 2500 }, 'allow'],
    [{ direction: 'ingress', peer: '198.51.100.5', proto: 'tcp', port: 2222 }, 'deny'], // deny before allow
    [{ direction: 'ingress', peer: '2001:db8:100::5', proto: 'tcp', port: 2500 }, 'allow'],
    [{ direction: 'ingress', peer: '198.51.100.9', proto: 'icmp' }, 'allow'],
    [{ direction: 'ingress', peer: '2001:db8:100::9', proto: 'icmpv6' }, 'allow'],
    [{ direction: 'egress', peer: '198.51.100.6', proto: 'udp', port: 5353 }, 'allow'],
    [{ direction: 'egress', peer: '198.51.100.7', proto: 'udp', port: 5353 }, 'deny'],
    [{ direction: 'egress', peer: '198.51.100.6', proto: 'tcp', port: 80 }, 'deny'],
    [{ direction: 'egress', peer: '203.0.113.7', proto: 'icmp' }, 'deny'],
  ] as const;
  for (const [probe, expected] of cases) {
    t.is(await lab.probeSure(probe, expected), expected, JSON.stringify(probe));
  }
});
