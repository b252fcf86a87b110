import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest directory above this file with a package.json (works from dist-agent/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('repository root not found');
}

/** The CLI entry as built next to this test (dist-NAME/src/bin/nodewall.js). */
export function cliPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'bin', 'nodewall.js');
}
