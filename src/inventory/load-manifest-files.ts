// Manifest files -> decoded policies and objects, for the CLI (loadManifestPaths)
// and the agent (loadManifestFile per file, reconcile.ts): both read through
// read-manifest-files.ts and turn its issues into the same problems.

import { loadManifestTextAsync, type LoadResult } from '../api/load-manifests.js';
import type { Problem } from '../api/problem.js';
import { defaultFileReadLimits, readManifestFiles, type FileIssueKind, type FileReadLimits, type ManifestFile, type ManifestFileError } from './read-manifest-files.js';

const issueCodes: Record<FileIssueKind, string> = {
  missing: 'load/unreadable',
  unreadable: 'load/unreadable',
  'not-regular': 'load/not-regular',
  'too-large': 'load/too-large',
  unsettled: 'load/unsettled',
  loop: 'load/symlink-loop',
  'too-deep': 'load/too-deep',
  'not-utf8': 'load/encoding',
};

export function fileIssueProblem(e: ManifestFileError): Problem {
  return { severity: e.severity, pos: { file: e.file, line: e.line, col: e.col }, field: '', message: e.reason, code: issueCodes[e.kind] };
}

/** True when a file held nothing at all: zero bytes, only whitespace, comments or empty documents. */
export function isEmptyLoad(load: LoadResult): boolean {
  return load.policies.length === 0 && load.objects.length === 0 && load.problems.length === 0 && (load.skipped ?? 0) === 0;
}

export const emptyFileCode = 'load/empty-file';

export interface LoadedManifestFile {
  readonly load: LoadResult;
  /** Nothing at all in it (a truncated file looks exactly like this). */
  readonly empty: boolean;
}

/** One file's text, loaded (yielding to the event loop between documents); an empty file gets a warning. */
export async function loadManifestFile(f: Pick<ManifestFile, 'file' | 'text'>): Promise<LoadedManifestFile> {
  const load = await loadManifestTextAsync(f.text, f.file);
  if (!isEmptyLoad(load)) return { load, empty: false };
  return { empty: true, load: {
    ...load,
    problems: [{
      severity: 'warning', pos: { file: f.file, line: 1, col: 1 }, field: '', code: emptyFileCode,
      message: 'file is empty (no YAML document): nothing loaded from it; if it is being written, it is read again once complete',
    }],
  } };
}

/**
 * The last load of each file, reused while the file's text is the same (its
 * sha256): the agent reads its sources on every pass, and parsing an
 * unchanged 100k-pod dump again each time costs about a second of CPU. The
 * load is handed out as it is (the same objects: nobody writes to a load),
 * which is what parsing the same text again would give. The owner forgets the
 * files that are gone (retainOnly), so a deleted dump is not kept alive.
 */
export class ManifestFileCache {
  readonly #entries = new Map<string, { readonly hash: string; readonly loaded: LoadedManifestFile }>();

  async load(f: Pick<ManifestFile, 'file' | 'text' | 'hash'>): Promise<LoadedManifestFile> {
    const hit = this.#entries.get(f.file);
    if (hit !== undefined && hit.hash === f.hash) return hit.loaded;
    const loaded = await loadManifestFile(f);
    this.#entries.set(f.file, { hash: f.hash, loaded });
    return loaded;
  }

  /** Forgets every file but these (the ones read this pass). */
  retainOnly(files: Iterable<string>): void {
    const keep = new Set(files);
    for (const file of this.#entries.keys()) if (!keep.has(file)) this.#entries.delete(file);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Loads files and directories (recursive; .yaml/.yml/.json, sorted). Never rejects for bad input. */
export async function loadManifestPaths(paths: readonly string[], limits: FileReadLimits = defaultFileReadLimits): Promise<LoadResult> {
  const read = await readManifestFiles(paths, limits);
  const out: LoadResult = { policies: [], objects: [], problems: read.issues.map(fileIssueProblem), skipped: 0 };
  for (const f of read.files) {
    const { load: one } = await loadManifestFile(f);
    // Loops, not push(...spread): one file may hold 100k+ objects.
    for (const x of one.policies) out.policies.push(x);
    for (const x of one.objects) out.objects.push(x);
    for (const x of one.problems) out.problems.push(x);
    out.skipped = (out.skipped ?? 0) + (one.skipped ?? 0);
  }
  return out;
}
