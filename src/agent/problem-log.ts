// Input problems (config errors, invalid policies, lint warnings, kept last good versions) are
// logged when they change, not on every pass: at pod churn of tens of events per second the
// Kubernetes source triggers a pass per event, and re-logging every warning each time buried the
// log (and cost a formatted line per problem per event, issue 9). Passes triggered by anything
// else (start, a file edit, SIGHUP, a resync) still log them all, so an operator who saves a file
// that is still broken sees the error again.

import { sha256 } from '../inventory/read-manifest-files.js';
import type { Desired } from './reconcile.js';

/** Everything #logInputProblems reports, as one key. */
export function inputProblemsKey(d: Desired): string {
  const p = (x: { pos: { file: string; line: number; col: number }; severity: string; code: string; message: string }) => [x.pos.file, x.pos.line, x.pos.col, x.severity, x.code, x.message];
  return sha256(JSON.stringify([
    d.configError?.problems.map(p) ?? null,
    d.state.problems.map(p),
    d.merge.replacedProblems.map(p),
    d.merge.kept.map((k) => [k.policy, k.file, k.reason]),
    d.merge.rejected.map((r) => [r.policy, r.file]),
    d.merge.removed.map((r) => [r.policy, r.file, r.fileRead]),
  ]));
}

export class ProblemLogGate {
  #last: string | undefined;

  /** Log this pass's problems? Always when `always`; otherwise only when they differ from the last logged. */
  fresh(d: Desired, always: boolean): boolean {
    const key = inputProblemsKey(d);
    const log = always || key !== this.#last;
    this.#last = key;
    return log;
  }
}
