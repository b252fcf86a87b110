// The drift hash of a full load, predicted from the script instead of read back from the live table.
//
// The drift hash (drift.ts) is of the terse listing, which leaves set elements out. After a single-script
// full load the table is exactly what the script made of a fresh table (the script deletes the old one),
// so the same script without its elements (RenderedRuleset.structureScript), loaded by the same nft binary
// into a fresh, empty network namespace of the same kernel, lists the same terse text. That listing costs
// a few tens of ms (no elements); reading the live table back costs ~0.15-0.3 s at 80k elements, because
// nft 1.0.6 fetches every element of every set for any listing that shows rules, `-t` included. It runs
// while the real load runs, so the hash is there when the load ends.
//
// It is also the stricter hash: it describes what nodewall loaded, never what the table held a moment
// later, so a chain edited by someone between the load and a read-back is drift, not adopted.
//
// Safety: the scratch copy has hooked base chains ending in a drop rule and no set elements. It must never
// land in a namespace that carries traffic. So it is only made when
// - the process has CAP_SYS_ADMIN (else `unshare --net` cannot work: the shipped systemd unit and
//   DaemonSet do not grant it, and there nothing is spawned and the table is read back), and
// - nft.path is an ELF executable (not a script: a wrapper may `nsenter` into the node's namespace), and
// - `unshare` is the ELF binary at /usr/bin/unshare or /bin/unshare (never looked up in PATH), and
// - the shell it starts is in another network namespace than the agent's (checked by the namespace's
//   identity, so a helper that does not unshare is caught even on a node with no table at all), and
// - nft lists no table at all there before the load (a fresh namespace has none; a failing listing is
//   not an empty one).
// Otherwise, or on any failure or timeout, the caller reads the live table back as before.

import { open, readFile, readlink } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { runNft } from '../nft/nft-exec.js';
import { structureHash } from './drift.js';

/** Why no prediction was made (for the debug log); undefined when there is one. */
export type PredictionOutcome = { readonly hash: string } | { readonly hash?: undefined; readonly skipped: string };

/**
 * The shell run as `unshare --net -- /bin/sh -c SCRIPT NFT TABLE` with the structure script on stdin.
 * Exit 3: the namespace already holds tables (not fresh: nothing is loaded).
 */
export const scratchShell = '[ "$(readlink /proc/self/ns/net)" != "$2" ] || exit 4; t=$("$0" list tables) && [ -z "$t" ] || exit 3; "$0" -f - && exec "$0" -t list table inet "$1"';

/** Where `unshare` is looked for (absolute: a PATH entry could shadow it). */
const unshareCandidates = ['/usr/bin/unshare', '/bin/unshare'];

/** Whether this process has CAP_SYS_ADMIN in its effective set (bit 21 of CapEff). */
export async function hasSysAdmin(): Promise<boolean> {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 21n)) !== 0n;
  } catch {
    return false;
  }
}

async function defaultUnshare(): Promise<string | undefined> {
  for (const c of unshareCandidates) if (await isElfExecutable(c)) return c;
  return undefined;
}

/** Whether `path` is an absolute path to an ELF executable (the nft binary itself, not a wrapper script). */
export async function isElfExecutable(path: string): Promise<boolean> {
  if (!isAbsolute(path)) return false;
  let fh;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile() || (st.mode & 0o111) === 0) return false;
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
  } catch {
    return false;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

export interface PredictOptions {
  readonly nftPath: string;
  readonly table: string;
  /** The load's script without set elements (RenderedRuleset.structureScript). */
  readonly structureScript: string;
  readonly timeoutMs?: number;
  /** The program that makes the namespace (tests); default `unshare`. */
  readonly unsharePath?: string;
}

/** The terse-listing hash the full load of `structureScript` gives, or why it could not be predicted. Never throws. */
export async function predictTableHash(o: PredictOptions): Promise<PredictionOutcome> {
  if (o.unsharePath === undefined && !(await hasSysAdmin())) return { skipped: 'no CAP_SYS_ADMIN: no scratch network namespace' };
  if (!(await isElfExecutable(o.nftPath))) return { skipped: `${o.nftPath} is not an ELF executable (a wrapper may change namespace)` };
  const unshare = o.unsharePath ?? (await defaultUnshare());
  if (unshare === undefined) return { skipped: `no unshare binary at ${unshareCandidates.join(' or ')}` };
  let ownNs: string;
  try {
    ownNs = await readlink('/proc/self/ns/net');
  } catch (err) {
    return { skipped: `cannot tell this process's network namespace: ${err instanceof Error ? err.message : String(err)}` };
  }
  const timeoutMs = o.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const run = runNft(unshare, ['--net', '--', '/bin/sh', '-c', scratchShell, o.nftPath, o.table, ownNs], {
      stdin: o.structureScript, timeoutMs,
    });
    // The caller holds the nft write lock while it waits: bounded even when a process the shell started
    // outlives the kill of the helper and keeps its output open.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no scratch listing within ${timeoutMs + 2000} ms`)), timeoutMs + 2000);
    });
    run.catch(() => undefined);
    const { stdout } = await Promise.race([run, late]);
    // An empty listing cannot be of a loaded table: never trust it.
    if (!stdout.startsWith(`table inet ${o.table} {`)) return { skipped: 'the scratch listing is not of the table' };
    return { hash: structureHash(stdout) };
  } catch (err) {
    return { skipped: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}
