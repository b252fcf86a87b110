// logDrops with real packets: the log rule before each drop logs at most its rate limit (its counter counts
// the packets logged), every denied packet is still dropped and recorded (a limit never lets one through),
// and allowed traffic is untouched. The log lines themselves go to the kernel log of the namespace, which
// the kernel writes only with net.netfilter.nf_log_all_netns=1 (a host-wide setting the test leaves alone).

import test from 'ava';
import { applyModel } from '../../src/nft/apply.js';
import { readDropCounters } from '../../src/agent/drop-records.js';
import * as b from '../helpers/model-builders.js';
import { Lab, nftPath, nodeV6 } from './lab.js';
import { floodDistinctPeers } from './raw-flood.js';

interface JsonRule { comment?: string; expr: Record<string, unknown>[] }

async function chainRules(lab: Lab, chain: string): Promise<JsonRule[]> {
  const doc = JSON.parse((await lab.nft(['-j', 'list', 'chain', 'inet', 'nodewall', chain])).stdout) as { nftables: { rule?: JsonRule }[] };
  return doc.nftables.flatMap((i) => (i.rule === undefined ? [] : [i.rule]));
}

const packets = (r: JsonRule | undefined): number => {
  const c = r?.expr.find((e) => e['counter'] !== undefined)?.['counter'] as { packets?: number } | undefined;
  return c?.packets ?? 0;
};

test('logDrops: at most the rate limit is logged, every denied packet is still dropped and recorded', async (t) => {
  const lab = await Lab.create(t, 'dlog');
  const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
  const model = b.model({ sets: [world], ingress: b.enforced([b.allow('world', [b.tcp(22)], 'spec.ingress[0]', 'ssh')]) });
  await applyModel(model, { nftPath, table: 'nodewall', mode: 'enforce', netns: lab.nodeNs, dropRecords: { size: 1024, timeoutSeconds: 600, log: true } });

  // A burst of denied packets (distinct peers, so each is a new flow), and a denied probe.
  const denied = 1000;
  t.is(await floodDistinctPeers(lab.peerNs, nodeV6, '2001:db8:e::', denied, 8080), denied);
  t.is(await lab.probe({ direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 8080 }), 'deny');
  t.is(await lab.probeSure({ direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22 }, 'allow'), 'allow', 'allowed traffic passes');

  const input = await chainRules(lab, 'input');
  const dd = input.findIndex((r) => r.comment === 'nodewall default-deny');
  const log = input[dd - 1];
  t.is(log?.comment, 'nodewall drop log', 'the log rule sits right before the default deny');
  // (level warn is nft's default: its JSON leaves it out)
  t.like(log?.expr.find((e) => e['log'] !== undefined)?.['log'], { prefix: 'nodewall drop default-deny: ' });
  const dropped = packets(input[dd]);
  const logged = packets(log);
  t.true(dropped >= denied, `every denied packet reached the drop rule (${dropped})`);
  t.true(logged >= 1, 'some were logged');
  // Burst 5, then 10 a minute: a handful of the 1000 (the bound only fails if the burst took over an hour).
  t.true(logged < 600, `logged ${logged} of ${dropped}`);
  const counters = await readDropCounters(nftPath, 'nodewall', { netns: lab.nodeNs });
  t.true(counters.recorded >= denied, 'and every one was recorded as a drop');
});
