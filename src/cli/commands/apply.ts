import { dropRecordsOf } from '../../inventory/types.js';
import type { Argv, CommandModule } from 'yargs';
import { formatDoc } from '../output-format.js';
import { type ApplyResult, applyModel } from '../../nft/apply.js';
import type { PlanChanges } from '../../nft/set-delta.js';
import { inboundSessions, sessionsCut } from '../../agent/lockout-guard.js';
import { readProcNet } from '../../agent/proc-net.js';
import { hasErrors } from '../../pipeline.js';
import { evaluate } from '../../verdict/evaluate.js';
import type { StateArgs } from '../options.js';
import { exitCodes, stateOptions } from '../options.js';
import { loadStateFromArgs, refuseInvalid } from '../state-args.js';
import { nftMode } from './nft-mode.js';
import { cliActor, readPending } from '../../agent/commit-confirm.js';
import { abandonProbation, kernelFingerprint, putOnProbation, type Probation, type ProbationTarget } from '../../agent/probation.js';
import { parseDuration } from '../duration.js';

interface ApplyArgs extends StateArgs {
  dryRun: boolean;
  adopt: boolean;
  force: boolean;
  mode?: 'enforce' | 'audit' | undefined;
  output: 'text' | 'json' | 'yaml';
  confirmWithin?: string | undefined;
  stateDir?: string | undefined;
}

const shown = 20;

function changeLines(c: PlanChanges): string[] {
  const out: string[] = [];
  for (const s of c.setsAdded) out.push(`+ set ${s}`);
  for (const s of c.setsRemoved) out.push(`- set ${s}`);
  for (const r of c.rules) out.push(`${r.count > 0 ? '+' : '-'} ${Math.abs(r.count)} rule(s) in ${r.chain}: ${r.comment || '(no comment)'}`);
  for (const d of c.sets) {
    const more = (list: readonly string[]) => (list.length > shown ? ` ... (${list.length - shown} more)` : '');
    if (d.remove.length > 0) out.push(`- ${d.set}: ${d.remove.slice(0, shown).join(', ')}${more(d.remove)}`);
    if (d.add.length > 0) out.push(`+ ${d.set}: ${d.add.slice(0, shown).join(', ')}${more(d.add)}`);
  }
  return out;
}

function summary(r: ApplyResult, table: string): string {
  const ms = r.durationsMs.total.toFixed(1);
  const what = `${r.rules} rules, ${r.sets} sets, ${r.elements} elements`;
  const verb = r.dryRun;
  switch (r.kind) {
    case 'noop':
      return `table inet ${table} is up to date (${what}); nothing ${r.dryRun ? 'would change' : 'changed'}`;
    case 'delta': {
      const chains = r.chains.length === 0 ? '' : `, ${r.chains.length} chain(s) replaced`;
      return `${verb ? 'would update' : 'updated'} table inet ${table} by ${r.chains.length === 0 ? 'element' : 'chain'} delta: -${r.removed} +${r.added} elements${chains} (${what}) in ${ms} ms`;
    }
    case 'full':
      return `${verb ? 'would replace' : 'replaced'} table inet ${table} atomically: ${r.reason} (${what}) in ${ms} ms`;
  }
}

export const applyCommand: CommandModule<object, ApplyArgs> = {
  command: 'apply',
  describe: 'Render and load this node\'s ruleset in one transaction (element deltas when only addresses changed; --dry-run checks with nft -c)',
  builder: (y: Argv) =>
    y
      .options(stateOptions)
      .option('dry-run', { type: 'boolean', default: false, describe: 'print what would change; touch nothing' })
      .option('adopt', {
        type: 'boolean',
        default: false,
        describe: 'take over nft.table even if nodewall did not create it (no ownership mark): its rules are replaced',
      })
      .option('force', { type: 'boolean', default: false, describe: 'apply even if established inbound sessions (your SSH) would be cut' })
      .option('mode', { choices: ['enforce', 'audit'] as const, describe: 'ruleset flavour (default: config mode)' })
      .option('confirm-within', {
        type: 'string',
        describe: 'commit-confirm: unless `nodewall confirm` runs within this time (90, 60s, 2m; 1 s to 24 h), the previous ruleset is restored, even if this shell dies',
      })
      .option('state-dir', { type: 'string', describe: 'where the pending confirmation is kept (default: config stateDir)' })
      .option('output', { alias: 'o', choices: ['text', 'json', 'yaml'] as const, default: 'text' as const }) as unknown as Argv<ApplyArgs>,
  handler: async (argv) => {
    const confirmSeconds = argv.confirmWithin === undefined ? undefined : parseDuration('--confirm-within', argv.confirmWithin, 1, 86_400);
    const state = await loadStateFromArgs(argv);
    if (refuseInvalid(state, 'some policies are invalid; nothing was applied (fix them or remove them from the sources)')) return;
    // Config mode dry-run means "never touch the kernel" unless the operator names a mode explicitly.
    const forcedDryRun = !argv.dryRun && state.config.mode === 'dry-run' && argv.mode === undefined;
    if (forcedDryRun) process.stderr.write('nodewall: config mode is dry-run: showing what would change (pass --mode enforce|audit to apply)\n');
    const mode = nftMode(argv.mode, state.config.mode);
    const dryRun = argv.dryRun || forcedDryRun;
    // Lockout guard: policy applies to forward packets of established connections too, so a missing
    // allow cuts the operator's own SSH session at once. Audit mode drops nothing.
    if (mode === 'enforce') {
      const cut = sessionsCut(state.model, inboundSessions(await readProcNet()), evaluate);
      for (const c of cut) {
        process.stderr.write(`nodewall: established session ${c.text} would be cut (${c.policy === null ? c.rule : `${c.policy} ${c.rule}`})\n`);
      }
      if (cut.length > 0 && !dryRun && confirmSeconds !== undefined && !argv.force) {
        // The rollback is the safety net the operator asked for: load, and undo it unless confirmed.
        process.stderr.write(`nodewall: applying anyway on probation (--confirm-within): if the session is cut, the previous ruleset comes back within ${confirmSeconds} s\n`);
      }
      if (cut.length > 0 && !dryRun && !argv.force && confirmSeconds === undefined) {
        process.stderr.write(`nodewall: refusing to apply: ${cut.length} established inbound session(s) would be cut; nothing was changed (pass --force to apply anyway)\n`);
        process.exitCode = exitCodes.failure;
        return;
      }
    }
    const target: ProbationTarget = {
      stateDir: argv.stateDir ?? state.config.stateDir, nftPath: state.config.nft.path, table: state.config.nft.table,
      timeoutMs: state.config.nft.timeoutSeconds * 1000,
    };
    if (confirmSeconds === undefined && !dryRun) {
      const p = await readPending(target.stateDir);
      if (p.kind === 'ok') {
        process.stderr.write(`nodewall: warning: change ${p.value.id} is on probation until ${p.value.deadline}; unless it is confirmed, its rollback restores the table from before it and undoes this apply too (run \`nodewall confirm\` first)\n`);
      }
    }
    // Commit-confirm: the record and the watchdog exist before anything is loaded.
    const probation: Probation | undefined = confirmSeconds === undefined || dryRun
      ? undefined
      : await putOnProbation(target, { origin: 'cli', by: cliActor(), seconds: confirmSeconds });
    // A failed load withdraws its probation only if it changed nothing (a full replace is several transactions).
    const before = probation === undefined ? undefined : await kernelFingerprint(target.nftPath, target.table, target.timeoutMs);
    const result = await applyModel(state.model, {
      nftPath: state.config.nft.path,
      table: state.config.nft.table,
      mode,
      dryRun,
      adopt: argv.adopt,
      dropRecords: dropRecordsOf(state.config),
      timeoutMs: state.config.nft.timeoutSeconds * 1000,
      ...(state.config.nft.maxElementsPerTransaction === undefined ? {} : { maxElementsPerTransaction: state.config.nft.maxElementsPerTransaction }),
    }).catch(async (err: unknown) => {
      if (probation !== undefined) {
        const after = await kernelFingerprint(target.nftPath, target.table, target.timeoutMs).catch(() => undefined);
        if (after !== undefined && after === before) {
          await abandonProbation(target, probation, cliActor(), err instanceof Error ? err.message : String(err)).catch(() => undefined);
        } else {
          const r = probation.record;
          process.stderr.write(`nodewall: the failed apply may have changed table inet ${r.table} (or left a temporary table of it): change ${r.id} stays on probation, and unless confirmed the previous ruleset is restored by the watchdog at ${r.deadline}\n`);
        }
      }
      throw err;
    });
    if (probation !== undefined) {
      const r = probation.record;
      // First thing after the load: from here on only the watchdog (and the agent) matter.
      process.stderr.write(`nodewall: loaded on probation: run \`nodewall confirm\` before ${r.deadline} (${r.seconds} s), or the previous ruleset (${r.previous.kind === 'absent' ? 'no table' : `table inet ${r.table} as it was`}) is restored by the watchdog (pid ${r.watchdogPid ?? '?'})${probation.replaced === undefined ? '' : `; this replaces the unconfirmed ${probation.replaced.id}, and keeps its rollback target`}\n`);
    }
    if (result.adopted) {
      process.stderr.write(`nodewall: table inet ${state.config.nft.table} had no nodewall ownership mark; ${dryRun ? 'it would be taken over' : 'it was taken over'} (--adopt)\n`);
    }
    if (argv.output !== 'text') {
      const { state: _state, script, ...rest } = result;
      const pending = probation === undefined ? {} : { pendingConfirmation: { id: probation.record.id, deadline: probation.record.deadline, seconds: probation.record.seconds, watchdogPid: probation.record.watchdogPid ?? null } };
      process.stdout.write(formatDoc({ node: state.nodeName, table: state.config.nft.table, mode, ...rest, scriptLines: script.split('\n').length, ...pending }, argv.output));
    } else {
      process.stdout.write(`${summary(result, state.config.nft.table)}\n`);
      if (result.changes !== undefined) for (const l of changeLines(result.changes)) process.stdout.write(`  ${l}\n`);
    }
    process.exitCode = hasErrors(state.problems) ? exitCodes.invalidInput : exitCodes.ok;
  },
};
