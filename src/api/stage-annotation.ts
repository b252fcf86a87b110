// The `nodewall.io/stage` annotation of a CCNP (metadata.annotations): `audit`
// stages the policy (evaluated and reported, never enforced: src/policy/staged.ts),
// `enforce` is the default made explicit. Any other value is an error at the
// annotation's own position: a typo must neither enforce a policy its author
// meant to stage nor silently drop it.

import { childPath } from './field-path.js';
import { shown } from './printable.js';

export const stageAnnotation = 'nodewall.io/stage';
export const stageValues = ['audit', 'enforce'] as const;
export type Stage = (typeof stageValues)[number];

/** Field path of the annotation, as problems print it. */
export const stageAnnotationPath = childPath('metadata.annotations', stageAnnotation);

export interface StageProblem {
  readonly field: string;
  readonly message: string;
}

/**
 * The stage an object's metadata asks for. `metadata` is the decoded
 * metadata map (or anything); only own properties are read.
 */
export function stageOf(metadata: unknown): { stage?: Stage; problem?: StageProblem } {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return {};
  const annotations = Object.hasOwn(metadata, 'annotations') ? (metadata as Record<string, unknown>)['annotations'] : undefined;
  if (annotations === undefined || annotations === null) return {};
  if (typeof annotations !== 'object' || Array.isArray(annotations)) {
    return { problem: { field: 'metadata.annotations', message: 'must be a map of strings' } };
  }
  if (!Object.hasOwn(annotations, stageAnnotation)) return {};
  const v = (annotations as Record<string, unknown>)[stageAnnotation];
  const found = stageValues.find((s) => s === v);
  if (found !== undefined) return { stage: found };
  const got = typeof v === 'string' ? shown(v) : `a ${v === null ? 'null' : typeof v}`;
  return {
    problem: {
      field: stageAnnotationPath,
      message: `unknown stage ${got}: must be "audit" (evaluate and report, never enforce) or "enforce"; the policy is not applied until this is fixed`,
    },
  };
}
