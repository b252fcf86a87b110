// Loader and runner for the conformance cases in test/fixtures/conformance/*.yaml:
// each case is a set of policies (plus optional extra cluster objects) over the
// base cluster, and flows with the verdict Cilium's host firewall would give,
// written from the semantics reference. The engine test and the kernel
// differential test both replay them.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parse, parseDocument, stringify } from 'yaml';
import { loadManifestText, type LoadResult } from '../../src/api/load-manifests.js';
import { mergeConfig, parseConfig, type ConfigOverrides } from '../../src/inventory/config.js';
import type { NodewallConfig } from '../../src/inventory/types.js';
import { buildState, type State } from '../../src/pipeline.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { explainText } from '../../src/verdict/explain.js';
import type { Flow, Verdict } from '../../src/verdict/types.js';

/** This node in every case. */
export const CONFORMANCE_NODE = 'node-a';

/**
 * Config every case starts from: cluster name and pod CIDRs of the base cluster, and
 * mode enforce so a model rendered for the kernel drops what the verdict denies.
 */
export const BASE_CASE_CONFIG = {
  clusterName: 'default',
  clusterPodCIDRs: ['198.51.100.0/24', '2001:db8:100::/64'],
  mode: 'enforce',
} as const;

/**
 * What the cases must cover between them (test/policy/conformance.test.ts checks that
 * every tag is used, and the loader rejects tags outside this list).
 */
export const COVERAGE_TAGS = [
  'ccnp-invalid-whole', 'spec', 'specs', 'spec-and-specs', 'pod-rules-ignored',
  'node-selector-matchlabels', 'node-selector-matchexpressions', 'node-selector-label-filter', 'node-selector-control-plane',
  'nil-vs-empty',
  'entity-host', 'entity-remote-node', 'entity-kube-apiserver', 'entity-health', 'entity-ingress', 'entity-init',
  'entity-unmanaged', 'entity-world', 'entity-cluster', 'entity-cluster-mesh', 'entity-all', 'entity-none',
  'from-cidr', 'from-cidrset-except', 'from-endpoints-pods-only', 'from-endpoints-cluster-filter', 'from-endpoints-namespace',
  'from-nodes', 'cidr-excludes-cluster', 'cidr-match-mode-nodes', 'cidr-zero-prefix',
  'port', 'end-port', 'end-port-below-port', 'proto-tcp', 'proto-udp', 'proto-sctp', 'proto-any', 'port-zero',
  'to-ports-empty-entry',
  'icmp-number', 'icmp-name-v4', 'icmp-name-v6', 'icmp-echo-v4-only',
  'deny-l3-over-l4-allow', 'deny-wide-over-narrow-allow', 'deny-l4-in-l3-allow',
  'default-deny-per-direction', 'default-deny-deny-only', 'default-deny-false', 'default-deny-true', 'directions-independent',
  'mode-default', 'mode-always', 'mode-never',
  'icmpv4-frag-needed', 'icmpv6-nd-always-pass', 'icmpv6-forbidden-dropped', 'icmpv6-echo-by-policy',
  'egress',
] as const;

export type CoverageTag = (typeof COVERAGE_TAGS)[number];

export interface ExpectedFlow {
  readonly verdict: 'allow' | 'deny';
  readonly enforced: boolean;
  /** "POLICY FIELDPATH" of the deciding entry, when the case names it. */
  readonly rule?: string;
}

export interface ConformanceFlow {
  readonly flow: Flow;
  readonly expected: ExpectedFlow;
  /** 1-based line of the flow in its fixture file. */
  readonly line: number;
}

export interface ConformanceCase {
  readonly name: string;
  /** Section of the semantics reference, e.g. "§4.3". */
  readonly ref: string;
  /** Fixture file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the case in its file. */
  readonly line: number;
  readonly covers: readonly CoverageTag[];
  /** NodewallConfig keys of this case (on top of BASE_CASE_CONFIG), as written. */
  readonly config: Readonly<Record<string, unknown>>;
  /** 'base' = test/fixtures/conformance/cluster.yaml under the case manifests; 'none' = only the case manifests. */
  readonly cluster: 'base' | 'none';
  readonly manifests: string;
  /** Policies of the case that Cilium rejects (error problems); every other policy must load and validate cleanly. */
  readonly rejects: readonly string[];
  readonly flows: readonly ConformanceFlow[];
}

export interface CaseResult {
  readonly flow: Flow;
  readonly expected: ExpectedFlow;
  readonly actual: Verdict;
  /** explainText of the actual verdict, for failure messages. */
  readonly explanation: string;
  readonly line: number;
}

export class ConformanceFixtureError extends Error {
  override readonly name = 'ConformanceFixtureError';
}

/** The repository root: the nearest directory above this module holding package.json (works from dist-x/ too). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 12; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new ConformanceFixtureError(`no package.json above ${fileURLToPath(import.meta.url)}`);
}

export function conformanceDir(): string {
  return join(repoRoot(), 'test', 'fixtures', 'conformance');
}

const CLUSTER_FILE = 'cluster.yaml';
const CASE_KEYS = new Set(['name', 'ref', 'config', 'cluster', 'manifests', 'flows', 'covers', 'rejects']);
const FLOW_KEYS = new Set(['direction', 'peer', 'proto', 'port', 'type', 'code', 'verdict', 'enforced', 'rule']);
const PORT_PROTOS = new Set(['tcp', 'udp', 'sctp']);
const NAMED_PROTOS = new Set(['tcp', 'udp', 'sctp', 'icmp', 'icmpv6']);

function fail(where: string, message: string): never {
  throw new ConformanceFixtureError(`${where}: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isInt(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

function decodeFlow(raw: unknown, where: string, line: number): ConformanceFlow {
  if (!isRecord(raw)) fail(where, 'a flow must be a map');
  for (const k of Object.keys(raw)) if (!FLOW_KEYS.has(k)) fail(where, `unknown flow key "${k}"`);
  const { direction, peer, proto, port, type, code, verdict, enforced, rule } = raw;
  if (direction !== 'ingress' && direction !== 'egress') fail(where, 'direction must be ingress or egress');
  if (typeof peer !== 'string' || peer === '') fail(where, 'peer must be an IP address string');
  const v6 = peer.includes(':');
  let p: Flow['proto'];
  if (typeof proto === 'string' && NAMED_PROTOS.has(proto)) p = proto as Flow['proto'];
  else if (isInt(proto, 0, 255)) p = proto;
  else fail(where, 'proto must be tcp|udp|sctp|icmp|icmpv6 or a protocol number');
  if (typeof p === 'string' && PORT_PROTOS.has(p)) {
    if (!isInt(port, 0, 65535)) fail(where, `${p} flows need a port (0..65535)`);
  } else if (port !== undefined) fail(where, 'port only goes with tcp, udp or sctp');
  if (p === 'icmp' || p === 'icmpv6') {
    if (!isInt(type, 0, 255)) fail(where, `${p} flows need a type (0..255)`);
    if (code !== undefined && !isInt(code, 0, 255)) fail(where, 'code must be 0..255');
    if ((p === 'icmpv6') !== v6) fail(where, `${p} does not go with peer ${peer}`);
  } else if (type !== undefined || code !== undefined) fail(where, 'type/code only go with icmp or icmpv6');
  if (verdict !== 'allow' && verdict !== 'deny') fail(where, 'verdict must be allow or deny');
  if (typeof enforced !== 'boolean') fail(where, 'enforced must be true or false');
  if (rule !== undefined && (typeof rule !== 'string' || !/^\S+ \S+$/.test(rule))) fail(where, 'rule must be "POLICY FIELDPATH"');
  const flow: Flow = {
    direction,
    peer,
    proto: p,
    ...(typeof port === 'number' ? { port } : {}),
    ...(typeof type === 'number' ? { icmpType: type } : {}),
    ...(typeof code === 'number' ? { icmpCode: code } : {}),
  };
  const expected: ExpectedFlow = { verdict, enforced, ...(typeof rule === 'string' ? { rule } : {}) };
  return { flow, expected, line };
}

/** Line numbers of `cases[i]` and `cases[i].flows[j]`, from the YAML node ranges. */
function caseLines(text: string): { caseLine: number[]; flowLines: number[][] } {
  const doc = parseDocument(text);
  const lineOf = (offset: number | undefined): number => (offset === undefined ? 1 : text.slice(0, offset).split('\n').length);
  const caseLine: number[] = [];
  const flowLines: number[][] = [];
  const root = doc.contents;
  const cases = isMap(root) ? root.get('cases', true) : undefined;
  if (!isSeq(cases)) return { caseLine, flowLines };
  for (const c of cases.items) {
    const node = c as { range?: [number, number, number] };
    caseLine.push(lineOf(node.range?.[0]));
    const flows = isMap(c) ? c.get('flows', true) : undefined;
    flowLines.push(isSeq(flows) ? flows.items.map((f) => lineOf((f as { range?: [number, number, number] }).range?.[0])) : []);
  }
  return { caseLine, flowLines };
}

function decodeFile(path: string, rel: string): ConformanceCase[] {
  const text = readFileSync(path, 'utf8');
  const doc: unknown = parse(text);
  if (!isRecord(doc) || !Array.isArray(doc['cases'])) fail(rel, 'expected a top-level `cases:` list');
  const lines = caseLines(text);
  return (doc['cases'] as unknown[]).map((raw, i) => {
    const line = lines.caseLine[i] ?? 1;
    const where = `${rel}:${line}`;
    if (!isRecord(raw)) fail(where, 'a case must be a map');
    for (const k of Object.keys(raw)) if (!CASE_KEYS.has(k)) fail(where, `unknown case key "${k}"`);
    const { name, ref, config, cluster, manifests, flows, covers, rejects } = raw;
    if (typeof name !== 'string' || name === '') fail(where, 'name must be a non-empty string');
    if (typeof ref !== 'string' || !ref.startsWith('§')) fail(where, `case "${name}": ref must name a section ("§4.3")`);
    if (config !== undefined && !isRecord(config)) fail(where, `case "${name}": config must be a map`);
    if (cluster !== undefined && cluster !== 'base' && cluster !== 'none') fail(where, `case "${name}": cluster must be base or none`);
    if (manifests !== undefined && manifests !== null && typeof manifests !== 'string') fail(where, `case "${name}": manifests must be a string`);
    if (!Array.isArray(flows) || flows.length === 0) fail(where, `case "${name}": needs at least one flow`);
    if (!Array.isArray(covers) || covers.length === 0) fail(where, `case "${name}": needs covers: [tags]`);
    if (rejects !== undefined && (!Array.isArray(rejects) || !rejects.every((r) => typeof r === 'string'))) {
      fail(where, `case "${name}": rejects must be a list of policy names`);
    }
    for (const t of covers) {
      if (!(COVERAGE_TAGS as readonly unknown[]).includes(t)) fail(where, `case "${name}": unknown coverage tag ${JSON.stringify(t)}`);
    }
    return {
      name,
      ref,
      file: rel,
      line,
      covers: covers as CoverageTag[],
      config: config ?? {},
      cluster: cluster ?? 'base',
      manifests: typeof manifests === 'string' ? manifests : '',
      rejects: (rejects ?? []) as string[],
      flows: flows.map((f, j) => {
        const fl = lines.flowLines[i]?.[j] ?? line;
        return decodeFlow(f, `${rel}:${fl} (case "${name}")`, fl);
      }),
    };
  });
}

/** Every case of every fixture file, in file then case order. Throws ConformanceFixtureError on a malformed fixture. */
export function loadConformanceCases(): ConformanceCase[] {
  const dir = conformanceDir();
  const root = repoRoot();
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== CLUSTER_FILE).sort();
  const out: ConformanceCase[] = [];
  const names = new Map<string, string>();
  for (const f of files) {
    const path = join(dir, f);
    for (const c of decodeFile(path, relative(root, path))) {
      const prev = names.get(c.name);
      if (prev !== undefined) fail(`${c.file}:${c.line}`, `case name "${c.name}" already used at ${prev}`);
      names.set(c.name, `${c.file}:${c.line}`);
      out.push(c);
    }
  }
  return out;
}

let baseCluster: LoadResult | undefined;

/** The base cluster objects (cluster.yaml), loaded once. */
export function loadBaseCluster(): LoadResult {
  if (baseCluster === undefined) {
    const path = join(conformanceDir(), CLUSTER_FILE);
    const loaded = loadManifestText(readFileSync(path, 'utf8'), relative(repoRoot(), path));
    if (loaded.policies.length > 0 || loaded.problems.some((p) => p.severity === 'error')) {
      throw new ConformanceFixtureError(`${CLUSTER_FILE}: must hold cluster objects only and load without errors: ${JSON.stringify(loaded.problems)}`);
    }
    baseCluster = loaded;
  }
  return baseCluster;
}

/** BASE_CASE_CONFIG with the case's keys on top, validated by the real config parser. */
export function caseConfig(c: ConformanceCase): NodewallConfig {
  const where = `${c.file}:${c.line} (case "${c.name}")`;
  const base = parseConfig(stringify(BASE_CASE_CONFIG), `${where} base config`);
  // Parsing the case keys alone validates them; only the keys the case sets are layered over the base.
  const own = parseConfig(stringify(c.config), `${where} config`);
  const overrides: Record<string, unknown> = {};
  for (const k of Object.keys(c.config)) overrides[k] = (own as unknown as Record<string, unknown>)[k];
  return mergeConfig(base, overrides as ConfigOverrides);
}

/** The pipeline state (inventory, valid policies, problems, model) of node-a for this case. */
export function buildCaseState(c: ConformanceCase): State {
  const own = loadManifestText(c.manifests, `${c.file}:${c.line} [${c.name}]`);
  const cluster = c.cluster === 'base' ? loadBaseCluster() : { policies: [], objects: [], problems: [] };
  const load: LoadResult = {
    policies: [...cluster.policies, ...own.policies],
    objects: [...cluster.objects, ...own.objects],
    problems: [...cluster.problems, ...own.problems],
  };
  return buildState({ config: caseConfig(c), load, nodeName: CONFORMANCE_NODE });
}

/** Evaluates every flow of the case against the engine's model. */
export function runCase(c: ConformanceCase): CaseResult[] {
  return runCaseOn(buildCaseState(c), c);
}

/** runCase on an already built state (so a test can also inspect the state). */
export function runCaseOn(state: State, c: ConformanceCase): CaseResult[] {
  return c.flows.map(({ flow, expected, line }) => {
    const actual = evaluate(state.model, flow);
    let explanation: string;
    try {
      explanation = explainText(actual, state.model, flow);
    } catch (err) {
      explanation = `(explainText failed: ${err instanceof Error ? err.message : String(err)}) ${actual.reason}`;
    }
    return { flow, expected, actual, explanation, line };
  });
}

/**
 * Policies with error problems in the case's state, sorted; "(no policy)" stands
 * for an error not tied to a policy (YAML syntax, unreadable object).
 */
export function rejectedPolicies(state: State): string[] {
  const names = state.problems.filter((p) => p.severity === 'error').map((p) => p.policy ?? '(no policy)');
  return [...new Set(names)].sort();
}

/** "ingress tcp 22 from 203.0.113.5" */
export function flowLabel(f: Flow): string {
  const proto = typeof f.proto === 'number' ? `proto ${f.proto}` : f.proto;
  const l4 = f.port !== undefined ? ` ${f.port}` : f.icmpType !== undefined ? ` type ${f.icmpType}${f.icmpCode === undefined ? '' : `/${f.icmpCode}`}` : '';
  return `${f.direction} ${proto}${l4} ${f.direction === 'ingress' ? 'from' : 'to'} ${f.peer}`;
}

/** The deciding entry of a verdict as "POLICY FIELDPATH", or undefined when no entry decided. */
export function decidingRule(v: Verdict): string | undefined {
  if (v.decidedBy !== 'deny-entry' && v.decidedBy !== 'allow-entry') return undefined;
  const m = v.matched[0];
  return m === undefined ? undefined : `${m.policy} ${m.rule}`;
}

/** Differences between expectation and verdict, empty when they agree. */
export function mismatches(r: Pick<CaseResult, 'expected' | 'actual'>): string[] {
  const out: string[] = [];
  if (r.actual.verdict !== r.expected.verdict) out.push(`verdict ${r.actual.verdict}, expected ${r.expected.verdict}`);
  if (r.actual.enforced !== r.expected.enforced) out.push(`enforced ${r.actual.enforced}, expected ${r.expected.enforced}`);
  if (r.expected.rule !== undefined) {
    const got = decidingRule(r.actual);
    if (got !== r.expected.rule) out.push(`decided by ${got ?? r.actual.decidedBy}, expected ${r.expected.rule}`);
  }
  return out;
}
