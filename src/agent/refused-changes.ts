// Refused changes: inputs the agent rolled back (a health probe broke, rollout-probes.ts; an unconfirmed
// change, commit-confirm) and must not apply again until they change. Handled like an invalid policy:
//
// - a refused POLICY VERSION (policy key + the content hash of that version) is replaced by its last good
//   version in the merge (last-good.ts), or left out when it has none (a new policy); every other policy
//   goes on changing normally. A new version of the policy (another hash), or its removal, clears the
//   refusal: the change is tried again.
// - a refused INPUT (the agent's input hash) covers changes that no policy version explains (a node label,
//   the config): the agent keeps the ruleset in force while the inputs are exactly those, and tries again
//   as soon as any input changes.
//
// API (also for commit-confirm's `rollout.confirm: manual`):
//   const r = await RefusedChanges.load(stateDir)      // corrupt/huge/FIFO file: quarantined, starts empty
//   r.refuse({ policies: [{ policy, version }], inputHash, by: 'probe 192.0.2.10:22', reason })
//   r.isRefused(policy, version)                        // the merge asks this per current policy version
//   r.isInputRefused(inputHash)                         // the agent asks this before applying
//   r.forgetChanged(currentVersions, inputHash)         // before each merge: clears what changed, returns it
//   r.list() / r.statusLines()                          // status.json `refused`, `nodewall status`
//   await r.save(stateDir)                              // after refuse/forget (no-op when unchanged)

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { arrayOf, field, literal, loadStateFile, obj, str, type Check, type StateFileError } from '../inventory/state-files.js';
import { refusalStatusCheck, writeJsonAtomic } from './status-file.js';

export interface RefusedVersion {
  /** Policy key (last-good.ts policyKey: name, or namespace/name). */
  readonly policy: string;
  /** PolicyDocument.hash of the refused version. */
  readonly version: string;
}

export interface Refusal {
  /** Refused policy versions; empty = the whole input (inputHash) is refused. */
  readonly policies: readonly RefusedVersion[];
  /** The agent input hash at the time: refuses the input as a whole when `policies` is empty. */
  readonly inputHash: string;
  /** What refused it, e.g. "probe 192.0.2.10:22" or "commit-confirm". */
  readonly by: string;
  /** One sentence for the operator (logs, status). */
  readonly reason: string;
  readonly at: string;
}

export const refusedFileName = 'refused.json';
/** A few refusals of a few policies: far below this. */
export const refusedMaxBytes = 1024 * 1024;
/** Bounded: the oldest refusals are forgotten first (their change is then simply tried again). */
export const maxRefusals = 256;

interface StoredRefusals {
  readonly version: 1;
  readonly refusals: readonly Refusal[];
}

const refusalCheck: Check<Refusal> = (v, path) => {
  const { policies, by, reason, at } = refusalStatusCheck(v, path);
  return { policies, inputHash: field(obj(v, path), 'inputHash', str, path), by, reason, at };
};

export function checkRefusals(v: unknown): StoredRefusals {
  const o = obj(v, '');
  field(o, 'version', literal(1), '');
  return { version: 1, refusals: field(o, 'refusals', arrayOf(refusalCheck), '') };
}

export class RefusedChanges {
  #refusals: Refusal[];
  #savedKey: string;

  constructor(refusals: readonly Refusal[] = []) {
    this.#refusals = refusals.slice(-maxRefusals);
    this.#savedKey = JSON.stringify(this.#refusals);
  }

  /**
   * The refusals kept in `<stateDir>/refused.json`. Missing = none; a corrupt, huge or non-regular file is
   * moved aside (`error` says so) and the agent starts with none: a change refused before is then tried
   * again, and the probes refuse it again if it still breaks them. Never throws.
   */
  static async load(stateDir: string): Promise<{ refused: RefusedChanges; error?: StateFileError }> {
    const { value, error } = await loadStateFile(join(stateDir, refusedFileName), refusedMaxBytes, checkRefusals);
    return { refused: new RefusedChanges(value?.refusals ?? []), ...(error === undefined ? {} : { error }) };
  }

  /** Write `<stateDir>/refused.json` (atomic, durable) when it changed since the last load/save. */
  async save(stateDir: string): Promise<void> {
    const key = JSON.stringify(this.#refusals);
    if (key === this.#savedKey) return;
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const stored: StoredRefusals = { version: 1, refusals: this.#refusals };
    await writeJsonAtomic(join(stateDir, refusedFileName), stored, { durable: true });
    this.#savedKey = key;
  }

  /** Record a refusal (a refusal of the same policy versions, or of the same whole input, is replaced). */
  refuse(r: Omit<Refusal, 'at'> & { at?: string }): Refusal {
    const rec: Refusal = { policies: r.policies, inputHash: r.inputHash, by: r.by, reason: r.reason, at: r.at ?? new Date().toISOString() };
    const same = (x: Refusal) => (rec.policies.length === 0
      ? x.policies.length === 0 && x.inputHash === rec.inputHash
      : x.policies.length > 0 && JSON.stringify(x.policies) === JSON.stringify(rec.policies));
    this.#refusals = [...this.#refusals.filter((x) => !same(x)), rec].slice(-maxRefusals);
    return rec;
  }

  /** Is this version of this policy refused? */
  isRefused(policy: string, version: string): boolean {
    return this.#refusals.some((r) => r.policies.some((p) => p.policy === policy && p.version === version));
  }

  /** Is this exact input refused as a whole? */
  isInputRefused(inputHash: string): boolean {
    return this.#refusals.some((r) => r.policies.length === 0 && r.inputHash === inputHash);
  }

  /**
   * Forget what changed since it was refused: a policy now at another version or gone (its other refused
   * policies stay refused), and whole-input refusals of another input. Returns the refusals (or their
   * parts) forgotten, for the log. `current`: policy key -> version hash of the input as read now.
   */
  forgetChanged(current: ReadonlyMap<string, string>, inputHash: string): Refusal[] {
    const forgotten: Refusal[] = [];
    const kept: Refusal[] = [];
    for (const r of this.#refusals) {
      if (r.policies.length === 0) {
        if (r.inputHash === inputHash) kept.push(r);
        else forgotten.push(r);
        continue;
      }
      const still = r.policies.filter((p) => current.get(p.policy) === p.version);
      const gone = r.policies.filter((p) => current.get(p.policy) !== p.version);
      if (gone.length > 0) forgotten.push({ ...r, policies: gone });
      if (still.length > 0) kept.push(still.length === r.policies.length ? r : { ...r, policies: still });
    }
    this.#refusals = kept;
    return forgotten;
  }

  list(): readonly Refusal[] {
    return this.#refusals;
  }

  get size(): number {
    return this.#refusals.length;
  }

  /** One line per refusal for `nodewall status`. */
  statusLines(): string[] {
    return this.#refusals.map(refusalLine);
  }
}

/** "policy lock-api (version 3f2a9c1e) refused at T by probe 192.0.2.10:22: REASON" */
export function refusalLine(r: Pick<Refusal, "policies" | "by" | "reason" | "at">): string {
  const what = r.policies.length === 0
    ? `the current input (no policy version explains the change; tried again when any input changes)`
    : `${r.policies.length === 1 ? 'policy' : 'policies'} ${r.policies.map((p) => `${p.policy} (version ${p.version.slice(0, 8)})`).join(', ')}`;
  return `${what} refused at ${r.at} by ${r.by}: ${r.reason}`;
}
