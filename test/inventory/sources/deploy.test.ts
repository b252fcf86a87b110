// deploy/: RBAC grants read-only access to exactly what the Kubernetes source
// reads; the DaemonSet is host-network with NET_ADMIN only.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import { kindSpecs } from '../../../src/inventory/sources/kube-kinds.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

type Doc = { kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

function docs(file: string): Doc[] {
  const parsed = parseAllDocuments(readFileSync(join(repoRoot(), 'deploy', file), 'utf8'));
  if (!Array.isArray(parsed)) throw new Error('not a YAML stream');
  for (const d of parsed) if (d.errors.length > 0) throw new Error(d.errors[0]?.message);
  return parsed.map((d) => d.toJS() as Doc);
}

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** "group/resource" for every path the source reads, and where (cluster or a namespace). */
function readPaths(): { res: string; namespace?: string }[] {
  return Object.values(kindSpecs).map((k) => {
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)$/.exec(k.path);
    if (m === null) throw new Error(`unexpected path ${k.path}`);
    return { res: `${m[1] ?? ''}/${m[3] ?? ''}`, ...(m[2] === undefined ? {} : { namespace: m[2] }) };
  });
}

function granted(rules: PolicyRule[]): string[] {
  return rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`))).sort();
}

test('the ClusterRole and the default-namespace Role grant get/list/watch on exactly what is read', (t) => {
  const all = docs('rbac.yaml');
  const clusterRole = all.find((d) => d.kind === 'ClusterRole');
  const role = all.find((d) => d.kind === 'Role');
  if (clusterRole === undefined || role === undefined) return t.fail('ClusterRole or Role missing');
  const paths = readPaths();
  t.deepEqual(granted(clusterRole['rules'] as PolicyRule[]), paths.filter((p) => p.namespace === undefined).map((p) => p.res).sort());
  t.is(role.metadata.namespace, 'default');
  t.deepEqual(granted(role['rules'] as PolicyRule[]), paths.filter((p) => p.namespace === 'default').map((p) => p.res).sort());
  for (const r of [...(clusterRole['rules'] as PolicyRule[]), ...(role['rules'] as PolicyRule[])]) t.deepEqual(r.verbs, ['get', 'list', 'watch']);
  // Both bindings point at the nodewall ServiceAccount.
  const sa = all.find((d) => d.kind === 'ServiceAccount');
  for (const b of all.filter((d) => d.kind.endsWith('Binding'))) {
    t.deepEqual(b['subjects'], [{ kind: 'ServiceAccount', name: sa?.metadata.name, namespace: sa?.metadata.namespace }]);
  }
});

test('the DaemonSet: host network, NET_ADMIN only, the two host directories, the ServiceAccount', (t) => {
  const [ds] = docs('daemonset.yaml');
  const pod = (ds?.['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
  t.true(pod['hostNetwork']);
  t.is(pod['serviceAccountName'], docs('rbac.yaml').find((d) => d.kind === 'ServiceAccount')?.metadata.name);
  const c = (pod['containers'] as { securityContext: Record<string, unknown>; volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }[])[0];
  t.deepEqual(c?.securityContext['capabilities'], { drop: ['ALL'], add: ['NET_ADMIN'] });
  t.false(c?.securityContext['privileged']);
  t.false(c?.securityContext['allowPrivilegeEscalation']);
  const mounts = Object.fromEntries((c?.volumeMounts ?? []).map((m) => [m.mountPath, m.readOnly === true]));
  t.is(mounts['/etc/nodewall'], true);
  t.is(mounts['/var/lib/nodewall'], false);
  const hostPaths = (pod['volumes'] as { hostPath?: { path: string } }[]).flatMap((v) => (v.hostPath === undefined ? [] : [v.hostPath.path])).sort();
  t.deepEqual(hostPaths, ['/etc/nodewall', '/var/lib/nodewall']);
});

test('the DaemonSet shares the pod\'s process namespace: pause is PID 1 and reaps the orphans of a killed nft launcher (node as PID 1 does not); nothing else is shared', (t) => {
  const [ds] = docs('daemonset.yaml');
  const pod = (ds?.['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
  t.is(pod['shareProcessNamespace'], true);
  // The namespace holds only pause and this container: not the host's processes, no second container.
  t.not(pod['hostPID'], true);
  t.not(pod['hostIPC'], true);
  t.is((pod['containers'] as unknown[]).length, 1);
  t.is(pod['initContainers'], undefined);
  const c = (pod['containers'] as { securityContext: Record<string, unknown> }[])[0];
  t.deepEqual(c?.securityContext['capabilities'], { drop: ['ALL'], add: ['NET_ADMIN'] });
  t.is(c?.securityContext['readOnlyRootFilesystem'], true);
  t.deepEqual(c?.securityContext['seccompProfile'], { type: 'RuntimeDefault' });
});
