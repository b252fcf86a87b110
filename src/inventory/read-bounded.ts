// The one way nodewall reads a file it did not just write: config, kubeconfig,
// manifests, state files. Opened without blocking (a FIFO without a writer
// must not hang the agent), checked on the open descriptor (only regular
// files; the check and the read see the same file), and never more than
// limit + 1 bytes read, whatever the file claims or becomes (/dev/zero, a
// file growing while read).

import { constants, type BigIntStats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';

export type BoundedReadFailure = 'missing' | 'symlink' | 'not-regular' | 'too-large' | 'unreadable';

export class BoundedReadError extends Error {
  override readonly name = 'BoundedReadError';
  readonly path: string;
  readonly kind: BoundedReadFailure;
  /** errno code of the failed system call, when there was one. */
  readonly code: string | undefined;
  /** not-regular: what the path is ("FIFO", "character device", ...). */
  readonly fileType: string | undefined;
  /** too-large: the size fstat reported; undefined when the file grew past the limit while read. */
  readonly size: bigint | undefined;
  readonly limit: number;
  constructor(path: string, kind: BoundedReadFailure, message: string,
    extra: { cause?: unknown; code?: string | undefined; fileType?: string; size?: bigint; limit: number }) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.path = path;
    this.kind = kind;
    this.code = extra.code;
    this.fileType = extra.fileType;
    this.size = extra.size;
    this.limit = extra.limit;
  }
}

export interface BoundedRead {
  readonly bytes: Buffer;
  /** fstat of the descriptor before and after the read: equal when nothing changed the file meanwhile. */
  readonly before: BigIntStats;
  readonly after: BigIntStats;
}

export interface BoundedReadOptions {
  /** Refuse a symlink at `path` itself (state files: nodewall never writes one there). */
  readonly noFollow?: boolean;
}

const chunkBytes = 1024 * 1024;
/** Below half of Buffer.poolSize: taken from Node's shared pool, no allocation of its own. */
const smallRead = 2048;

/** Read at most `maxBytes` of the regular file at `path`. Throws BoundedReadError, nothing else. */
export async function readBounded(path: string, maxBytes: number, opts: BoundedReadOptions = {}): Promise<BoundedRead> {
  let fh: FileHandle;
  try {
    const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (opts.noFollow === true ? constants.O_NOFOLLOW : 0);
    fh = await open(path, flags);
  } catch (err) {
    throw await openFailure(path, err, maxBytes);
  }
  try {
    const before = await fh.stat({ bigint: true });
    if (!before.isFile()) {
      const type = fileType(before);
      throw new BoundedReadError(path, 'not-regular', `not a regular file (${type})`, { fileType: type, limit: maxBytes });
    }
    if (before.size > BigInt(maxBytes)) {
      throw new BoundedReadError(path, 'too-large', `${before.size} bytes, over the limit of ${maxBytes}`, { size: before.size, limit: maxBytes });
    }
    const chunks: Buffer[] = [];
    let total = 0;
    // The first buffer fits the size fstat gave (+1 to see growth), the rest start small and double: a
    // buffer of chunkBytes for every read of a small file is memory V8 counts against its heap (external
    // memory), and two of them per state file read every pass made the agent run a full GC every few
    // events at 100k pods (issue 9).
    let next = Math.max(smallRead, Number(before.size) + 1);
    while (total <= maxBytes) {
      const want = Math.min(chunkBytes, maxBytes + 1 - total, next);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, null);
      if (bytesRead === 0) break;
      chunks.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
      total += bytesRead;
      next = bytesRead < want ? smallRead : 2 * want;
    }
    if (total > maxBytes) {
      throw new BoundedReadError(path, 'too-large', `grew past ${maxBytes} bytes while being read`, { limit: maxBytes });
    }
    const after = await fh.stat({ bigint: true });
    return { bytes: Buffer.concat(chunks, total), before, after };
  } catch (err) {
    if (err instanceof BoundedReadError) throw err;
    throw new BoundedReadError(path, 'unreadable', `cannot read: ${messageOf(err)}`, { cause: err, code: errnoOf(err), limit: maxBytes });
  } finally {
    await fh.close().catch(() => undefined);
  }
}

export async function openFailure(path: string, err: unknown, limit: number): Promise<BoundedReadError> {
  const code = errnoOf(err);
  if (code === 'ENOENT') return new BoundedReadError(path, 'missing', `does not exist (${messageOf(err)})`, { cause: err, code, limit });
  if (code === 'ELOOP') return new BoundedReadError(path, 'symlink', 'is a symbolic link, not a regular file', { cause: err, code, limit });
  if (code === 'ENXIO') {
    // open() of a socket (or of a FIFO swapped in): nothing to read.
    const st = await stat(path).catch(() => undefined);
    const type = st === undefined ? 'not openable' : fileType(st);
    return new BoundedReadError(path, 'not-regular', `not a regular file (${type})`, { cause: err, code, fileType: type, limit });
  }
  return new BoundedReadError(path, 'unreadable', `cannot open: ${messageOf(err)}`, { cause: err, code, limit });
}

export function fileType(st: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isDirectory(): boolean; isFile(): boolean }): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
