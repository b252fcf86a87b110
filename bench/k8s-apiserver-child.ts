// Child process of the k8s benchmark: the fake API server holding a synthetic
// cluster, kept out of the benchmark's process so the agent side's RSS is
// measured alone. Commands arrive over the IPC channel.

import { loadManifestText } from '../src/api/load-manifests.js';
import { FakeApiServer, type JsonObject, type ResourceName } from '../test/helpers/fake-apiserver.js';
import type { ChildCommand } from './k8s-harness.js';
import { generateCluster } from './synthetic.js';

type Command = ChildCommand | { cmd: 'stop' };

const resourceOf: Readonly<Record<string, ResourceName>> = {
  Node: 'nodes',
  Namespace: 'namespaces',
  Pod: 'pods',
  CiliumClusterwideNetworkPolicy: 'ciliumclusterwidenetworkpolicies',
};

let server: FakeApiServer | undefined;

function reply(m: object): void {
  process.send?.(m);
}

process.on('message', (m: Command) => {
  void (async () => {
    if (m.cmd === 'seed') {
      server = await FakeApiServer.start({ absent: ['ciliumendpoints', 'ciliumnodes'] });
      const cluster = generateCluster(m.size);
      const objects = loadManifestText(cluster.clusterYaml, 'cluster.yaml').objects;
      for (const o of objects) server.apply(resourceOf[o.kind] ?? 'nodes', JSON.parse(JSON.stringify(o, (k, v: unknown) => (k === 'pos' ? undefined : v))) as JsonObject);
      // The policies as the API holds them: parse the YAML stream into JSON objects.
      const { parseAllDocuments } = await import('yaml');
      for (const d of parseAllDocuments(cluster.policiesYaml) as unknown as { toJS(): JsonObject }[]) server.apply('ciliumclusterwidenetworkpolicies', d.toJS());
      server.apply('endpointslices', { metadata: { name: 'kubernetes', namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } }, addressType: 'IPv4', endpoints: [{ addresses: ['192.0.2.50'] }] });
      reply({ ready: true, url: server.url, ca: server.cert.cert, nodeName: cluster.nodeName, pods: server.count('pods'), policies: server.count('ciliumclusterwidenetworkpolicies') });
    } else if (m.cmd === 'pod-ip' && server !== undefined) {
      const p = server.get('pods', m.name, m.namespace);
      if (p === undefined) throw new Error(`no pod ${m.namespace}/${m.name}`);
      const next = structuredClone(p) as unknown as JsonObject & { status: { podIPs: { ip: string }[] } };
      next.status.podIPs = [{ ip: m.ip }];
      server.apply('pods', next);
      reply({ applied: true });
    } else if (m.cmd === 'get' && server !== undefined) {
      reply({ object: server.get(m.resource as ResourceName, m.name, m.namespace) ?? null });
    } else if (m.cmd === 'apply' && server !== undefined) {
      server.apply(m.resource as ResourceName, m.object as unknown as JsonObject);
      reply({ applied: true });
    } else if (m.cmd === 'remove' && server !== undefined) {
      reply({ removed: server.remove(m.resource as ResourceName, m.name, m.namespace) });
    } else if (m.cmd === 'stop') {
      await server?.close();
      process.exit(0);
    }
  })().catch((err: unknown) => {
    reply({ error: err instanceof Error ? err.message : String(err) });
  });
});
