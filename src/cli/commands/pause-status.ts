// The pause line(s) of `nodewall status`.

import { requesterText, type PauseStatus } from '../../agent/pause.js';

export function pauseText(p: PauseStatus, running: boolean, now: number): string {
  const left = Math.max(0, Date.parse(p.until) - now);
  const mins = Math.floor(left / 60_000);
  const secs = Math.floor((left % 60_000) / 1000);
  const head = running
    ? `PAUSED:   ${p.suspendedMode} suspended, audit rendered (nothing dropped, would-drops recorded) until ${p.until} (${mins}m${secs}s left)`
    : `pause:    recorded until ${p.until}; the agent is not running (it re-arms enforcement when stopped cleanly, and resumes the pause only if started before then)`;
  return [head, `          asked by ${requesterText(p.requestedBy)} at ${p.pausedAt}: ${p.reason === '' ? '(no reason given)' : p.reason}`, '          `nodewall resume` ends it now'].join('\n');
}
