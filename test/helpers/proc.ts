import { readFileSync } from 'node:fs';

/** The process exists and is not a zombie (its /proc stat state is not Z). */
export function runningPid(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
