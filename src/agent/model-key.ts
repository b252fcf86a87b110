// A key per model, so that a pass can tell "the model in force" from "a new
// one" without hashing the whole model (sha256 of JSON.stringify cost about a
// second at 100k pods, on every pod event).
//
// Models are immutable: the incremental model (policy/incremental-model.ts)
// hands out a new HostModel object whenever anything in it changes, and the
// same object when nothing did. So a model already seen keeps its key, and a
// model made by an incremental update gets a fresh counter key. A model built
// from scratch (first pass, resync, config change) is hashed by content, so an
// unchanged cluster rebuilt in full still compares equal to what is in force.

import { sha256 } from '../inventory/read-manifest-files.js';
import type { HostModel } from '../policy/model.js';

export class ModelKeys {
  readonly #keys = new WeakMap<HostModel, string>();
  #next = 0;

  /** `incremental`: the model came from an incremental update of an earlier one (StateBuilder.madeIncrementally). */
  keyOf(model: HostModel, incremental: boolean): string {
    let key = this.#keys.get(model);
    if (key === undefined) {
      key = incremental ? `incremental:${++this.#next}` : sha256(JSON.stringify(model));
      this.#keys.set(model, key);
    }
    return key;
  }
}
