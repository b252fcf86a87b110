// Durations on the command line: `90` (seconds), `45s`, `2m`, `1h`, `1m30s`.

import { UsageError } from './options.js';

const units: ReadonlyMap<string, number> = new Map([['s', 1], ['m', 60], ['h', 3600]]);

/** Seconds in `text`, between min and max. Throws UsageError naming the option. */
export function parseDuration(option: string, text: string, min: number, max: number): number {
  const t = text.trim();
  let seconds: number;
  if (/^\d{1,6}$/.test(t)) seconds = Number(t);
  else {
    const parts = /^(?:(\d{1,4})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?$/.exec(t);
    if (parts === null || t === '') throw new UsageError(`${option}: "${text.slice(0, 40)}" is not a duration (e.g. 90, 60s, 2m, 1h, 1m30s)`);
    seconds = Number(parts[1] ?? 0) * (units.get('h') ?? 0) + Number(parts[2] ?? 0) * (units.get('m') ?? 0) + Number(parts[3] ?? 0);
  }
  if (seconds < min || seconds > max) throw new UsageError(`${option}: ${text.slice(0, 40)} is ${seconds} s; it must be from ${min} s to ${max} s`);
  return seconds;
}
