// What changed in a source's object list between two of its snapshots, by object identity, so that the
// pipeline does not walk 100k+ objects to find the one pod that changed (pipeline.ts StateBuilder).
//
// A source that can tell (the Kubernetes source: it sees every watch event) records, per snapshot, the
// objects gone from and come into its list since the snapshot before; an ObjectChangeLog keeps a few
// of those steps and composes them, so a consumer that skipped snapshots still gets its changes. A step
// the source could not follow (a relist, a kind started or stopped, the disk cache) is recorded as
// unknown: every question reaching back over it gets undefined, and the consumer compares whole lists.
// The contract is objectChanges' (build-inventory.ts): gone = in the old list and not in the new one,
// come = in the new list and not in the old one (test/inventory/object-feed.test.ts).

import type { KubeObject } from '../api/types.js';

export interface ObjectChanges {
  readonly gone: readonly KubeObject[];
  readonly come: readonly KubeObject[];
}

/** Where one snapshot's object list stands in its source's history. */
export interface ObjectFeed {
  /** One per list history (a source instance); revisions of different lineages are unrelated. */
  readonly lineage: object;
  readonly revision: number;
  /**
   * How many objects this snapshot's list holds, when the source told: a consumer checks counts with
   * it without making a list that the source makes only when read (kubernetes.ts).
   */
  readonly size?: number;
  /** Objects gone and come from `revision` (same lineage) to this one; undefined when not known (any more). */
  since(revision: number): ObjectChanges | undefined;
}

interface Step {
  readonly revision: number;
  /** undefined: the source could not follow this step. */
  readonly changes: ObjectChanges | undefined;
}

/** How many steps are kept, and how many changed objects at most a composed answer may hold. */
export interface ChangeLogLimits {
  readonly steps: number;
  readonly objects: number;
}

const defaultLimits: ChangeLogLimits = { steps: 32, objects: 5000 };

export class ObjectChangeLog {
  readonly lineage: object = {};
  readonly #limits: ChangeLogLimits;
  #steps: Step[] = [];

  constructor(limits: ChangeLogLimits = defaultLimits) {
    this.#limits = limits;
  }

  /**
   * Records the step to `revision` (revisions increase from step to step) and returns that snapshot's
   * feed. `changes` undefined: the step is unknown. `size`: how many objects that snapshot's list holds.
   */
  commit(revision: number, changes: ObjectChanges | undefined, size?: number): ObjectFeed {
    const last = this.#steps.at(-1);
    if (last !== undefined && revision <= last.revision) throw new RangeError(`ObjectChangeLog: revision ${revision} after ${last.revision}`);
    this.#steps.push({ revision, changes });
    if (this.#steps.length > this.#limits.steps) this.#steps = this.#steps.slice(-this.#limits.steps);
    const steps = this.#steps;
    const lineage = this.lineage;
    const limit = this.#limits.objects;
    return {
      lineage,
      revision,
      ...(size === undefined ? {} : { size }),
      // The steps array is replaced, never shortened in place, when trimmed: a feed keeps its own view.
      since: (from: number) => compose(steps, from, revision, limit),
    };
  }
}

/** The steps after `from` up to `to`, composed; undefined when one is unknown, missing, or the result is too big. */
function compose(steps: readonly Step[], from: number, to: number, limit: number): ObjectChanges | undefined {
  if (from === to) return { gone: [], come: [] };
  if (from > to) return undefined;
  let start = -1;
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i] as Step;
    if (s.revision <= from) {
      // The step that produced `from` must be kept: otherwise an unknown step may lie between.
      if (s.revision === from) start = i + 1;
      break;
    }
  }
  if (start < 0) return undefined;
  const gone = new Set<KubeObject>();
  const come = new Set<KubeObject>();
  for (let i = start; i < steps.length; i++) {
    const s = steps[i] as Step;
    if (s.revision > to) break;
    if (s.changes === undefined) return undefined;
    // An object that came after `from` and went again was never in the old list: it cancels out.
    for (const o of s.changes.gone) if (!come.delete(o)) gone.add(o);
    for (const o of s.changes.come) come.add(o);
  }
  if (gone.size > limit || come.size > limit) return undefined;
  return { gone: [...gone], come: [...come] };
}
