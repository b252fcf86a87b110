// Watch DIRECTORIES, never single files: an atomic save (write temp + rename)
// or a ConfigMap "..data" symlink swap replaces the inode and a file watch
// would go silent. Every event counts as "something changed"; the caller
// debounces and compares content hashes. The set of watched directories is
// re-synced after every reconcile (new subdirectories, a source dir that
// appeared).

import { watch, type FSWatcher } from 'node:fs';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface DirWatcher {
  /** Watch exactly these directories (plus the nearest existing ancestor of missing ones). */
  sync(dirs: readonly string[]): void;
  readonly watched: readonly string[];
  close(): void;
}

export function watchDirs(onEvent: (dir: string, file: string | null) => void, onError: (dir: string, err: Error) => void): DirWatcher {
  const watchers = new Map<string, FSWatcher>();
  const close = (dir: string): void => {
    watchers.get(dir)?.close();
    watchers.delete(dir);
  };
  return {
    sync(dirs) {
      const want = new Set<string>();
      for (const d of dirs) want.add(existingAncestor(resolve(d)));
      for (const dir of [...watchers.keys()]) if (!want.has(dir)) close(dir);
      for (const dir of want) {
        if (watchers.has(dir)) continue;
        try {
          const w = watch(dir, { persistent: false }, (_event, file) => onEvent(dir, file === null ? null : String(file)));
          w.on('error', (err) => {
            // The directory was deleted or replaced: drop the watch, let the next sync re-create it.
            close(dir);
            onError(dir, err);
          });
          watchers.set(dir, w);
        } catch (err) {
          onError(dir, err as Error);
        }
      }
    },
    get watched() {
      return [...watchers.keys()].sort();
    },
    close() {
      for (const dir of [...watchers.keys()]) close(dir);
    },
  };
}

function existingAncestor(dir: string): string {
  let d = dir;
  for (let i = 0; i < 64 && !existsSync(d); i++) {
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return d;
}

/** Directories to watch for a set of sources + config: directory sources as read, parents of file sources. */
export function dirsToWatch(sourceDirs: readonly string[], files: readonly string[]): string[] {
  const out = new Set<string>(sourceDirs.map((d) => resolve(d)));
  for (const f of files) out.add(dirname(resolve(f)));
  return [...out].sort();
}
