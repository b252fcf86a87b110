// Reads Kubernetes manifest TEXT (YAML streams, JSON, `kind: List`, policies embedded
// in ConfigMaps) into decoded policies and plain cluster objects. Never throws on
// bad input: every failure becomes a Problem with file:line:col. Files are read by
// src/inventory/read-manifest-files.ts (loadManifestPaths in load-manifest-files.ts).
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Composer, isMap, isScalar, isSeq, LineCounter, Parser, type Document, type Node, type Scalar } from 'yaml';
import type { Problem } from './problem.js';
import type { KubeObject, PolicyDocument, SourcePos } from './types.js';
import { decodePolicy, describeValue, type PolicyKind } from './decode-policy.js';
import { expandTemplates, type PlacedExpansion } from './expand-templates.js';
import { collectPositions } from './yaml-positions.js';
import { childPath } from './field-path.js';
import { metadataProblem } from './object-metadata.js';

export interface LoadResult {
  policies: PolicyDocument[];
  objects: KubeObject[];
  /** File-level problems (unreadable, YAML syntax, templates, ...). Decode problems of a
   *  policy are on `policy.decodeProblems` and returned by validatePolicy(). */
  problems: Problem[];
  /** Documents of kinds nodewall does not read (additive). */
  skipped?: number;
}

export const POLICY_API_VERSION = 'cilium.io/v2';
const POLICY_KINDS: ReadonlySet<string> = new Set<PolicyKind>(['CiliumClusterwideNetworkPolicy', 'CiliumNetworkPolicy']);
export const OBJECT_KINDS: ReadonlySet<string> = new Set([
  'Node', 'CiliumNode', 'Pod', 'CiliumEndpoint', 'Namespace', 'Endpoints', 'EndpointSlice',
]);

type LineColToPos = (line: number, col: number) => SourcePos;

interface Acc {
  readonly policies: PolicyDocument[];
  readonly objects: KubeObject[];
  readonly problems: Problem[];
  skipped: number;
}

interface Source {
  readonly file: string;
  readonly text: string;
  readonly lc: LineCounter;
  readonly doc: Document;
  /** Offset in `text` → position in the user's file. */
  readonly toPos: (offset: number) => SourcePos;
  /** True for manifests read out of a ConfigMap value (no further unwrapping). */
  readonly embedded: boolean;
}

function newAcc(): Acc {
  return { policies: [], objects: [], problems: [], skipped: 0 };
}

function result(acc: Acc): LoadResult {
  return { policies: acc.policies, objects: acc.objects, problems: acc.problems, skipped: acc.skipped };
}

function problem(severity: Problem['severity'], pos: SourcePos, message: string, code: string,
  policy?: string, field = ''): Problem {
  return policy === undefined || policy === ''
    ? { severity, pos, field, message, code }
    : { severity, pos, policy, field, message, code };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function loadManifestText(text: string, file: string): LoadResult {
  const acc = newAcc();
  for (const _ of loadStream(text.replace(/^\uFEFF/, ''), file, (line, col) => ({ file, line, col }), false, acc)) { /* all at once */ }
  return result(acc);
}

/**
 * loadManifestText, giving the event loop a turn every `sliceMs` of work
 * (between documents): a big file never starves the agent's timers for long.
 */
export async function loadManifestTextAsync(text: string, file: string, sliceMs = 20): Promise<LoadResult> {
  const acc = newAcc();
  let since = performance.now();
  for (const _ of loadStream(text.replace(/^\uFEFF/, ''), file, (line, col) => ({ file, line, col }), false, acc)) {
    if (performance.now() - since < sliceMs) continue;
    await yieldToLoop();
    since = performance.now();
  }
  return result(acc);
}

/** Yields after each document. Parsed lazily, one document at a time (what parseAllDocuments does all at once). */
function* loadStream(text: string, file: string, mapLineCol: LineColToPos, embedded: boolean, acc: Acc): Generator<void, void, void> {
  const lc = new LineCounter();
  const parser = new Parser(lc.addNewLine);
  // logLevel 'error': yaml would otherwise print process warnings (e.g. a map used as a key) to stderr.
  const composer = new Composer({ merge: true, prettyErrors: true, logLevel: 'error' });
  const toPos = (offset: number): SourcePos => {
    const { line, col } = lc.linePos(offset);
    return mapLineCol(line, col);
  };
  let documents = 0;
  for (const doc of composer.compose(parser.parse(text))) {
    documents++;
    yield;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) acc.problems.push(yamlProblem('error', e, toPos));
      continue;
    }
    for (const w of doc.warnings) acc.problems.push(yamlProblem('warning', w, toPos));
    if (doc.contents === null) continue;
    try {
      loadNode(doc.contents, { file, text, lc, doc, toPos, embedded }, acc, undefined);
    } catch (cause) {
      // yaml's toJS throws on alias bombs ("Excessive alias count"); keep going with the next document.
      acc.problems.push(problem('error', toPos(doc.contents.range?.[0] ?? 0),
        `cannot read this document: ${errorText(cause)}`, 'load/document'));
    }
  }
  // A stream with no document still reports stream-level errors.
  if (documents === 0) for (const e of composer.streamInfo().errors) acc.problems.push(yamlProblem('error', e, toPos));
}

function yamlProblem(severity: Problem['severity'], e: { code: string; message: string; pos: [number, number] },
  toPos: (offset: number) => SourcePos): Problem {
  const firstLine = e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? e.message;
  return problem(severity, toPos(e.pos[0]), `YAML ${severity === 'error' ? 'error' : 'warning'} ${e.code}: ${firstLine}`,
    `yaml/${e.code.toLowerCase().replace(/_/g, '-')}`);
}

interface Inherited {
  readonly kind?: string;
  readonly apiVersion?: string;
}

function loadNode(node: Node, src: Source, acc: Acc, inherited: Inherited | undefined): void {
  const js: unknown = node.toJS(src.doc);
  const start = node.range?.[0] ?? 0;
  if (js === null) return; // empty document
  if (!isRecord(js)) {
    acc.skipped++;
    return;
  }
  const kind = typeof js['kind'] === 'string' ? js['kind'] : inherited?.kind;
  const apiVersion = typeof js['apiVersion'] === 'string' ? js['apiVersion'] : inherited?.apiVersion;
  if (kind === undefined) {
    acc.skipped++;
    return;
  }
  if ((kind === 'List' || kind.endsWith('List')) && Array.isArray(js['items'])) {
    const items = isMap(node) ? node.get('items', true) : undefined;
    if (!isSeq(items)) return;
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
    const inheritedItem: Inherited = {
      ...(itemKind === undefined ? {} : { kind: itemKind }),
      ...(apiVersion === undefined ? {} : { apiVersion }),
    };
    for (const item of items.items) {
      if (item !== null && typeof item === 'object' && 'range' in item) loadNode(item as Node, src, acc, inheritedItem);
    }
    return;
  }
  if (POLICY_KINDS.has(kind)) {
    loadPolicy(node, src, acc, kind as PolicyKind, apiVersion, start);
  } else if (OBJECT_KINDS.has(kind)) {
    loadObject(node, src, acc, kind, apiVersion, start);
  } else if (kind === 'ConfigMap' && !src.embedded && loadEmbedded(node, src, acc)) {
    return;
  } else {
    acc.skipped++;
  }
}

function templateWarnings(expansions: readonly PlacedExpansion[], acc: Acc, policy?: string): void {
  for (const e of expansions) {
    acc.problems.push(problem('warning', e.pos,
      `template placeholder ${e.text}: nodewall uses the default ${JSON.stringify(e.value)}, ` +
        `not the environment (clusterctl/envsubst would use $${e.variable} if it is set)`,
      'template/default-used', policy));
  }
}

function withKind(js: Record<string, unknown>, kind: string, apiVersion: string | undefined): Record<string, unknown> {
  return {
    ...js,
    kind,
    ...(apiVersion === undefined ? {} : { apiVersion }),
  };
}

function loadPolicy(node: Node, src: Source, acc: Acc, kind: PolicyKind, apiVersion: string | undefined,
  start: number): void {
  const pos = src.toPos(start);
  if (apiVersion !== POLICY_API_VERSION) {
    acc.problems.push(problem('warning', pos,
      `skipped: ${kind} with apiVersion ${JSON.stringify(apiVersion ?? '')}; nodewall reads ${POLICY_API_VERSION} only`,
      'load/api-version'));
    acc.skipped++;
    return;
  }
  const expansions = expandTemplates(node, src.toPos);
  const json = withKind(node.toJS(src.doc) as Record<string, unknown>, kind, apiVersion);
  const positions = collectPositions(node, src.toPos);
  const doc = decodePolicy({ kind, json, pos, positions });
  templateWarnings(expansions, acc, doc.name);
  acc.policies.push(doc);
}

function loadObject(node: Node, src: Source, acc: Acc, kind: string, apiVersion: string | undefined,
  start: number): void {
  const pos = src.toPos(start);
  const expansions = expandTemplates(node, src.toPos);
  const json = withKind(node.toJS(src.doc) as Record<string, unknown>, kind, apiVersion);
  const metadata = json['metadata'];
  const name = isRecord(metadata) ? metadata['name'] : undefined;
  templateWarnings(expansions, acc, typeof name === 'string' ? name : undefined);
  if (!isRecord(metadata) || typeof name !== 'string' || name === '') {
    const at = collectPositions(node, src.toPos).get('metadata') ?? pos;
    acc.problems.push(problem('error', at,
      `${kind} without metadata.name (got ${describeValue(name)}): skipped`, 'decode/required', undefined, 'metadata.name'));
    return;
  }
  const badType = badMetadataField(metadata);
  const bad = badType ?? metadataProblem(kind, { ...metadata, name });
  if (bad !== undefined) {
    const at = collectPositions(node, src.toPos).get(bad.field) ?? pos;
    acc.problems.push(problem('error', at, `${kind} ${name}: ${bad.message}: skipped`, badType === undefined ? 'decode/metadata' : 'decode/type',
      undefined, bad.field));
    return;
  }
  const { labels, namespace, ...rest } = metadata;
  const meta: KubeObject['metadata'] = {
    ...rest,
    name,
    ...(typeof namespace === 'string' ? { namespace } : {}),
    ...(isRecord(labels) ? { labels: labels as Record<string, string> } : {}),
  };
  acc.objects.push({ ...json, kind, metadata: meta, pos });
}

/** metadata.namespace must be a string and labels a map of strings (null = absent), as the API server requires. */
function badMetadataField(metadata: Record<string, unknown>): { field: string; message: string } | undefined {
  const { namespace, labels } = metadata;
  if (namespace !== undefined && namespace !== null && typeof namespace !== 'string') {
    return { field: 'metadata.namespace', message: `metadata.namespace must be a string, got ${describeValue(namespace)}` };
  }
  if (labels === undefined || labels === null) return undefined;
  if (!isRecord(labels)) return { field: 'metadata.labels', message: `metadata.labels must be a map, got ${describeValue(labels)}` };
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string') {
      return { field: childPath('metadata.labels', k), message: `label ${k} must be a string (quote it), got ${describeValue(v)}` };
    }
  }
  return undefined;
}

const EMBEDDED_KIND = /["']?kind["']?\s*:\s*["']?(CiliumClusterwideNetworkPolicy|CiliumNetworkPolicy)(List)?\b/;

/** Loads policies embedded as strings in a ConfigMap's `data`; false if there are none. */
function loadEmbedded(node: Node, src: Source, acc: Acc): boolean {
  const data = isMap(node) ? node.get('data', true) : undefined;
  if (!isMap(data)) return false;
  let found = false;
  for (const pair of data.items) {
    const value = pair.value;
    if (!isScalar(value) || typeof value.value !== 'string' || !EMBEDDED_KIND.test(value.value)) continue;
    found = true;
    for (const _ of loadStream(value.value, src.file, embeddedMapper(value, src), true, acc)) { /* embedded: small */ }
  }
  return found;
}

/**
 * Maps a position inside a ConfigMap value back into the outer file. Exact for
 * literal block scalars (`|`, `|-`): inner line n is the n-th line after the
 * header, shifted right by the block's indentation. Other scalar styles map
 * everything to the scalar's start.
 */
function embeddedMapper(value: Scalar, src: Source): LineColToPos {
  const start = value.range?.[0] ?? 0;
  const startPos = src.toPos(start);
  if (value.type !== 'BLOCK_LITERAL') return () => startPos;
  const header = src.lc.linePos(start).line;
  const end = src.lc.linePos(value.range?.[1] ?? start).line;
  const lines = src.text.split('\n');
  let indent = 0;
  for (let i = header; i < Math.min(lines.length, end + 1); i++) {
    const l = lines[i] ?? '';
    if (l.trim() !== '') {
      indent = l.length - l.trimStart().length;
      break;
    }
  }
  return (line, col) => src.toPos(offsetOf(src.lc, header + line, indent + col));
}

/** Offset in the outer text of a 1-based line/col (clamped to that line's start). */
function offsetOf(lc: LineCounter, line: number, col: number): number {
  const lineStart = lc.lineStarts[line - 1] ?? lc.lineStarts.at(-1) ?? 0;
  return lineStart + col - 1;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
