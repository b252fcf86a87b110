// The differential test: every conformance case rendered, loaded into a lab
// node, and every flow the lab can send replayed with real packets. The kernel
// must do what `trace` (evaluate on the same model) says, and what the case
// expects.

import test from 'ava';
import { readAuditRecords } from '../../src/agent/audit-records.js';
import { renderRuleset } from '../../src/nft/render.js';
import { normalizeElement } from '../../src/nft/set-delta.js';
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

/** The key an audit record carries for a flow: port for tcp/udp/sctp, type*256+code for ICMP, nothing otherwise. */
function recordKey(direction: string, peer: string, proto: number, port: number | undefined): string {
  return `${direction} ${normalizeElement(peer)} ${proto}${port === undefined ? '' : ` ${port}`}`;
}

const protoNumbers: Readonly<Record<string, number>> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 };

for (const [file, fileCases] of byFile) {
  test(`audit mode passes every flow of ${file} and records exactly those trace denies`, async (t) => {
    const lab = await Lab.create(t, 'daud');
    let sent = 0;
    for (const c of fileCases) {
      const state = buildCaseState(c);
      const sendable = runCaseOn(state, c).filter((r) => unsendableReason(r.flow as Probe) === undefined);
      if (sendable.length === 0) continue;
      // A full replace also empties the audit sets of the previous case.
      await lab.load(renderRuleset(state.model, { table: 'nodewall', mode: 'audit' }));
      await lab.addPeerAddresses(sendable.map((r) => r.flow.peer));
      const kernel = await mapLimit(sendable, 8, (r) => lab.probeSure(r.flow as Probe, 'allow'));
      const expected = new Set<string>();
      sendable.forEach((r, i) => {
        t.is(kernel[i], 'allow', `${c.file}:${r.line} case "${c.name}": ${flowLabel(r.flow)} dropped in audit mode`);
        if (r.actual.verdict !== 'deny') return;
        const f = r.flow;
        const proto = typeof f.proto === 'number' ? f.proto : (protoNumbers[f.proto] ?? -1);
        const port = f.port ?? (f.icmpType === undefined ? undefined : f.icmpType * 256 + (f.icmpCode ?? 0));
        expected.add(recordKey(f.direction, f.peer, proto, port));
      });
      const recorded = new Set(
        (await readAuditRecords('/usr/sbin/nft', 'nodewall', lab.nodeNs)).map((x) =>
          recordKey(x.direction, x.peer, x.proto, [1, 6, 17, 58, 132].includes(x.proto) ? x.port : undefined),
        ),
      );
      t.deepEqual([...recorded].sort(), [...expected].sort(), `case "${c.name}" (${c.file}:${c.line}): audit records vs trace denies`);
      sent += sendable.length;
    }
    t.log(`${sent} flows sent in audit mode`);
    if (sent === 0) t.pass('no sendable flow in this file');
  });
}
