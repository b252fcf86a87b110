// Read every manifest file of the sources once: the same bytes are hashed
// (change detection, last-good store) and parsed. Directories are read
// recursively; entries starting with "." are skipped, which leaves out editor
// temp files and the "..data" / "..2024_..." directories of a mounted
// ConfigMap (its files are reached through the top-level symlinks).

import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface SourceText {
  readonly file: string;
  readonly text: string;
  readonly hash: string;
}

export interface SourceError {
  readonly file: string;
  readonly message: string;
  readonly code?: string;
}

export interface SourceRead {
  readonly files: SourceText[];
  /** Files (or source paths) that exist but could not be read, and sources that do not exist. */
  readonly errors: SourceError[];
  /** Every directory visited, for the watcher. */
  readonly dirs: string[];
}

const manifest = /\.(ya?ml|json)$/i;
const maxDepth = 16;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function readSources(paths: readonly string[]): Promise<SourceRead> {
  const out: SourceRead = { files: [], errors: [], dirs: [] };
  const seen = new Set<string>();
  for (const p of paths) await visit(p, true, 0, out, seen);
  out.files.sort((a, b) => a.file.localeCompare(b.file));
  return out;
}

async function visit(path: string, explicit: boolean, depth: number, out: SourceRead, seen: Set<string>): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // A vanished file inside a directory is a delete; a configured source that is missing is an error.
    if (explicit || e.code !== 'ENOENT') out.errors.push({ file: path, message: e.message, ...(e.code === undefined ? {} : { code: e.code }) });
    return;
  }
  if (st.isDirectory()) {
    if (depth > maxDepth) return;
    out.dirs.push(path);
    let names: string[];
    try {
      names = (await readdir(path)).sort();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      out.errors.push({ file: path, message: e.message, ...(e.code === undefined ? {} : { code: e.code }) });
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const child = join(path, name);
      let cst;
      try {
        cst = await stat(child);
      } catch {
        continue;
      }
      if (cst.isDirectory() || manifest.test(name)) await visit(child, false, depth + 1, out, seen);
    }
    return;
  }
  if (seen.has(path)) return;
  seen.add(path);
  try {
    const text = await readFile(path, 'utf8');
    out.files.push({ file: path, text, hash: sha256(text) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    out.errors.push({ file: path, message: e.message, ...(e.code === undefined ? {} : { code: e.code }) });
  }
}
