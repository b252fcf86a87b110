// Persist the last good policies and config in stateDir/last-good.json so a
// restarted agent (after a crash, a reboot) still has a good version of a
// policy whose file is broken now. Each policy is stored as the text of the
// file it came from (content-addressed, shared between policies of one file)
// and re-parsed on load, so the store needs no serializer of its own.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadManifestText } from '../api/load-manifests.js';
import type { GoodEntry } from './last-good.js';
import { policyKey } from './last-good.js';
import { writeJsonAtomic } from './status-file.js';
import { field, literal, loadStateFile, obj, optional, recordOf, ShapeError, str, type StateFileError } from '../inventory/state-files.js';

export const lastGoodFileName = 'last-good.json';

interface StoredFile {
  version: 1;
  config?: { file: string; text: string };
  policies: Record<string, { file: string; textHash: string }>;
  texts: Record<string, string>;
}

export interface StoredLastGood {
  readonly config?: { file: string; text: string };
  readonly policies: Map<string, GoodEntry>;
}

export async function saveLastGood(
  stateDir: string,
  policies: ReadonlyMap<string, GoodEntry>,
  texts: (hash: string) => string | undefined,
  config?: { file: string; text: string },
): Promise<void> {
  const out: StoredFile = { version: 1, policies: {}, texts: {}, ...(config === undefined ? {} : { config }) };
  for (const [key, g] of policies) {
    const text = out.texts[g.textHash] ?? texts(g.textHash);
    if (text === undefined) continue;
    out.texts[g.textHash] = text;
    out.policies[key] = { file: g.file, textHash: g.textHash };
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(join(stateDir, lastGoodFileName), out, { durable: true });
}

/** Upper bound for last-good.json: policy texts of a large cluster, far below what would exhaust memory. */
export const lastGoodMaxBytes = 256 * 1024 * 1024;

/** Shape check of a parsed store (throws ShapeError naming the field). */
export function checkStoredFile(v: unknown): StoredFile {
  const o = obj(v, '');
  field(o, 'version', literal(1), '');
  const texts = field(o, 'texts', recordOf(str), '');
  const policies = field(o, 'policies', recordOf((p, path) => {
    const e = obj(p, path);
    field(e, 'file', str, path);
    const h = field(e, 'textHash', str, path);
    // A policy without its text was never written by saveLastGood: the file was altered.
    if (!Object.hasOwn(texts, h)) throw new ShapeError(`${path}.textHash`, 'the key of an entry in texts', h);
    return e as { file: string; textHash: string };
  }), '');
  const config = optional(o, 'config', (c, path) => {
    const e = obj(c, path);
    return { file: field(e, 'file', str, path), text: field(e, 'text', str, path) };
  }, '');
  return { version: 1, policies, texts, ...(config === undefined ? {} : { config }) };
}

/**
 * Missing store = nothing known. A corrupt one (wrong shape, truncated,
 * non-regular, huge) is moved aside to last-good.json.corrupt and reported as
 * `error`; the agent then starts from the current input only.
 */
export async function loadLastGood(stateDir: string): Promise<StoredLastGood & { error?: StateFileError }> {
  const { value: raw, error } = await loadStateFile(join(stateDir, lastGoodFileName), lastGoodMaxBytes, checkStoredFile);
  if (raw === undefined) return { policies: new Map(), ...(error === undefined ? {} : { error }) };
  const policies = new Map<string, GoodEntry>();
  const parsed = new Map<string, ReturnType<typeof loadManifestText>>();
  for (const [key, ref] of Object.entries(raw.policies)) {
    const text = raw.texts[ref.textHash];
    if (text === undefined) continue;
    const cacheKey = `${ref.textHash}|${ref.file}`;
    let load = parsed.get(cacheKey);
    if (load === undefined) {
      load = loadManifestText(text, ref.file);
      parsed.set(cacheKey, load);
    }
    const doc = load.policies.find((p) => policyKey(p) === key);
    // Only a version that still decodes cleanly counts as good.
    const broken = doc === undefined || (doc.decodeProblems ?? []).some((p) => p.severity === 'error')
      || load.problems.some((p) => p.severity === 'error' && p.policy === doc.name);
    if (!broken) policies.set(key, { key, file: ref.file, textHash: ref.textHash, doc });
  }
  return { policies, ...(raw.config === undefined ? {} : { config: raw.config }) };
}
