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
