// Locates the shared example corpus: `<repo>/../shared/corpus/cilium-examples`,
// with the repo root found by walking up to the directory holding package.json
// (works from test/api and from dist-*/test/api).
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export const corpusDir = join(repoRoot(), '..', 'shared', 'corpus', 'cilium-examples');

export function corpusFile(name: string): string {
  return join(corpusDir, name);
}

/** The corpus manifests, sorted. */
export function corpusFiles(): string[] {
  return readdirSync(corpusDir).filter((f) => f.endsWith('.yaml')).sort();
}
