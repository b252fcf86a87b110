// The pause's backstop for a dead agent. `nodewall pause` starts this as a
// detached process (its own session: an SSH disconnect does not end it). It
// waits for the pause to end; then, only if NO agent is running (a running
// agent re-arms by itself) and the kernel table is still nodewall's audit
// ruleset while the config says enforce, it turns the audit chains into drops
// in one nft transaction: every would-drop drops again, exactly as enforce.
// A replaced pause (other id) has its own watchdog: this one exits.

import { pidAlive, readStatus } from './status-file.js';
import { readPause } from './pause.js';
import { auditChainNames } from '../nft/render-rules.js';
import { loadScript } from '../nft/nft-exec.js';
import { type KernelTable, readTable } from '../nft/read-kernel.js';
import { findTemporaryTables } from '../nft/make-before-break.js';

export interface WatchdogOptions {
  readonly stateDir: string;
  readonly nftPath: string;
  readonly table: string;
  /** The configured mode at the end (read then); only enforce is re-armed. An unreadable config counts as enforce. */
  readonly configMode: () => Promise<string>;
  readonly id: string;
  readonly pollMs?: number;
  /** Upper bound of the whole wait (the pause cap plus a margin). */
  readonly maxWaitMs: number;
}

export type WatchdogOutcome = 'replaced' | 'agent-running' | 'not-audit' | 'rearmed' | 'not-enforce' | 'gone';

export const rearmComment = 'nodewall pause re-armed by the watchdog';

/**
 * Turn a loaded audit ruleset into an enforcing one. False when the table is not nodewall's audit ruleset. The
 * temporary tables of a full replace that did not finish (make-before-break.ts: an agent that died switching
 * modes leaves the table unhooked and the audit ruleset filtering from one of them) are re-armed in the same
 * transaction: re-arming only the unhooked table would change nothing a packet meets.
 */
export async function rearmKernel(nftPath: string, table: string, timeoutMs = 60_000): Promise<boolean> {
  // An audit ruleset: its rules go to the audit chains (a hooked table), or it has them (the unhooked copy).
  const audit = new Set<string>(Object.values(auditChainNames));
  const isAudit = (t: KernelTable | null): boolean =>
    t !== null && t.ownership !== 'foreign' && (t.rules.some((r) => r.verdict.startsWith('goto nw_audit')) || t.chains.some((c) => audit.has(c.name)));
  const t = await readTable(nftPath, table, { timeoutMs });
  if (t === null || t.ownership === 'foreign') return false;
  const names = isAudit(t) ? [table] : [];
  for (const name of (await findTemporaryTables(nftPath, table, { timeoutMs }).catch(() => ({ ours: [] as string[] }))).ours) {
    if (isAudit(await readTable(nftPath, name, { timeoutMs }).catch(() => null))) names.push(name);
  }
  if (names.length === 0) return false;
  const lines: string[] = [];
  for (const name of names) {
    for (const chain of Object.values(auditChainNames)) {
      lines.push(`flush chain inet ${name} ${chain}`, `add rule inet ${name} ${chain} counter drop comment "${rearmComment}"`);
    }
  }
  await loadScript(nftPath, `${lines.join('\n')}\n`, { timeoutMs });
  return true;
}

async function agentRunning(stateDir: string): Promise<boolean> {
  const s = await readStatus(stateDir).catch(() => undefined);
  return s !== undefined && s.stopped !== true && pidAlive(s.pid);
}

/**
 * Waits for the pause `o.id` to end, then re-arms if needed. `armed` is called once the pause file has been
 * read and is this pause (the starter waits for that); a pause already gone or replaced ends it unarmed.
 */
export async function runWatchdog(o: WatchdogOptions, armed: (pid: number) => void = () => undefined): Promise<WatchdogOutcome> {
  const deadline = Date.now() + o.maxWaitMs;
  let isArmed = false;
  for (;;) {
    const st = await readPause(o.stateDir, Date.now()).catch(() => ({ kind: 'none' as const }));
    if ((st.kind === 'active' || st.kind === 'expired') && st.record.id !== o.id) return 'replaced';
    if (st.kind !== 'active' || Date.now() >= deadline) break;
    if (!isArmed) {
      isArmed = true;
      armed(process.pid);
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
  }
  if ((await o.configMode().catch(() => 'enforce')) !== 'enforce') return 'not-enforce';
  if (await agentRunning(o.stateDir)) return 'agent-running';
  return (await rearmKernel(o.nftPath, o.table)) ? 'rearmed' : 'not-audit';
}
