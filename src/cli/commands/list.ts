import type { Argv, CommandModule } from 'yargs';
import { formatDoc } from '../output-format.js';
import { loadConfig } from '../../inventory/config.js';
import { type KernelRule, type KernelTable, readTable } from '../../nft/read-kernel.js';
import { baseChainOf, fixedComments } from '../../nft/render-rules.js';
import { ownerMarkSet } from '../../nft/ownership.js';
import { findTemporaryTables } from '../../nft/make-before-break.js';
import { stagedComment, stagedFromKernel } from '../../nft/render-staged.js';
import { exitCodes } from '../options.js';

interface ListArgs {
  config?: string | undefined;
  output: 'table' | 'json' | 'yaml';
  sets: boolean;
}

export interface ListRow {
  readonly direction: 'ingress' | 'egress';
  readonly action: string;
  readonly policy: string | null;
  readonly rule: string | null;
  readonly peer: string;
  readonly protocol: string;
  readonly packets: number;
  readonly bytes: number;
  readonly handle: number;
}

export interface DirectionStatus {
  readonly enforced: boolean;
  readonly defaultDeny: boolean;
}

const directionOf: Record<string, 'ingress' | 'egress'> = { input: 'ingress', output: 'egress' };

function action(verdict: string): string {
  if (verdict.startsWith('goto nw_audit')) return 'audit';
  // Drop records (render-drop-records.ts): the packet is recorded, then dropped.
  return verdict.startsWith('goto nw_drop_') ? 'drop' : verdict;
}

function peerText(r: KernelRule, t: KernelTable): string {
  if (r.sets.length === 0) return 'any';
  const count = (name: string) => t.sets.get(name)?.elements.length ?? 0;
  const main = r.sets.map((s) => `${s} (${count(s)})`).join(', ');
  const except = r.excludedSets.map((s) => ` except ${s} (${count(s)})`).join('');
  return `${main}${except}`;
}

function row(r: KernelRule, t: KernelTable, direction: 'ingress' | 'egress'): ListRow {
  return {
    direction,
    action: r.comment?.startsWith(stagedComment) === true ? 'staged-record' : action(r.verdict),
    policy: r.policy ?? null,
    rule: r.rule ?? (r.comment ?? null),
    peer: peerText(r, t),
    protocol: r.l4,
    packets: r.packets,
    bytes: r.bytes,
    handle: r.handle,
  };
}

/**
 * One row per rule in the order a packet walks them: the base chain's rules, each `jump` replaced by the
 * rules of the policy chain it jumps to (jumps to nodewall's own chains only, one level, as rendered).
 */
export function listRows(t: KernelTable): ListRow[] {
  const byChain = new Map<string, KernelRule[]>();
  for (const r of t.rules) {
    let list = byChain.get(r.chain);
    if (list === undefined) byChain.set(r.chain, (list = []));
    list.push(r);
  }
  const rows: ListRow[] = [];
  for (const base of ['input', 'output'] as const) {
    const direction = directionOf[base] ?? 'ingress';
    for (const r of byChain.get(base) ?? []) {
      const target = r.verdict.startsWith('jump ') ? r.verdict.slice(5) : undefined;
      const inner = target === undefined || baseChainOf(target) !== base ? undefined : byChain.get(target);
      if (target !== undefined && baseChainOf(target) === base) {
        for (const x of inner ?? []) rows.push(row(x, t, direction));
      } else {
        rows.push(row(r, t, direction));
      }
    }
  }
  return rows;
}

export function directionStatus(t: KernelTable, direction: 'ingress' | 'egress'): DirectionStatus {
  const chain = direction === 'ingress' ? 'input' : 'output';
  const rules = t.rules.filter((r) => r.chain === chain);
  return {
    enforced: rules.length > 0 && !rules.some((r) => r.comment === fixedComments.notEnforced),
    defaultDeny: rules.some((r) => r.comment === fixedComments.defaultDeny),
  };
}

function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

/** audit when would-drops go to the audit chains, enforce otherwise. */
export function tableMode(t: KernelTable): 'audit' | 'enforce' {
  return t.rules.some((r) => r.verdict.startsWith('goto nw_audit')) ? 'audit' : 'enforce';
}

export function renderListText(t: KernelTable, withSets: boolean): string {
  const out: string[] = [];
  const mode = tableMode(t);
  out.push(`table inet ${t.table} (mode ${mode}, structure ${t.structureHash ?? 'unknown'})`);
  for (const d of ['ingress', 'egress'] as const) {
    const s = directionStatus(t, d);
    out.push(`${d}: ${s.enforced ? `enforced, default ${s.defaultDeny ? 'deny' : 'allow'}` : 'not enforced (everything passes)'}`);
  }
  for (const st of stagedFromKernel(t.sets)) {
    out.push(`${st.direction}: staged (evaluated, not enforced): ${st.policies.join(', ') || '?'}; ${st.records} candidate flow(s) recorded (\`nodewall audit\`, the agent's log)`);
  }
  out.push('');
  const header = ['DIRECTION', 'ACTION', 'POLICY', 'RULE', 'PEER', 'PROTOCOL', 'PACKETS', 'BYTES'];
  const rows = listRows(t).map((r) => [r.direction, r.action, r.policy ?? '-', r.rule ?? '-', r.peer, r.protocol, String(r.packets), String(r.bytes)]);
  out.push(formatTable([header, ...rows]));
  if (withSets) {
    out.push('');
    for (const s of t.sets.values()) {
      if (isMarkerSet(s.name)) continue;
      out.push(`set ${s.name}${s.comment === undefined ? '' : ` (${s.comment})`}: ${s.elements.length} element(s)`);
      for (const e of s.elements) out.push(`  ${e}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** nodewall's empty marker sets (structure, ownership): not worth a line. */
function isMarkerSet(name: string): boolean {
  return name.startsWith('nw_structure_') || name === ownerMarkSet;
}

export const listCommand: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'Show the ruleset nodewall has loaded in the kernel: rules, counters, identity sets (reads nft, not policy files)',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', describe: 'config file (for nft.path / nft.table)' })
      .option('output', { alias: 'o', choices: ['table', 'json', 'yaml'] as const, default: 'table' as const })
      .option('sets', { type: 'boolean', default: false, describe: 'also show the elements of every set' }) as unknown as Argv<ListArgs>,
  handler: async (argv) => {
    const config = await loadConfig(argv.config);
    const exec = { timeoutMs: config.nft.timeoutSeconds * 1000 };
    const t = await readTable(config.nft.path, config.nft.table, exec);
    // A full replace that did not finish leaves a temporary table of nodewall's that filters too (make-before-break.ts).
    const temporary = await findTemporaryTables(config.nft.path, config.nft.table, exec).then((f) => f.ours, () => [] as readonly string[]);
    const temporaryNote = temporary.length === 0
      ? undefined
      : `temporary table(s) ${temporary.map((n) => `inet ${n}`).join(', ')} of a full replace that did not finish also filter(s) with nodewall's rules (the next apply removes them; by hand: \`nft delete table inet NAME\`)`;
    if (t !== null && t.ownership === 'foreign') {
      // Someone else's table under nodewall's configured name: not nodewall's rules, so not listed as such.
      const message = `table inet ${config.nft.table} exists but was not created by nodewall (no ${ownerMarkSet} ownership mark); nodewall is not enforcing with it. Set nft.table to a table of nodewall's own, or take it over with \`nodewall apply --adopt\``;
      if (argv.output !== 'table') process.stdout.write(formatDoc({ table: config.nft.table, enforcing: false, foreign: true, message }, argv.output));
      else process.stdout.write(`nodewall: ${message}\n`);
      process.exitCode = exitCodes.failure;
      return;
    }
    if (t === null && temporaryNote !== undefined) {
      // No table, but not unfiltered either.
      const message = `there is no table inet ${config.nft.table}, but ${temporaryNote}`;
      if (argv.output !== 'table') process.stdout.write(formatDoc({ table: config.nft.table, enforcing: true, temporaryTables: temporary, message }, argv.output));
      else process.stdout.write(`nodewall: ${message}\n`);
      process.exitCode = exitCodes.failure;
      return;
    }
    if (t === null) {
      if (argv.output !== 'table') process.stdout.write(formatDoc({ table: config.nft.table, enforcing: false }, argv.output));
      else process.stdout.write(`nodewall is not enforcing on this node: there is no table inet ${config.nft.table}\n`);
      process.exitCode = exitCodes.ok;
      return;
    }
    if (argv.output !== 'table') {
      const doc = {
        table: t.table,
        enforcing: true,
        mode: tableMode(t),
        structureHash: t.structureHash,
        ingress: directionStatus(t, 'ingress'),
        egress: directionStatus(t, 'egress'),
        staged: stagedFromKernel(t.sets),
        rules: listRows(t),
        sets: [...t.sets.values()]
          .filter((s) => !isMarkerSet(s.name))
          .map((s) => ({ name: s.name, comment: s.comment ?? null, elements: s.elements.length, ...(argv.sets ? { members: s.elements } : {}) })),
        ...(temporaryNote === undefined ? {} : { temporaryTables: temporary, warning: temporaryNote }),
      };
      process.stdout.write(formatDoc(doc, argv.output));
    } else {
      process.stdout.write(renderListText(t, argv.sets));
      if (temporaryNote !== undefined) process.stdout.write(`\nWARNING: ${temporaryNote}\n`);
    }
    process.exitCode = exitCodes.ok;
  },
};
