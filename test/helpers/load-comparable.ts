import type { LoadResult } from '../../src/api/load-manifests.js';

/**
 * Everything of a load in a form deepEqual can compare: each policy's locate() turned into the position
 * of every path in `paths` (paths it knows and some it does not), as [path, position] pairs when `pairs`.
 */
export function comparableLoad(r: LoadResult, paths: readonly string[], pairs = false): unknown {
  return {
    objects: r.objects,
    problems: r.problems,
    skipped: r.skipped,
    policies: r.policies.map((p) => {
      const { locate, ...rest } = p;
      return { ...rest, at: paths.map((f) => (pairs ? [f, locate(f)] : locate(f))) };
    }),
  };
}
