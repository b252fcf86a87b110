// The public corpus of host policies through the kernel: every file renders,
// passes `nft -c`, and decides a matrix of real flows as `trace` does.

import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult } from '../../src/api/load-manifests.js';
import { loadManifestPaths } from '../../src/inventory/load-manifest-files.js';
import { checkScript } from '../../src/nft/nft-exec.js';
import { renderRuleset } from '../../src/nft/render.js';
import { buildState } from '../../src/pipeline.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import type { Flow } from '../../src/verdict/types.js';
import { caseConfig, CONFORMANCE_NODE, flowLabel, loadBaseCluster, type ConformanceCase } from '../helpers/conformance.js';
import { corpusDir } from '../api/corpus.js';
import { Lab, mapLimit, nftPath, type Probe } from './lab.js';

/** The one corpus file Cilium itself rejects (a placeholder instead of a CIDR, see SOURCES.md). */
const invalidFile = 'cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml';
const files = readdirSync(corpusDir).filter((f) => f.endsWith('.yaml')).sort();

/** The conformance base cluster (node-a = 192.0.2.1) plus labels that select every corpus nodeSelector. */
async function corpusState(file: string) {
  const own = await loadManifestPaths([join(corpusDir, file)]);
  // Its nodeSelector (type: egress-worker) selects no node of the base cluster: use a bare node with that label.
  const bare = file === 'cilium-allow-extended-protocols.yaml';
  const cluster = bare ? { objects: [] } : loadBaseCluster();
  const load: LoadResult = {
    policies: [...own.policies],
    objects: [...cluster.objects, ...own.objects],
    problems: [...own.problems],
  };
  // The extended-protocols example only loads with the flag it was written for.
  const flags = file === 'cilium-allow-extended-protocols.yaml' ? { enableExtendedIPProtocols: true } : {};
  const config = caseConfig({ name: file, file, line: 1, config: flags } as unknown as ConformanceCase);
  const nodeLabels = bare ? { type: 'egress-worker' } : { status: 'lockdown', type: 'worker' };
  return buildState({ config, load, nodeName: CONFORMANCE_NODE, nodeLabels });
}

const peers = ['203.0.113.7', '198.51.100.70', '192.0.2.2', '192.0.2.102', '192.0.2.50', '2001:db8:ffff::7', '2001:db8:100::1:10', '2001:db8::2'];
const l4: Omit<Flow, 'direction' | 'peer'>[] = [
  { proto: 'tcp', port: 22 },
  { proto: 'tcp', port: 80 },
  { proto: 'tcp', port: 443 },
  { proto: 'tcp', port: 4240 },
  { proto: 'tcp', port: 6443 },
  { proto: 'tcp', port: 10250 },
  { proto: 'udp', port: 53 },
  { proto: 'udp', port: 123 },
  { proto: 'icmp', icmpType: 8 },
  { proto: 'icmpv6', icmpType: 128 },
  { proto: 112 },
];

function matrix(): Flow[] {
  const out: Flow[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const peer of peers) {
      for (const x of l4) {
        if ((x.proto === 'icmp' && peer.includes(':')) || (x.proto === 'icmpv6' && !peer.includes(':'))) continue;
        out.push({ direction, peer, ...x });
      }
    }
  }
  return out;
}

test(`the invalid corpus file (${invalidFile}) is rejected by validation`, async (t) => {
  const state = await corpusState(invalidFile);
  t.true(state.problems.some((p) => p.severity === 'error'));
});

for (const file of files.filter((f) => f !== invalidFile)) {
  test(`corpus ${file}: renders, passes nft -c, and the kernel decides like trace`, async (t) => {
    const state = await corpusState(file);
    t.deepEqual(state.problems.filter((p) => p.severity === 'error'), [], 'corpus file loads and validates');
    const lab = await Lab.create(t, 'corpus');
    for (const mode of ['enforce', 'audit'] as const) {
      await checkScript(nftPath, renderRuleset(state.model, { table: 'nodewall', mode }), { netns: lab.nodeNs });
    }
    await lab.load(renderRuleset(state.model, { table: 'nodewall', mode: 'enforce' }));
    const flows = matrix();
    await lab.addPeerAddresses(peers);
    const kernel = await mapLimit(flows, 8, (f) => lab.probeSure(f as Probe, evaluate(state.model, f).verdict));
    let denied = 0;
    flows.forEach((f, i) => {
      const v = evaluate(state.model, f);
      if (kernel[i] === 'deny') denied++;
      t.is(kernel[i], v.verdict, `${file}: ${flowLabel(f)}: kernel ${kernel[i]}, trace ${v.verdict} (${v.reason})`);
    });
    t.log(`${state.model.selectedPolicies.length} policies select node-a; ingress ${state.model.ingress.enforced ? 'enforced' : 'open'}, egress ${state.model.egress.enforced ? 'enforced' : 'open'}; ${flows.length} flows, ${denied} dropped`);
  });
}
