// The one reader of manifest FILES (the CLI through loadManifestPaths, the
// agent through reconcile.ts), so both see the same bytes and the same problems.
//
// Hostile or unlucky file systems it survives:
// - non-regular files (FIFO, socket, /dev/zero directly or through a symlink):
//   opened O_NONBLOCK (a FIFO never blocks), checked with fstat on the open fd,
//   skipped with a warning; nothing but a regular file is ever read;
// - huge files: at most maxFileBytes + 1 bytes are read, a bigger file is an error;
// - symlink loops and several routes to one file: each real file and directory
//   (device + inode) is visited once, a loop is reported once;
// - files caught mid-write: a file is trusted only when it has stopped changing
//   (same fstat before and after the read, and quiet for settleMs since its
//   last change, or read twice settleMs apart with the same signature and
//   bytes, which also settles a file whose mtime lies in the future).
//
// Directories are read recursively; entries starting with "." are skipped,
// which leaves out editor temp files and the "..data" / "..2024_..." directories
// of a mounted ConfigMap (its files are reached through the top-level symlinks).

import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileType, readBounded, type BoundedRead, type BoundedReadError } from './read-bounded.js';
import { findUtf8Problem } from './utf8-check.js';

/** Default per-file size limit (config key `maxFileBytes`). */
export const DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024;
/** Default quiet time before a changed file is trusted (config key `debounceMs`, shared with the agent's debouncer). */
export const DEFAULT_SETTLE_MS = 300;

export interface FileReadLimits {
  /** A file bigger than this is an error (not read beyond limit + 1 bytes). */
  readonly maxFileBytes: number;
  /** A file is trusted once it has not changed for this long. */
  readonly settleMs: number;
  /** How long one read may wait for unsettled files to settle before reporting them. */
  readonly settleWaitMs: number;
}

/** The limits a config asks for (keys maxFileBytes and debounceMs). */
export function fileReadLimits(config: { readonly maxFileBytes?: number | undefined; readonly debounceMs?: number | undefined }): FileReadLimits {
  const settleMs = config.debounceMs ?? DEFAULT_SETTLE_MS;
  // Wait a few quiet times in-read (editors and config tools finish within that), at most 5 s, then report
  // the file as unsettled (the agent reads it again once quiet; the CLI reports an error).
  return { maxFileBytes: config.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, settleMs, settleWaitMs: Math.min(Math.max(4 * settleMs, 1000), 5000) };
}

export const defaultFileReadLimits: FileReadLimits = fileReadLimits({});

export interface ManifestFile {
  readonly file: string;
  readonly text: string;
  /** sha256 of `text`. */
  readonly hash: string;
  readonly bytes: number;
}

/**
 * missing: a named source does not exist (or a symlink in a directory dangles);
 * unreadable: open/read failed; not-regular: FIFO, socket, device (skipped);
 * too-large: over maxFileBytes; unsettled: still changing; loop: a symlink leads
 * back to a directory being read (not followed); too-deep: nesting limit;
 * not-utf8: bytes that are not UTF-8 (refused, not decoded with U+FFFD).
 */
export type FileIssueKind = 'missing' | 'unreadable' | 'not-regular' | 'too-large' | 'unsettled' | 'loop' | 'too-deep' | 'not-utf8';

export class ManifestFileError extends Error {
  override readonly name = 'ManifestFileError';
  readonly file: string;
  readonly kind: FileIssueKind;
  readonly severity: 'error' | 'warning';
  /** errno code (ENOENT, EACCES, ...) when the system said no. */
  readonly code: string | undefined;
  /** The message without the file name (for problems, which carry the file apart). */
  readonly reason: string;
  /** Where in the file, when the issue is at a place in it (not-utf8); else the file as a whole (1:1). */
  readonly line: number;
  readonly col: number;

  constructor(file: string, kind: FileIssueKind, reason: string, options?: { cause?: unknown; code?: string | undefined; line?: number; col?: number }) {
    super(`${file}${options?.line === undefined ? '' : `:${options.line}:${options.col ?? 1}`}: ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.file = file;
    this.line = options?.line ?? 1;
    this.col = options?.col ?? 1;
    this.reason = reason;
    this.kind = kind;
    this.severity = kind === 'not-regular' || kind === 'loop' ? 'warning' : 'error';
    this.code = options?.code;
  }

  /**
   * True when the policies this path held must keep their last good versions
   * (anything but a loop, whose files are read through another route anyway).
   */
  get holdsLastGood(): boolean {
    return this.kind !== 'loop' && this.kind !== 'too-deep';
  }
}

export interface ManifestFileRead {
  /** Settled regular files, sorted by path. */
  readonly files: ManifestFile[];
  /** Everything that was not read, with why (in walk order; unsettled files last). */
  readonly issues: ManifestFileError[];
  /** Every directory visited, for the watcher. */
  readonly dirs: string[];
}

/** Clocks, replaceable in tests: wall time (compared with mtimes) and a monotonic one. */
export interface ReadClock {
  wallMs(): number;
  monoMs(): number;
  sleep(ms: number): Promise<void>;
}

const systemClock: ReadClock = {
  wallMs: () => Date.now(),
  monoMs: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

const manifestName = /\.(ya?ml|json)$/i;
const maxDepth = 32;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

interface Walk {
  readonly candidates: { file: string; explicit: boolean }[];
  readonly issues: ManifestFileError[];
  readonly dirs: string[];
  /** dev:ino of every file and directory met. */
  readonly seen: Set<string>;
}

export async function readManifestFiles(paths: readonly string[], limits: FileReadLimits = defaultFileReadLimits,
  clock: ReadClock = systemClock): Promise<ManifestFileRead> {
  const walk: Walk = { candidates: [], issues: [], dirs: [], seen: new Set() };
  for (const p of paths) await visit(p, true, [], walk);

  const files: ManifestFile[] = [];
  const issues = walk.issues;
  let pending: { file: string; prev?: Observation }[] = walk.candidates.map((c) => ({ file: c.file }));
  const deadline = clock.monoMs() + limits.settleWaitMs;
  for (let round = 0; pending.length > 0; round++) {
    const unsettled: { file: string; prev: Observation; waitMs: number }[] = [];
    for (const c of pending) {
      // One file at a time, yielding in between: a big input never starves the agent's timers.
      await yieldToLoop();
      const r = await readOne(c.file, limits, clock, c.prev);
      if (r instanceof ManifestFileError) issues.push(r);
      else if (r.settled) files.push(r.file);
      else unsettled.push({ file: c.file, prev: r.observation, waitMs: r.waitMs });
    }
    const waitMs = Math.max(0, ...unsettled.map((u) => u.waitMs));
    if (unsettled.length === 0 || round >= 20 || clock.monoMs() + waitMs > deadline) {
      for (const u of unsettled) {
        issues.push(new ManifestFileError(u.file, 'unsettled',
          `still changing (modified less than ${limits.settleMs} ms ago, or while being read): not trusted yet, re-read once it is quiet`));
      }
      break;
    }
    await clock.sleep(waitMs);
    pending = unsettled.map((u) => ({ file: u.file, prev: u.prev }));
  }
  files.sort((a, b) => a.file.localeCompare(b.file));
  return { files, issues, dirs: walk.dirs };
}

function idOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}


function notRegular(file: string, type: string): ManifestFileError {
  return new ManifestFileError(file, 'not-regular', `not a regular file (${type}): skipped`);
}

async function visit(path: string, explicit: boolean, ancestors: readonly string[], walk: Walk): Promise<void> {
  let st: BigIntStats;
  try {
    st = await stat(path, { bigint: true });
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' && !explicit) {
      // Gone since readdir (a delete), unless it is a symlink that dangles: that is an error to see.
      const link = await lstat(path).catch(() => undefined);
      if (link === undefined || !link.isSymbolicLink()) return;
      walk.issues.push(new ManifestFileError(path, 'missing', `cannot read: symlink target missing (${why(err)})`, { cause: err, code }));
      return;
    }
    walk.issues.push(new ManifestFileError(path, code === 'ENOENT' ? 'missing' : 'unreadable', `cannot read: ${why(err)}`, { cause: err, code }));
    return;
  }
  const id = idOf(st);
  if (st.isDirectory()) {
    if (ancestors.includes(id)) {
      walk.issues.push(new ManifestFileError(path, 'loop', `symlink loop (leads back to a directory being read): not followed`));
      return;
    }
    // Another route to a directory read already: nothing new there.
    if (walk.seen.has(id)) return;
    if (ancestors.length >= maxDepth) {
      walk.issues.push(new ManifestFileError(path, 'too-deep', `nested deeper than ${maxDepth} directories: not read`));
      return;
    }
    walk.seen.add(id);
    walk.dirs.push(path);
    let names: string[];
    try {
      names = (await readdir(path)).sort();
    } catch (err) {
      walk.issues.push(new ManifestFileError(path, 'unreadable', `cannot read directory: ${why(err)}`, { cause: err, code: errnoOf(err) }));
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const child = join(path, name);
      // Directories are always entered; files only with a manifest extension.
      const cst = await stat(child).catch(() => undefined);
      if (cst?.isDirectory() === true || manifestName.test(name)) await visit(child, false, [...ancestors, id], walk);
    }
    return;
  }
  if (walk.seen.has(id)) return; // the same file through another name
  walk.seen.add(id);
  if (!st.isFile()) {
    walk.issues.push(notRegular(path, fileType(st)));
    return;
  }
  walk.candidates.push({ file: path, explicit });
}

/** What identifies one version of a file without reading it. */
interface Signature {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

interface Observation {
  readonly sig: Signature;
  readonly hash: string;
  readonly atMono: number;
}

function signature(st: BigIntStats): Signature {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

export function sameSignature(a: Signature, b: Signature): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

type ReadOutcome =
  | { readonly settled: true; readonly file: ManifestFile }
  | { readonly settled: false; readonly observation: Observation; readonly waitMs: number };

/**
 * Settled when the fd's signature did not change during the read and either
 * the last change (mtime or ctime) is settleMs old, or the previous read of
 * this call saw the same signature and bytes at least settleMs ago (an mtime
 * in the future, clock skew). Otherwise: how long to wait before the next try.
 */
export function settleVerdict(before: Signature, after: Signature, hash: string, prev: Observation | undefined,
  settleMs: number, wallNow: number, monoNow: number): { settled: boolean; observation: Observation; waitMs: number } {
  const observation: Observation = { sig: after, hash, atMono: monoNow };
  if (!sameSignature(before, after)) return { settled: false, observation, waitMs: settleMs };
  const lastChangeMs = Number((after.mtimeNs > after.ctimeNs ? after.mtimeNs : after.ctimeNs) / 1_000_000n);
  const age = wallNow - lastChangeMs;
  if (age >= settleMs) return { settled: true, observation, waitMs: 0 };
  if (prev !== undefined && sameSignature(prev.sig, after) && prev.hash === hash) {
    const seenFor = monoNow - prev.atMono;
    if (seenFor >= settleMs) return { settled: true, observation: prev, waitMs: 0 };
    return { settled: false, observation: prev, waitMs: settleMs - seenFor };
  }
  // Young: wait out the rest of the quiet time. In the future: wait a full one, then compare.
  return { settled: false, observation, waitMs: age >= 0 ? settleMs - age : settleMs };
}

async function readOne(file: string, limits: FileReadLimits, clock: ReadClock, prev: Observation | undefined): Promise<ReadOutcome | ManifestFileError> {
  let r: BoundedRead;
  try {
    r = await readBounded(file, limits.maxFileBytes);
  } catch (err) {
    const e = err as BoundedReadError;
    if (e.kind === 'not-regular') return notRegular(file, e.fileType ?? 'special file');
    if (e.kind === 'too-large') return tooLarge(file, e.size, limits.maxFileBytes);
    return new ManifestFileError(file, e.kind === 'missing' ? 'missing' : 'unreadable', `cannot read: ${why(e.cause ?? e)}`, { cause: e, code: e.code });
  }
  const bad = findUtf8Problem(r.bytes);
  if (bad !== undefined) {
    return new ManifestFileError(file, 'not-utf8',
      `not UTF-8: ${bad.what} at line ${bad.line}, column ${bad.col} (byte offset ${bad.offset}): file not loaded; ` +
        'Kubernetes manifests are UTF-8 (save it as UTF-8)', { line: bad.line, col: bad.col });
  }
  const text = decodeText(r.bytes);
  const hash = sha256(text);
  const v = settleVerdict(signature(r.before), signature(r.after), hash, prev, limits.settleMs, clock.wallMs(), clock.monoMs());
  if (v.settled) return { settled: true, file: { file, text, hash, bytes: r.bytes.length } };
  return { settled: false, observation: v.observation, waitMs: v.waitMs };
}

/**
 * The file's text. ASCII (nearly every manifest) is decoded as latin1, which
 * gives the same string: Node keeps a big latin1 string outside the V8 heap
 * (an external string), so a 25 MB dump does not count towards the heap size
 * V8 sizes its next collection by, and is freed once the parse is done with
 * it. Anything else (checked UTF-8 by now) is decoded as UTF-8.
 */
export function decodeText(bytes: Buffer): string {
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

function tooLarge(file: string, size: bigint | undefined, limit: number): ManifestFileError {
  const what = size === undefined ? `grew past ${limit} bytes while being read` : `${size} bytes`;
  return new ManifestFileError(file, 'too-large',
    `file too large: ${what}, over the limit of ${limit} bytes (config key maxFileBytes): not read; ` +
      'raise maxFileBytes if this file is meant to be this big');
}
