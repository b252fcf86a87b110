// The differential test: every conformance case rendered, loaded into a lab
// node, and every flow the lab can send replayed with real packets. The kernel
// must do what `trace` (evaluate on the same model) says, and what the case
// expects.

import test from 'ava';
import { renderRuleset } from '../../src/nft/render.js';
import { buildCaseState, flowLabel, loadConformanceCases, runCaseOn, type ConformanceCase } from '../helpers/conformance.js';
import { Lab, mapLimit, unsendableReason, type Probe } from './lab.js';

const cases = loadConformanceCases();
const byFile = new Map<string, ConformanceCase[]>();
for (const c of cases) byFile.set(c.file, [...(byFile.get(c.file) ?? []), c]);

for (const [file, fileCases] of byFile) {
  test(`kernel == trace for the sendable flows of ${file}`, async (t) => {
    const lab = await Lab.create(t, 'diff');
    let sent = 0;
    const skipped = new Map<string, number>();
    for (const c of fileCases) {
      const state = buildCaseState(c);
      const results = runCaseOn(state, c);
      const sendable = results.filter((r) => {
        const why = unsendableReason(r.flow as Probe);
        if (why !== undefined) skipped.set(why, (skipped.get(why) ?? 0) + 1);
        return why === undefined;
      });
      if (sendable.length === 0) continue;
      await lab.load(renderRuleset(state.model, { table: 'nodewall', mode: 'enforce' }));
      await lab.addPeerAddresses(sendable.map((r) => r.flow.peer));
      const kernel = await mapLimit(sendable, 8, (r) => lab.probeSure(r.flow as Probe, r.actual.verdict));
      sendable.forEach((r, i) => {
        const where = `${c.file}:${r.line} case "${c.name}": ${flowLabel(r.flow)}`;
        t.is(kernel[i], r.actual.verdict, `${where}: kernel ${kernel[i]}, trace ${r.actual.verdict} (${r.actual.reason})`);
        t.is(kernel[i], r.expected.verdict, `${where}: kernel ${kernel[i]}, expected ${r.expected.verdict}`);
      });
      sent += sendable.length;
    }
    t.log(`${sent} flows sent; skipped: ${[...skipped].map(([k, v]) => `${v} ${k}`).join('; ') || 'none'}`);
    if (sent === 0) t.pass('no sendable flow in this file');
  });
}
