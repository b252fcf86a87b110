// Health-checked changes (config rollout.probes, rollout.probeSeconds; rollout-config.ts).
//
// Before an enforce-mode change that may tighten what is allowed (mayTighten), the agent connects to every
// probe (TCP, in parallel, each attempt bounded by probeAttemptMs) and notes which pass. After the change,
// each probe that passed before must connect again within probeSeconds; it is retried (every
// retryGapMs, each attempt bounded) so that one lost SYN does not roll back. A probe that never passes
// again is a broken probe: the agent restores the previous ruleset and refuses the change
// (refused-changes.ts). A probe that failed before the change is ignored: the change did not break it.
//
// A probe passes when the TCP handshake completes (a refused connection or a timeout fails it). DNS names
// are resolved at each attempt (a failed or slow lookup fails the attempt: a change that cuts DNS breaks
// that probe). `kube-apiserver` is the host:port of the URL the Kubernetes source talks to.

import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';
import type { Logger } from 'pino';
import type { RunMode } from '../inventory/types.js';
import type { DirectionPolicy, Entry, HostModel, IdentitySet } from '../policy/model.js';
import { apiServerEndpoint, defaultProbeSeconds, type ProbeTarget, type RolloutSettings } from './rollout-config.js';

/** One connect attempt (DNS lookup included) never takes longer than this. */
export const probeAttemptMs = 2000;
/** Pause between failed attempts after a change. */
export const retryGapMs = 500;

export interface ProbeEndpoint {
  /** As configured: "192.0.2.10:6443", "kube-apiserver". */
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface ProbeOutcome {
  readonly ok: boolean;
  /** Why it failed: "timeout", "ECONNREFUSED", "dns: ENOTFOUND", ... */
  readonly error?: string;
}

/** The configured probes as endpoints; kube-apiserver needs the Kubernetes source's server URL. */
export function probeEndpoints(probes: readonly ProbeTarget[], kubeServer: string | undefined): { endpoints: ProbeEndpoint[]; unresolved: string[] } {
  const endpoints: ProbeEndpoint[] = [];
  const unresolved: string[] = [];
  for (const p of probes) {
    if (p.kind === 'tcp') {
      endpoints.push({ name: p.text, host: p.host, port: p.port });
      continue;
    }
    const ep = apiServerEndpoint(kubeServer);
    if (ep === undefined) unresolved.push(p.text);
    else endpoints.push({ name: p.text, host: ep.host, port: ep.port });
  }
  return { endpoints, unresolved };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]);
}

/** One TCP connect to `ep` within `timeoutMs` (DNS included). Never rejects. */
export async function probeOnce(ep: ProbeEndpoint, timeoutMs: number): Promise<ProbeOutcome> {
  const started = Date.now();
  let address = ep.host;
  if (isIP(ep.host) === 0) {
    try {
      address = (await withTimeout(lookup(ep.host), timeoutMs, 'timeout')).address;
    } catch (err) {
      return { ok: false, error: `dns: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
  }
  const left = Math.max(1, timeoutMs - (Date.now() - started));
  return new Promise((resolve) => {
    const sock = connect({ host: address, port: ep.port });
    const done = (o: ProbeOutcome) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), left);
    sock.once('connect', () => done({ ok: true }));
    sock.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: err.code ?? err.message }));
  });
}

/** Every endpoint once, in parallel (the list is bounded by maxProbes). */
export async function probeAll(endpoints: readonly ProbeEndpoint[], timeoutMs: number, once = probeOnce): Promise<Map<string, ProbeOutcome>> {
  const results = await Promise.all(endpoints.map(async (ep) => [ep.name, await once(ep, timeoutMs)] as const));
  return new Map(results);
}

/**
 * Retries `ep` until it connects or `windowMs` has passed (at least one attempt). Resolves with the last
 * outcome. Waiting uses `sleep` (tests) and measures with `now`.
 */
export async function probeWithin(
  ep: ProbeEndpoint,
  windowMs: number,
  deps: { once?: typeof probeOnce; now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<ProbeOutcome & { attempts: number }> {
  const once = deps.once ?? probeOnce;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + windowMs;
  let attempts = 0;
  for (;;) {
    attempts++;
    const left = deadline - now();
    const o = await once(ep, Math.max(1, Math.min(probeAttemptMs, left)));
    if (o.ok) return { ...o, attempts };
    if (deadline - now() <= retryGapMs) return { ...o, attempts };
    await sleep(retryGapMs);
  }
}

// --- does a change tighten? -----------------------------------------------------------------------------

function sameAddresses(a: IdentitySet | undefined, b: IdentitySet | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.exclude === b.exclude && sameList(a.v4, b.v4) && sameList(a.v6, b.v6);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

/** Does `next` hold every address of `prev` (conservative: a merged prefix counts as a change)? */
function covers(next: IdentitySet | undefined, prev: IdentitySet | undefined): boolean {
  if (prev === next) return true;
  if (prev === undefined || next === undefined) return prev === undefined;
  if (prev.exclude !== next.exclude) return false;
  const has = new Set([...next.v4, ...next.v6]);
  return prev.v4.every((x) => has.has(x)) && prev.v6.every((x) => has.has(x));
}

function entryKey(e: Entry): string {
  return JSON.stringify([e.policy, e.rule, e.action, e.peer, e.l4]);
}

function directionTightens(prev: DirectionPolicy, next: DirectionPolicy, pm: HostModel, nm: HostModel): boolean {
  if (!next.enforced) return false;
  if (!prev.enforced) return true;
  if (next.defaultDeny && !prev.defaultDeny) return true;
  const before = new Map(prev.entries.map((e) => [entryKey(e), e]));
  const after = new Map(next.entries.map((e) => [entryKey(e), e]));
  for (const [k, e] of after) {
    if (e.action !== 'deny') continue;
    const old = before.get(k);
    // A new deny, or a deny whose peer gained addresses.
    if (old === undefined) return true;
    if (e.peer !== null && !covers(pm.sets[e.peer], nm.sets[e.peer])) return true;
  }
  for (const [k, e] of before) {
    if (e.action !== 'allow') continue;
    // An allow that is gone or changed, or whose peer lost addresses.
    if (!after.has(k)) return true;
    if (e.peer !== null && !covers(nm.sets[e.peer], pm.sets[e.peer])) return true;
  }
  return false;
}

/**
 * May `next` (to be enforced in `mode`) drop a flow that `prev` (in force in `prevMode`) allowed? A
 * conservative approximation that errs towards yes: new or widened deny entries, removed, changed or
 * narrowed allow entries, enforcement or default deny switched on, a switch into enforce mode, and any
 * change of the failsafes, the cluster exclusions, this node's addresses or the datapath settings.
 * Only enforce mode drops, so only enforce mode is probed.
 */
export function mayTighten(prev: HostModel, prevMode: RunMode, next: HostModel, mode: RunMode): boolean {
  if (mode !== 'enforce') return false;
  if (prevMode !== 'enforce') return true;
  if (prev === next) return false;
  if (JSON.stringify(prev.failsafe) !== JSON.stringify(next.failsafe)) return true;
  if (JSON.stringify(prev.datapath) !== JSON.stringify(next.datapath)) return true;
  if (!sameList(prev.hostAddresses, next.hostAddresses)) return true;
  for (const x of ['cluster', 'cluster_non_node'] as const) {
    const a = prev.exclusions[x];
    const b = next.exclusions[x];
    if (a !== b && (!sameList(a.v4, b.v4) || !sameList(a.v6, b.v6))) return true;
  }
  return directionTightens(prev.ingress, next.ingress, prev, next) || directionTightens(prev.egress, next.egress, prev, next);
}

/** Policies whose entries (or the addresses of their entries' peers) differ between the two models, sorted. */
export function changedPolicies(prev: HostModel, next: HostModel): string[] {
  const byPolicy = (m: HostModel): Map<string, string[]> => {
    const out = new Map<string, string[]>();
    for (const dir of ['ingress', 'egress'] as const) {
      for (const e of m[dir].entries) {
        const list = out.get(e.policy) ?? [];
        list.push(`${dir}:${entryKey(e)}`);
        out.set(e.policy, list);
      }
    }
    return out;
  };
  const a = byPolicy(prev);
  const b = byPolicy(next);
  const changed = new Set<string>();
  for (const p of new Set([...a.keys(), ...b.keys(), ...prev.selectedPolicies, ...next.selectedPolicies])) {
    const x = a.get(p) ?? [];
    const y = b.get(p) ?? [];
    if (!sameList(x, y) || prev.selectedPolicies.includes(p) !== next.selectedPolicies.includes(p)) changed.add(p);
  }
  for (const dir of ['ingress', 'egress'] as const) {
    for (const e of next[dir].entries) {
      if (e.peer !== null && !changed.has(e.policy) && !sameAddresses(prev.sets[e.peer], next.sets[e.peer])) changed.add(e.policy);
    }
  }
  return [...changed].sort();
}

// --- the guard the agent calls ----------------------------------------------------------------------------

export interface Baseline {
  /** Probes that connected before the change. */
  readonly passed: readonly ProbeEndpoint[];
  /** Probes that did not (ignored after the change), with why. */
  readonly failing: readonly { readonly name: string; readonly error: string }[];
  readonly probeSeconds: number;
}

export interface ProbeFailure {
  readonly probe: string;
  readonly error: string;
  readonly attempts: number;
}

export interface GuardInput {
  readonly prev: HostModel | undefined;
  readonly prevMode: RunMode | undefined;
  readonly next: HostModel;
  readonly mode: RunMode;
  readonly settings: RolloutSettings | undefined;
  /** The Kubernetes source's server URL, for `kube-apiserver`. */
  readonly kubeServer: string | undefined;
  readonly log: Logger;
}

/**
 * Before a change: undefined when nothing is to be probed (no probes, not enforce mode, nothing in force
 * yet, or the change cannot tighten); else which probes pass now.
 */
export async function probeBefore(input: GuardInput): Promise<Baseline | undefined> {
  const s = input.settings;
  if (s === undefined || s.probes.length === 0) return undefined;
  if (input.prev === undefined || input.prevMode === undefined) return undefined;
  if (!mayTighten(input.prev, input.prevMode, input.next, input.mode)) return undefined;
  const { endpoints, unresolved } = probeEndpoints(s.probes, input.kubeServer);
  for (const u of unresolved) input.log.warn({ probe: u }, `rollout probe ${u}: the Kubernetes source has no server address yet; not probed`);
  const probeSeconds = s.probeSeconds ?? defaultProbeSeconds;
  const before = await probeAll(endpoints, Math.min(probeAttemptMs, probeSeconds * 1000));
  const passed = endpoints.filter((ep) => before.get(ep.name)?.ok === true);
  const failing = endpoints.filter((ep) => before.get(ep.name)?.ok !== true).map((ep) => ({ name: ep.name, error: before.get(ep.name)?.error ?? 'unknown' }));
  input.log.info({ probes: { passed: passed.map((p) => p.name), failing } }, 'rollout probes before a tightening change');
  return { passed, failing, probeSeconds };
}

/** After the change: the first probe that passed before and did not pass again within probeSeconds. */
export async function probeAfter(b: Baseline): Promise<ProbeFailure | undefined> {
  const results = await Promise.all(b.passed.map(async (ep) => ({ ep, r: await probeWithin(ep, b.probeSeconds * 1000) })));
  const broken = results.find((x) => !x.r.ok);
  return broken === undefined ? undefined : { probe: broken.ep.name, error: broken.r.error ?? 'failed', attempts: broken.r.attempts };
}
