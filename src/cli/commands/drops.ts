import type { Argv, CommandModule } from 'yargs';
import { formatProblem } from '../../api/problem.js';
import { dropRows, readDropRecords, type DropRecordsRead, type DropRow } from '../../agent/drop-records.js';
import { readPause, requesterText } from '../../agent/pause.js';
import { escapeUnprintable } from '../../api/printable.js';
import { canonicalPrefix, CidrError } from '../../policy/cidr.js';
import { dropRecordsOf } from '../../inventory/types.js';
import { evaluate } from '../../verdict/evaluate.js';
import { durationMs } from '../../duration.js';
import type { StateArgs } from '../options.js';
import { exitCodes, stateOptions, UsageError } from '../options.js';
import { formatDoc } from '../output-format.js';
import { loadStateFromArgs } from '../state-args.js';

interface DropsArgs extends StateArgs {
  since?: string | undefined;
  peer?: string | undefined;
  output: 'table' | 'json' | 'yaml';
}

/** A duration in nodewall's one grammar (src/duration.ts: 90s, 10m, 1h30m) or whole days ("1d") before now, or an ISO 8601 time -> ms since the epoch. */
export function parseSince(text: string, nowMs: number): number {
  const days = /^(\d{1,5})d$/.exec(text.trim());
  if (days !== null) return nowMs - Number(days[1]) * 86_400_000;
  const ms = durationMs(text);
  if (ms !== undefined) return nowMs - ms;
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return t;
  }
  throw new UsageError(`--since: "${text}" is neither a duration (30s, 10m, 2h, 1d) nor an ISO time (2026-01-31T12:00:00Z)`);
}

/** An address or CIDR, canonical ("192.0.2.7" -> "192.0.2.7/32"). */
export function parsePeerFilter(text: string): string {
  try {
    return canonicalPrefix(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
  } catch (err) {
    if (err instanceof CidrError) throw new UsageError(`--peer: ${err.message}`, { cause: err });
    throw err;
  }
}

function l4Text(r: DropRow): string {
  if (r.port !== undefined) return `${r.proto}/${r.port}`;
  if (r.icmpType !== undefined) return `${r.proto} type ${r.icmpType}${r.icmpCode ? ` code ${r.icmpCode}` : ''}`;
  return r.proto;
}

export function dropsTable(rows: readonly DropRow[]): string {
  const header = ['LAST SEEN', 'FIRST SEEN', 'DIRECTION', 'PEER', 'PROTOCOL', 'PACKETS', 'DECIDED BY'];
  const decided = (r: DropRow) =>
    r.decidedBy === 'deny-entry' ? `${r.policy ?? '?'} ${r.rule}`
      : r.decidedBy === 'default-deny' ? `default deny (${r.reason})`
        : r.decidedBy === 'datapath' ? `datapath: ${r.reason}` : `${r.rule}: ${r.reason}`;
  const cells = rows.map((r) => [r.lastSeen ?? '-', r.firstSeen ?? '-', r.direction, r.peer, l4Text(r), String(r.packets), decided(r)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  return [header, ...cells].map((c) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

export const dropsCommand: CommandModule<object, DropsArgs> = {
  command: 'drops',
  describe: 'Flows the kernel dropped (enforce mode drop records), newest first, with the policy and rule that dropped each',
  builder: (y: Argv) =>
    y
      .options(stateOptions)
      .option('since', { type: 'string', describe: 'only drops last seen within this long (10m, 2h, 1d) or since an ISO time' })
      .option('peer', { type: 'string', describe: 'only peers in this CIDR (or this address)' })
      .option('output', { alias: 'o', choices: ['table', 'json', 'yaml'] as const, default: 'table' as const }) as unknown as Argv<DropsArgs>,
  handler: async (argv) => {
    const now = Date.now();
    const filter = {
      ...(argv.since === undefined ? {} : { sinceMs: parseSince(argv.since, now) }),
      ...(argv.peer === undefined ? {} : { peer: parsePeerFilter(argv.peer) }),
    };
    // The rule behind each drop comes from the same model `trace` evaluates (same config and sources).
    const state = await loadStateFromArgs(argv, { mode: 'enforce' });
    const cfg = state.config;
    const settings = dropRecordsOf(cfg);
    // A break-glass pause renders the audit ruleset: nothing is dropped and the table has no drop records, so
    // the read fails and recording is "paused". The kernel decides, not the pause file alone: an agent stopped
    // during a pause restores the enforce table (the file stays, for a restart), and then the drops are current.
    const pause = cfg.mode === 'enforce' ? await readPause(cfg.stateDir, now) : { kind: 'none' as const };
    const active = pause.kind === 'active' ? pause : undefined;
    let read: DropRecordsRead | undefined;
    try {
      read = await readDropRecords(cfg.nft.path, cfg.nft.table, { timeoutMs: cfg.nft.timeoutSeconds * 1000 });
    } catch (err) {
      if (active === undefined) throw err;
    }
    const paused = read === undefined ? active : undefined;
    const rows = read === undefined ? [] : dropRows(read, state.model, evaluate, filter);
    const errors = state.problems.filter((p) => p.severity === 'error');
    const recording = paused !== undefined ? 'paused' : settings === undefined ? 'off' : 'on';
    const pauseInfo = active === undefined ? undefined : {
      until: new Date(active.untilMs).toISOString(), pausedAt: active.record.pausedAt, reason: active.record.reason, requestedBy: active.record.requestedBy,
    };
    // Both can hold at once: one note, not the second spread silently replacing the first.
    const notes = [
      ...(settings === undefined ? ['dropRecords is off in the config: these records are from an earlier ruleset'] : []),
      ...(pauseInfo !== undefined && paused === undefined
        ? ['a pause is recorded, but the table enforces (the agent is not running, or has not loaded the pause yet): these drops are current'] : []),
    ];
    const summary = {
      table: cfg.nft.table,
      node: state.nodeName,
      recording,
      ...(pauseInfo === undefined ? {} : { pause: pauseInfo }),
      records: read?.records.length ?? 0,
      shown: rows.length,
      size: read?.size ?? null,
      timeoutSeconds: read?.timeoutSeconds ?? null,
      recordedPackets: read?.recordedPackets ?? 0,
      unrecordedPackets: read?.unrecordedPackets ?? 0,
      ...(notes.length === 0 ? {} : { note: notes.join('; ') }),
    };
    if (argv.output !== 'table') {
      process.stdout.write(formatDoc({ ...summary, drops: rows, errors: errors.map(formatProblem) }, argv.output));
    } else if (paused !== undefined && pauseInfo !== undefined) {
      for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
      const who = escapeUnprintable(requesterText(pauseInfo.requestedBy));
      const why = pauseInfo.reason === '' ? '' : `: ${escapeUnprintable(pauseInfo.reason)}`;
      process.stdout.write(`table inet ${summary.table} on ${summary.node}: enforcement is PAUSED until ${pauseInfo.until} (asked by ${who}${why}).\n`
        + 'Nothing is dropped and no drops are recorded meanwhile; the flows policy would drop are recorded as audit records (`nodewall audit`, the agent\'s log).\n');
    } else {
      for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
      process.stdout.write(`table inet ${summary.table} on ${summary.node}: ${summary.records} drop record(s) (at most ${summary.size ?? '?'} per direction and family, kept ${summary.timeoutSeconds ?? '?'} s after the last drop)\n`);
      if (summary.unrecordedPackets > 0) {
        process.stdout.write(`${summary.unrecordedPackets} packet(s) dropped without a record (a drop-record set was full): raise dropRecords.size or lower dropRecords.timeoutSeconds\n`);
      }
      if (rows.length > 0) process.stdout.write(`${dropsTable(rows)}\n`);
      else process.stdout.write('no drops recorded' + (argv.since !== undefined || argv.peer !== undefined ? ' that match the filter' : '') + '\n');
      if (errors.length > 0) process.stdout.write('some policies are invalid and were left out of the attribution, as in `nodewall trace`\n');
      if (pauseInfo !== undefined) process.stdout.write(`note: a pause is recorded until ${pauseInfo.until}, but the table enforces (the agent is not running, or has not loaded the pause yet): these drops are current\n`);
    }
    process.exitCode = exitCodes.ok;
  },
};
