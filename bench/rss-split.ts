// NODEWALL_BENCH_SMAPS=1 (scale bench): where a process's RSS is, by mapping class, from
// /proc/PID/smaps, with V8's own view of its heap spaces beside it. V8's pages, the malloc
// arenas of other threads and big malloc'd blocks are all anonymous mappings; the split
// below tells apart what the kernel lets us tell apart:
// - the node binary (text: executable mappings of process.execPath; data: its other mappings);
// - other files (shared libraries, ICU data, ...);
// - [heap]: glibc's main malloc arena (brk);
// - [stack]: the main thread's stack;
// - thread stacks: the anonymous mapping holding a thread's stack pointer
//   (/proc/PID/task/TID/syscall: its next-to-last field, for a thread waiting in a syscall);
// - malloc arenas of threads: glibc maps them 64 MiB at a time, 64 MiB aligned
//   (HEAP_MAX_SIZE on 64-bit), the unused part PROT_NONE;
// - other anonymous: V8's heap pages (their resident part is V8's physical_space_size),
//   big ArrayBuffer backing stores (malloc above the mmap threshold), code ranges.

import { readFile, readdir } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

export interface Mapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly perms: string;
  readonly path: string;
  readonly rssKB: number;
}

/** The mappings of an smaps text, in address order (as the kernel lists them). */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: { start: bigint; end: bigint; perms: string; path: string; rssKB: number } | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      if (cur !== undefined) out.push(cur);
      cur = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3] ?? '', path: head[4] ?? '', rssKB: 0 };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null && cur !== undefined) cur.rssKB = Number(rss[1]);
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

export const splitClasses = ['nodeText', 'nodeData', 'files', 'mallocMain', 'mainStack', 'threadStacks', 'mallocThreadArenas', 'anonOther', 'kernel'] as const;
export type SplitClass = (typeof splitClasses)[number];

const ARENA = 64n << 20n;

/**
 * RSS in kB per class. `exe` is the node binary's path; `stackPointers` the stack pointers of
 * the other threads (a mapping holding one is that thread's stack).
 */
export function classify(maps: readonly Mapping[], exe: string, stackPointers: readonly bigint[]): Record<SplitClass, number> {
  const kb = Object.fromEntries(splitClasses.map((c) => [c, 0])) as Record<SplitClass, number>;
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i]!;
    let c: SplitClass;
    if (m.path === exe) c = m.perms.includes('x') ? 'nodeText' : 'nodeData';
    else if (m.path === '[heap]') c = 'mallocMain';
    else if (m.path === '[stack]') c = 'mainStack';
    else if (m.path.startsWith('[')) c = 'kernel'; // [vdso], [vvar], [vsyscall]
    else if (m.path !== '') c = 'files';
    else if (stackPointers.some((sp) => sp >= m.start && sp < m.end)) c = 'threadStacks';
    else if (m.start % ARENA === 0n && arenaSize(maps, i) === ARENA) c = 'mallocThreadArenas';
    else c = 'anonOther';
    kb[c] += m.rssKB;
  }
  return kb;
}

/** The size of the anonymous run starting at maps[i]: its usable part plus an adjacent PROT_NONE rest. */
function arenaSize(maps: readonly Mapping[], i: number): bigint {
  const m = maps[i]!;
  const next = maps[i + 1];
  if (next !== undefined && next.start === m.end && next.path === '' && next.perms.startsWith('---')) return next.end - m.start;
  return m.end - m.start;
}

/** Stack pointers of the process's threads other than the one reading (blocked in a syscall). */
async function threadStackPointers(pid: string): Promise<bigint[]> {
  const out: bigint[] = [];
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tids) {
    const text = (await readFile(`/proc/${pid}/task/${tid}/syscall`, 'utf8').catch(() => '')).trim().split(/\s+/);
    // "NR a1..a6 SP PC" while in a syscall; "running" or "-1 SP PC" otherwise.
    if (text.length >= 3 && /^0x[0-9a-f]+$/.test(text.at(-2) ?? '')) out.push(BigInt(text.at(-2)!));
  }
  return out;
}

/** This process's RSS split (MB = 10^6 bytes) and V8's spaces (resident MB), as one line for the bench's progress. */
export async function rssSplitLine(): Promise<{ line: string; mb: Record<string, number> }> {
  const maps = parseSmaps(await readFile('/proc/self/smaps', 'utf8'));
  const exe = realpathSync(process.execPath);
  const kb = classify(maps, exe, await threadStackPointers('self'));
  const threads = (await readdir('/proc/self/task').catch(() => [] as string[])).length;
  const mb: Record<string, number> = {};
  for (const c of splitClasses) mb[c] = (kb[c] * 1024) / 1e6;
  mb['total'] = (splitClasses.reduce((s, c) => s + kb[c], 0) * 1024) / 1e6;
  let v8Resident = 0;
  const spaces: string[] = [];
  for (const s of getHeapSpaceStatistics()) {
    v8Resident += s.physical_space_size;
    spaces.push(`${s.space_name.replace(/_space$/, '')}=${(s.physical_space_size / 1e6).toFixed(1)}/${(s.space_used_size / 1e6).toFixed(1)}`);
  }
  mb['v8Resident'] = v8Resident / 1e6;
  const mem = process.memoryUsage();
  mb['arrayBuffers'] = mem.arrayBuffers / 1e6;
  mb['threads'] = threads;
  const f = (x: number): string => x.toFixed(1);
  const line = `RSS split (MB = 10^6 bytes): total ${f(mb['total'])} = node text ${f(mb['nodeText']!)} + node data ${f(mb['nodeData']!)} + other files ${f(mb['files']!)}`
    + ` + malloc main arena [heap] ${f(mb['mallocMain']!)} + thread malloc arenas ${f(mb['mallocThreadArenas']!)} + main stack ${f(mb['mainStack']!)}`
    + ` + thread stacks ${f(mb['threadStacks']!)} (${threads} threads) + other anonymous ${f(mb['anonOther']!)} + [vdso etc.] ${f(mb['kernel']!)};`
    + ` V8 spaces resident ${f(mb['v8Resident'])} (resident/used: ${spaces.join(' ')}); ArrayBuffers ${f(mb['arrayBuffers'])}`;
  return { line, mb };
}
