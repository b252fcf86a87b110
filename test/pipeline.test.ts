// StateBuilder (the agent's builder with memory) against buildState: the same State for every input,
// the model taken forward incrementally only when config and this node are unchanged.

import test from 'ava';
import type { LoadResult } from '../src/api/load-manifests.js';
import { loadManifestText } from '../src/api/load-manifests.js';
import type { KubeObject } from '../src/api/types.js';
import { buildState, StateBuilder, type StateInput } from '../src/pipeline.js';
import { caseConfig, CONFORMANCE_NODE, loadBaseCluster, loadConformanceCases } from './helpers/conformance.js';

const pod = (name: string, ns: string, labels: Record<string, string>, ip: string): KubeObject => ({
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  spec: { nodeName: 'node-b' },
  status: { phase: 'Running', podIPs: [{ ip }] },
});

test('for every conformance case and a sequence of cluster, policy and config changes, StateBuilder.build equals buildState', (t) => {
  const cluster = loadBaseCluster();
  let incremental = 0;
  for (const c of loadConformanceCases()) {
    if (c.cluster !== 'base') continue;
    const own = loadManifestText(c.manifests, `${c.file}:${c.line}`);
    const config = caseConfig(c);
    const load = (objects: readonly KubeObject[], policies = own.policies): LoadResult => ({
      policies: [...cluster.policies, ...policies],
      objects: [...objects, ...own.objects],
      problems: [...cluster.problems, ...own.problems],
    });
    const base = cluster.objects;
    const withPod = [...base, pod('extra', 'default', { app: 'web' }, '198.51.100.99')];
    const relabelled = [...base, pod('extra', 'default', { app: 'server', zgroup: 'testServer' }, '198.51.100.100')];
    const noNodeC = relabelled.filter((o) => !((o.kind === 'Node' || o.kind === 'CiliumNode') && o.metadata.name === 'node-c'));
    const steps: { what: string; input: StateInput; expect: 'full' | 'incremental' }[] = [
      { what: 'first build', input: { config, load: load(base), nodeName: CONFORMANCE_NODE }, expect: 'full' },
      { what: 'pod added', input: { config, load: load(withPod), nodeName: CONFORMANCE_NODE }, expect: 'incremental' },
      { what: 'pod relabelled and readdressed', input: { config, load: load(relabelled), nodeName: CONFORMANCE_NODE }, expect: 'incremental' },
      { what: 'node-c gone', input: { config, load: load(noNodeC), nodeName: CONFORMANCE_NODE }, expect: 'incremental' },
      { what: 'config re-read, same content', input: { config: { ...config }, load: load(noNodeC), nodeName: CONFORMANCE_NODE }, expect: 'incremental' },
      { what: 'policies removed', input: { config, load: load(noNodeC, own.policies.slice(1)), nodeName: CONFORMANCE_NODE }, expect: 'incremental' },
      { what: 'policies back', input: { config, load: load(noNodeC), nodeName: CONFORMANCE_NODE }, expect: 'incremental' },
      { what: 'own labels changed', input: { config, load: load(noNodeC), nodeName: CONFORMANCE_NODE, nodeLabels: { type: 'infra' } }, expect: 'full' },
      { what: 'config changed', input: { config: { ...config, mode: 'audit' }, load: load(noNodeC), nodeName: CONFORMANCE_NODE, nodeLabels: { type: 'infra' } }, expect: 'full' },
    ];
    const builder = new StateBuilder();
    for (const s of steps) {
      const got = builder.build(s.input);
      t.deepEqual(got, buildState(s.input), `${c.name}: ${s.what}`);
      t.is(builder.lastModel, s.expect, `${c.name}: ${s.what}`);
      if (builder.lastModel === 'incremental') incremental++;
    }
  }
  t.true(incremental > 100, `${incremental} incremental builds`);
});

test('after reset the next build is a full one', (t) => {
  const cluster = loadBaseCluster();
  const input: StateInput = { config: caseConfig(loadConformanceCases()[0]!), load: cluster, nodeName: CONFORMANCE_NODE };
  const builder = new StateBuilder();
  builder.build(input);
  builder.build(input);
  t.is(builder.lastModel, 'incremental');
  builder.reset();
  t.deepEqual(builder.build(input), buildState(input));
  t.is(builder.lastModel, 'full');
});
