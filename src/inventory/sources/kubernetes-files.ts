// A Kubernetes snapshot in the agent's per-file shape (src/agent/last-good.ts
// LoadedFile: {file, textHash, load}): one entry per CCNP, named
// `k8s:ccnp/NAME`, so an invalid new version of one policy falls back to its
// last good version exactly like a bad manifest file; plus one entry holding
// the cluster objects (no policies, so it never takes part in last-good).

import type { LoadResult } from '../../api/load-manifests.js';
import type { ObjectFeed } from '../object-feed.js';
import type { KubernetesSnapshot } from './kubernetes.js';

export interface SnapshotFile {
  readonly file: string;
  /** sha256 of the CCNP text; for the objects entry "k8s-objects@<origin>#<revision>". */
  readonly textHash: string;
  readonly load: LoadResult & { readonly objectFeed?: ObjectFeed };
  /** The CCNP's text (for a persisted last-good store); undefined for the objects entry. */
  readonly text?: string;
}

export const KUBERNETES_OBJECTS_FILE = 'k8s:cluster-objects';

export function snapshotFiles(s: KubernetesSnapshot): SnapshotFile[] {
  const out: SnapshotFile[] = s.policyFiles.map((f) => ({ file: f.file, textHash: f.hash, load: f.load, text: f.text }));
  out.push({
    file: KUBERNETES_OBJECTS_FILE,
    textHash: `k8s-objects@${s.origin}#${s.revision}`,
    // The snapshot's list is read only when needed (a getter: the source makes it on first read).
    load: {
      get objects() {
        return s.objects;
      },
      policies: [],
      problems: [],
      ...(s.objectFeed === undefined ? {} : { objectFeed: s.objectFeed }),
    },
  });
  return out;
}
