// Durations on the command line: `90` (seconds), `45s`, `2m`, `1h`, `1m30s`.

import { durationMs } from '../duration.js';
import { UsageError } from './options.js';

/** Seconds in `text`, between min and max. Throws UsageError naming the option. */
export function parseDuration(option: string, text: string, min: number, max: number): number {
  const t = text.trim();
  let seconds: number;
  if (/^\d{1,6}$/.test(t)) seconds = Number(t);
  else {
    const ms = durationMs(t);
    // Whole seconds only: the pending record's `seconds` is an integer.
    if (ms === undefined || ms % 1000 !== 0) throw new UsageError(`${option}: "${text.slice(0, 40)}" is not a duration (e.g. 90, 60s, 2m, 1h, 1m30s)`);
    seconds = ms / 1000;
  }
  if (seconds < min || seconds > max) throw new UsageError(`${option}: ${text.slice(0, 40)} is ${seconds} s; it must be from ${min} s to ${max} s`);
  return seconds;
}
