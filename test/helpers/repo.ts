import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest directory above this file holding package.json (works from dist/ and dist-NAME/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('repository root not found above test/helpers/repo');
}

/** The shared corpus of public host policies, beside the repository (../shared in CI). */
export function corpusDir(): string {
  return join(repoRoot(), '..', 'shared', 'corpus', 'cilium-examples');
}
