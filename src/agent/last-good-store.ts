// Persist the last good policies and config in stateDir/last-good.json so a
// restarted agent (after a crash, a reboot) still has a good version of a
// policy whose file is broken now. Each policy is stored as the text of the
// file it came from (content-addressed, shared between policies of one file)
// and re-parsed on load, so the store needs no serializer of its own.

import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadManifestText } from '../api/load-manifests.js';
import type { GoodEntry } from './last-good.js';
import { policyKey } from './last-good.js';
import { writeJsonAtomic } from './status-file.js';

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
  await writeJsonAtomic(join(stateDir, lastGoodFileName), out);
}

/** Missing or unreadable store = nothing known (the agent then starts from the current input only). */
export async function loadLastGood(stateDir: string): Promise<StoredLastGood & { error?: string }> {
  let raw: StoredFile;
  try {
    raw = JSON.parse(await readFile(join(stateDir, lastGoodFileName), 'utf8')) as StoredFile;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { policies: new Map(), ...(code === 'ENOENT' ? {} : { error: (err as Error).message }) };
  }
  const policies = new Map<string, GoodEntry>();
  const parsed = new Map<string, ReturnType<typeof loadManifestText>>();
  for (const [key, ref] of Object.entries(raw.policies ?? {})) {
    const text = raw.texts?.[ref.textHash];
    if (text === undefined) continue;
    const cacheKey = `${ref.textHash}|${ref.file}`;
    let load = parsed.get(cacheKey);
    if (load === undefined) {
      load = loadManifestText(text, ref.file);
      parsed.set(cacheKey, load);
    }
    const doc = load.policies.find((p) => policyKey(p) === key);
    if (doc !== undefined) policies.set(key, { key, file: ref.file, textHash: ref.textHash, doc });
  }
  return { policies, ...(raw.config === undefined ? {} : { config: raw.config }) };
}
