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
import { collectPositions, lineCounter } from './yaml-positions.js';
import { LazyDocumentPositions } from './lazy-positions.js';
import { childPath } from './field-path.js';
import { metadataProblem } from './object-metadata.js';
import { decodeFastYamlDocument, fastSubsetText, SLOW_ITEM, StringTable, type ItemSpan } from './fast-yaml.js';
import { ownString } from './own-string.js';
import { decodeFastJson, type FastJsonDuplicates } from './fast-json.js';
import { splitDocuments, type DocumentSpan } from './split-documents.js';

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

/**
 * How the loader has read its input since the process started: the full
 * (position-tracking) parser over a stream or document, and List items read
 * alone by it. For tests that big inputs take the fast path, and for a look at
 * why one is slow.
 */
export const loaderCounts = { fullParserRuns: 0, itemsReadAlone: 0 };
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

export interface LoadOptions {
  /**
   * Read object documents without the position-tracking parser where that gives
   * the same result (default true; false = every document through the full
   * parser, the reference the fast path is tested against).
   */
  readonly fast?: boolean;
}

export function loadManifestText(text: string, file: string, options: LoadOptions = {}): LoadResult {
  const acc = newAcc();
  for (const _ of loadText(text.replace(/^\uFEFF/, ''), file, options.fast ?? true, acc)) { /* all at once */ }
  return result(acc);
}

/**
 * loadManifestText, giving the event loop a turn every `sliceMs` of work
 * (between documents): a big file never starves the agent's timers for long.
 */
export async function loadManifestTextAsync(text: string, file: string, sliceMs = 20, options: LoadOptions = {}): Promise<LoadResult> {
  const acc = newAcc();
  let since = performance.now();
  for (const _ of loadText(text.replace(/^\uFEFF/, ''), file, options.fast ?? true, acc)) {
    if (performance.now() - since < sliceMs) continue;
    await yieldToLoop();
    since = performance.now();
  }
  return result(acc);
}

/**
 * The whole text: one JSON value, or a YAML stream read document by document,
 * through the fast decoders when they can (fast-json.ts, fast-yaml.ts), else
 * (ConfigMaps with policies, anything with a problem to report, anything
 * unusual) through the full parser with exact positions. Yields between
 * documents (and between a List's items).
 */
function* loadText(text: string, file: string, fast: boolean, acc: Acc): Generator<void, void, void> {
  const whole = (line: number, col: number): SourcePos => ({ file, line, col });
  if (!fast) {
    yield* loadStream(text, file, whole, false, acc);
    return;
  }
  const json = decodeFastJson(text);
  if (json !== undefined && 'duplicateItems' in json) {
    if (!duplicateKeyErrors(text, json, file, acc)) yield* loadStream(text, file, whole, false, acc);
    return;
  }
  if (json !== undefined) {
    const out = newAcc();
    // The whole text is the one document: a policy outside a List (a CCNP from the API server, a
    // `kubectl get -o json` of one policy) gets its field positions from it when first asked for.
    const doc: WholeDocument = { text, span: { start: 0, end: text.length, line: 1 } };
    if (yield* fastNode(json.value, sourcePos(file, json.rootPos), json.itemPos, file, undefined, out, doc, { text, spans: json.itemSpans, entries: false })) commit(out, acc);
    else if (text.length > FULL_PARSER_MAX_DOCUMENT_CHARS) acc.problems.push(tooBigForFullParser(text, { start: 0, end: text.length, line: 1 }, file));
    else yield* loadStream(text, file, whole, false, acc);
    return;
  }
  const spans = splitDocuments(text);
  if (spans === undefined) {
    yield* loadStream(text, file, whole, false, acc);
    return;
  }
  // Runs of documents the fast path declines are read together, in order, by the full parser. A run
  // with a syntax error may not end where its text does (an unclosed quote runs on into the next
  // documents): then everything from its start to the end of the file is read by the full parser.
  let slowFrom: DocumentSpan | undefined;
  const flushSlow = function* (end: number): Generator<void, boolean, void> {
    if (slowFrom === undefined) return true;
    const { start, line } = slowFrom;
    slowFrom = undefined;
    const mapLineCol = (l: number, col: number): SourcePos => ({ file, line: l + line - 1, col });
    const out = newAcc();
    // A copy of the run: the policies read from it outlive the file's text (own-string.ts).
    if (yield* loadStream(ownString(text.slice(start, end)), file, mapLineCol, false, out)) {
      commit(out, acc);
      return true;
    }
    yield* loadStream(text.slice(start), file, mapLineCol, false, acc);
    return false;
  };
  const strings = new StringTable();
  // Checked once for the whole text, not per document (the documents would be scanned again one by one).
  const textIsClean = fastSubsetText(text);
  // One scratch result reused for every document: what a document gives is kept only if it all went through.
  const out = newAcc();
  let fastDocs = 0;
  for (let i = 0; i < spans.length; i++) {
    const span = spans.at(i);
    const doc = decodeFastYamlDocument(text, span.start, span.end, span.line, strings, textIsClean, true);
    let done = doc !== undefined && (doc.value === null || doc.rootPos === undefined);
    if (doc !== undefined && !done && doc.rootPos !== undefined) {
      const pos = sourcePos(file, doc.rootPos);
      done = listParts(doc.value, undefined) === undefined
        ? fastObject(doc.value, pos, file, undefined, out, { text, span })
        : yield* fastNode(doc.value, pos, doc.itemPos, file, undefined, out, { text, span }, { text, spans: doc.itemSpans, entries: true });
    }
    if (done) {
      // No generator made for the (usual) case of nothing to flush.
      if (slowFrom !== undefined && !(yield* flushSlow(span.start))) return;
      commit(out, acc);
      // A turn every 32 fast documents (a few µs each): a yield and a clock read per document cost more.
      if ((++fastDocs & 31) === 0) yield;
    } else if (span.end - span.start > FULL_PARSER_MAX_DOCUMENT_CHARS) {
      if (!(yield* flushSlow(span.start))) return;
      acc.problems.push(tooBigForFullParser(text, span, file));
    } else {
      slowFrom ??= span;
    }
    clear(out);
  }
  yield* flushSlow(text.length);
}

/**
 * The largest single document handed to the position-tracking parser. It
 * costs about 0.8 s of CPU and 100 MB of memory per MB of YAML, in one piece
 * (no turn for the event loop inside a document), so a 25 MB document outside
 * the fast subset (a truncated JSON dump, a List whose items alias each other)
 * would stall the agent for tens of seconds and could exhaust its memory. No
 * Kubernetes object is near this size (etcd takes at most 1.5 MiB per object),
 * and a List is read item by item: only such a malformed or unusual giant
 * document meets the limit, and it is refused with an error at its first line.
 */
export const FULL_PARSER_MAX_DOCUMENT_CHARS = 2 * 1024 * 1024;

function tooBigForFullParser(text: string, span: DocumentSpan, file: string): Problem {
  const source = text.slice(span.start, span.end);
  let pos: SourcePos = { file, line: span.line, col: 1 };
  let why = 'it is not in the plain form the fast reader takes (block YAML without anchors, aliases, tags and multi-line scalars, or JSON)';
  const first = source.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      JSON.parse(source);
    } catch (e) {
      const message = (e instanceof Error ? e.message : String(e)).split('\n')[0]?.slice(0, 200) ?? '';
      why = `it is not valid JSON (${message.replace(/ in JSON at position \d+.*$/, '')})`;
      const at = / at position (\d+)/.exec(message);
      // V8 names the offset, or says the text ended early (a truncated file: point at its end).
      const offset = at !== null ? Math.min(Number(at[1]), source.length) : /end of JSON input/.test(message) ? source.length : undefined;
      if (offset !== undefined) {
        let line = span.line;
        let lineStart = 0;
        for (let nl = source.indexOf('\n'); nl >= 0 && nl < offset; nl = source.indexOf('\n', nl + 1)) {
          line++;
          lineStart = nl + 1;
        }
        pos = { file, line, col: offset - lineStart + 1 };
      }
    }
  }
  return problem('error', pos,
    `document not loaded: ${source.length} characters long, and ${why}; the position-tracking parser reads at most ` +
      `${FULL_PARSER_MAX_DOCUMENT_CHARS} characters in one document. Split it into several documents (---) or write it as kubectl does`,
    'load/document-too-big');
}

/**
 * The position of an object: a literal with its three fields, not `{ file, ...at }` (a spread leaves
 * `file` in the object and the rest in a separate property array: 80 bytes, not 48, for each of the
 * 100k+ objects a dump keeps).
 */
function sourcePos(file: string, at: Omit<SourcePos, 'file'>): SourcePos {
  return { file, line: at.line, col: at.col };
}

function clear(a: Acc): void {
  // Setting an array's length is a runtime call: only when there is something to drop.
  if (a.policies.length !== 0) a.policies.length = 0;
  if (a.objects.length !== 0) a.objects.length = 0;
  if (a.problems.length !== 0) a.problems.length = 0;
  a.skipped = 0;
}

function commit(from: Acc, to: Acc): void {
  // Loops, not push(...spread): a List may hold 100k+ objects.
  for (const x of from.policies) to.policies.push(x);
  for (const x of from.objects) to.objects.push(x);
  for (const x of from.problems) to.problems.push(x);
  to.skipped += from.skipped;
}

/** The items of a List / <Kind>List and what they inherit, or undefined when `js` is no List. */
function listParts(js: unknown, inherited: Inherited | undefined): { items: unknown[]; inheritedItem: Inherited } | undefined {
  if (!isRecord(js)) return undefined;
  const kind = typeof js['kind'] === 'string' ? js['kind'] : inherited?.kind;
  const items = js['items'];
  if (kind === undefined || !(kind === 'List' || kind.endsWith('List')) || !Array.isArray(items)) return undefined;
  const apiVersion = typeof js['apiVersion'] === 'string' ? js['apiVersion'] : inherited?.apiVersion;
  return { items, inheritedItem: listItemInheritance(kind, apiVersion) };
}

/**
 * loadNode for a decoded value: true when done (objects, policies, skips and
 * problems in `out`), false when the node needs the full parser (a policy in a
 * List or in JSON, a ConfigMap that may embed one, an object with a problem to
 * report, a nested List). A policy document decoded here gets its field
 * positions when first asked for (lazy-positions.ts). Yields between a List's
 * items; a value that is no List is read by fastObject (callers with many
 * documents call that directly: no generator per document).
 */
function* fastNode(js: unknown, pos: SourcePos | undefined, itemPos: readonly (Omit<SourcePos, 'file'> | undefined)[] | undefined,
  file: string, inherited: Inherited | undefined, out: Acc, whole?: WholeDocument, listText?: ListText): Generator<void, boolean, void> {
  const list = listParts(js, inherited);
  if (list === undefined) return fastObject(js, pos, file, inherited, out, whole);
  const { items, inheritedItem } = list;
  if (itemPos === undefined || itemPos.length !== items.length) return false;
  const spans = listText?.spans;
  // Once an item repeats a key, yaml fails the whole document: only the errors of the items that have
  // some are collected from then on (the fast-read items have none), and nothing of the List is loaded.
  let errors: Problem[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const at = itemPos[i];
    const item = items[i];
    if (item !== SLOW_ITEM && (errors !== undefined || (yield* fastNode(item, at === undefined ? undefined : sourcePos(file, at), undefined, file, inheritedItem, out)))) {
      if (i % 256 === 255) yield;
      continue;
    }
    // This item alone through the full parser, not the whole List (one bad pod in a dump of 100k).
    const span = spans?.length === items.length ? spans[i] : undefined;
    const alone = listText === undefined || span === undefined ? false : slowItem(listText, span, file, inheritedItem, out);
    if (alone === false) return false;
    if (alone !== true) for (const e of alone) (errors ??= []).push(e);
    if (i % 256 === 255) yield;
  }
  if (errors !== undefined) {
    clear(out);
    for (const e of errors) out.problems.push(e);
  }
  return true;
}

/** One document read by the full parser from text[span], positions mapped into the file; undefined unless exactly one document, without stream errors. */
function readAlone(text: string, span: ItemSpan, file: string): { doc: Document; source: string; lc: LineCounter; toPos: (offset: number) => SourcePos } | undefined {
  loaderCounts.itemsReadAlone++;
  const source = ownString(text.slice(span.start, span.end));
  const lc = lineCounter(source);
  // The item's first line starts at span.col in the file (a JSON value mid-line); later lines at column 1.
  const toPos = (offset: number): SourcePos => {
    const { line, col } = lc.linePos(offset);
    return line === 1 ? { file, line: span.line, col: col + span.col - 1 } : { file, line: span.line + line - 1, col };
  };
  const composer = new Composer({ merge: true, prettyErrors: true, logLevel: 'error' });
  let doc: Document | undefined;
  for (const d of composer.compose(new Parser().parse(source))) {
    if (doc !== undefined) return undefined;
    doc = d;
  }
  if (doc === undefined || composer.streamInfo().errors.length > 0) return undefined;
  return { doc, source, lc, toPos };
}

/**
 * The errors yaml gives a JSON List whose items repeat keys, from those items
 * alone (each a few lines, not the whole file): true when every one read alone
 * has only DUPLICATE_KEY errors (then the whole document gives exactly these,
 * in this order, and nothing of it is loaded).
 */
function duplicateKeyErrors(text: string, dups: FastJsonDuplicates, file: string, acc: Acc): boolean {
  const problems: Problem[] = [];
  for (const span of dups.duplicateItems) {
    const alone = readAlone(text, span, file);
    if (alone === undefined || alone.doc.errors.length === 0) return false;
    for (const e of alone.doc.errors) {
      if (e.code !== 'DUPLICATE_KEY') return false;
      problems.push(yamlProblem('error', e, alone.toPos));
    }
  }
  for (const p of problems) acc.problems.push(p);
  return true;
}

/** The text a List was decoded from and where its items are in it (entries: YAML `- ` entries, else JSON values). */
interface ListText {
  readonly text: string;
  readonly spans: readonly ItemSpan[] | undefined;
  readonly entries: boolean;
}

/**
 * One List item the fast path declined (a policy, an object with a problem to
 * report, a ConfigMap that may embed policies, a nested List), read by the
 * full parser from its own text: what the full parser gives for it inside the
 * whole document, positions included (the item's text is the same, and the
 * fast decoder accepted the whole document, so no anchor, tag or directive
 * ties it to the rest). Its errors when it only repeats keys (the document
 * then fails as a whole). False when that text does not read cleanly alone
 * (another error, a warning, anything unexpected): then the whole document is
 * read by the full parser.
 */
function slowItem(list: ListText, span: ItemSpan, file: string, inherited: Inherited, out: Acc): boolean | Problem[] {
  const alone = readAlone(list.text, span, file);
  if (alone === undefined) return false;
  const { doc, source, lc, toPos } = alone;
  if (doc.errors.length > 0) {
    // A repeated key is an error of this item's text alone; the whole document gives it too (and fails).
    if (!doc.errors.every((e) => e.code === 'DUPLICATE_KEY')) return false;
    return doc.errors.map((e) => yamlProblem('error', e, toPos));
  }
  if (doc.warnings.length > 0) return false;
  let node: unknown = doc.contents;
  if (list.entries) {
    if (!isSeq(node) || node.items.length !== 1) return false;
    node = node.items[0];
  }
  if (node === null || typeof node !== 'object' || !('range' in node)) return false;
  const local = newAcc();
  try {
    loadNode(node as Node, { file, text: source, lc, doc, toPos, embedded: false }, local, inherited);
  } catch {
    return false;
  }
  commit(local, out);
  return true;
}

/** A whole YAML document: the text it is in and its span (a policy's positions are read from it when asked for). */
interface WholeDocument {
  readonly text: string;
  readonly span: DocumentSpan;
}

/** fastNode for a value that is no List. */
function fastObject(js: unknown, pos: SourcePos | undefined, file: string, inherited: Inherited | undefined, out: Acc,
  whole: WholeDocument | undefined): boolean {
  if (js === null) return true;
  if (!isRecord(js)) {
    out.skipped++;
    return true;
  }
  const kind = typeof js['kind'] === 'string' ? js['kind'] : inherited?.kind;
  const apiVersion = typeof js['apiVersion'] === 'string' ? js['apiVersion'] : inherited?.apiVersion;
  if (kind === undefined) {
    out.skipped++;
    return true;
  }
  if (POLICY_KINDS.has(kind)) {
    if (whole === undefined || pos === undefined) return false;
    if (apiVersion !== POLICY_API_VERSION) {
      out.problems.push(apiVersionProblem(kind, apiVersion, pos));
      out.skipped++;
      return true;
    }
    const { start, end, line } = whole.span;
    // The whole text (a JSON document, which its caller keeps anyway) is shared, a part of it copied.
    const positions = start === 0 && end === whole.text.length
      ? new LazyDocumentPositions(whole.text, file, line, true)
      : new LazyDocumentPositions(whole.text.slice(start, end), file, line);
    out.policies.push(decodePolicy({ kind: kind as PolicyKind, json: withKind(js, kind, apiVersion), pos, positions }));
    return true;
  }
  if (OBJECT_KINDS.has(kind)) {
    if (pos === undefined) return false;
    const decoded = decodeObject(js, kind, apiVersion, pos);
    if (!decoded.ok) return false;
    out.objects.push(decoded.object);
    return true;
  }
  if (kind === 'ConfigMap' && mayEmbedPolicies(js['data'])) return false;
  out.skipped++;
  return true;
}

/** Yields after each document. Parsed lazily, one document at a time (what parseAllDocuments does all at once). */
/**
 * Yaml errors that come from composing a document whose syntax was read
 * correctly: the lexer ended the document where its text ends.
 */
const SEMANTIC_ERRORS: ReadonlySet<string> = new Set([
  'DUPLICATE_KEY', 'BAD_ALIAS', 'ALIAS_PROPS', 'MULTIPLE_ANCHORS', 'MULTIPLE_TAGS', 'TAG_RESOLVE_FAILED', 'NON_STRING_KEY',
  'RESOURCE_EXHAUSTION', 'BAD_DQ_ESCAPE', 'KEY_OVER_1024_CHARS',
]);

/**
 * Returns true when the stream had no syntax error (every yaml error, if any,
 * is in SEMANTIC_ERRORS).
 */
function* loadStream(text: string, file: string, mapLineCol: LineColToPos, embedded: boolean, acc: Acc): Generator<void, boolean, void> {
  if (!embedded) loaderCounts.fullParserRuns++;
  let clean = true;
  const lc = lineCounter(text);
  const parser = new Parser();
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
      for (const e of doc.errors) {
        acc.problems.push(yamlProblem('error', e, toPos));
        if (!SEMANTIC_ERRORS.has(e.code)) clean = false;
      }
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
  if (documents === 0) {
    for (const e of composer.streamInfo().errors) {
      acc.problems.push(yamlProblem('error', e, toPos));
      clean = false;
    }
  }
  return clean;
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
    const inheritedItem = listItemInheritance(kind, apiVersion);
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

/** What the items of a `List` / `<Kind>List` inherit. */
function listItemInheritance(kind: string, apiVersion: string | undefined): Inherited {
  const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
  return {
    ...(itemKind === undefined ? {} : { kind: itemKind }),
    ...(apiVersion === undefined ? {} : { apiVersion }),
  };
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

function apiVersionProblem(kind: string, apiVersion: string | undefined, pos: SourcePos): Problem {
  return problem('warning', pos,
    `skipped: ${kind} with apiVersion ${JSON.stringify(apiVersion ?? '')}; nodewall reads ${POLICY_API_VERSION} only`,
    'load/api-version');
}

function loadPolicy(node: Node, src: Source, acc: Acc, kind: PolicyKind, apiVersion: string | undefined,
  start: number): void {
  const pos = src.toPos(start);
  if (apiVersion !== POLICY_API_VERSION) {
    acc.problems.push(apiVersionProblem(kind, apiVersion, pos));
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
  // A copy of the root: with aliases, toJS may share it (decodeObject builds the result in its argument).
  const json = withKind(node.toJS(src.doc) as Record<string, unknown>, kind, apiVersion);
  const metadata = json['metadata'];
  const name = isRecord(metadata) ? metadata['name'] : undefined;
  templateWarnings(expansions, acc, typeof name === 'string' ? name : undefined);
  const decoded = decodeObject(json, kind, apiVersion, pos);
  if (decoded.ok) {
    acc.objects.push(decoded.object);
    return;
  }
  const at = collectPositions(node, src.toPos).get(decoded.at) ?? pos;
  acc.problems.push(problem('error', at, decoded.message, decoded.code, undefined, decoded.field));
}

type DecodedObject =
  | { readonly ok: true; readonly object: KubeObject }
  | { readonly ok: false; readonly message: string; readonly code: string; readonly field: string; /** Field path to point at. */ readonly at: string };

/**
 * A cluster object as the loader keeps it, or why it is skipped. Builds the
 * object in `js` itself (a fresh value from the decoder, not shared): the same
 * keys in the same order as `{ ...js, kind, apiVersion, metadata, pos }`
 * without copying a 100k-object file several times over.
 */
function decodeObject(js: Record<string, unknown>, kind: string, apiVersion: string | undefined, pos: SourcePos): DecodedObject {
  const metadata = js['metadata'];
  const name = isRecord(metadata) ? metadata['name'] : undefined;
  if (!isRecord(metadata) || typeof name !== 'string' || name === '') {
    return { ok: false, at: 'metadata', field: 'metadata.name', code: 'decode/required',
      message: `${kind} without metadata.name (got ${describeValue(name)}): skipped` };
  }
  const badType = badMetadataField(metadata);
  const { labels, namespace } = metadata;
  const bad = badType ?? metadataProblem(kind, { name, namespace, labels });
  if (bad !== undefined) {
    return { ok: false, at: bad.field, field: bad.field, code: badType === undefined ? 'decode/metadata' : 'decode/type',
      message: `${kind} ${name}: ${bad.message}: skipped` };
  }
  // { ...metadata without labels and namespace, name, namespace?, labels? }, built without two copies;
  // metadata itself when it is that already (namespace and labels last, as dumps write them).
  let meta: Record<string, unknown> = metadata;
  if (!metadataInOrder(metadata)) {
    meta = {};
    for (const k of Object.keys(metadata)) {
      if (k === 'labels' || k === 'namespace') continue;
      if (k === '__proto__') Object.defineProperty(meta, k, { value: metadata[k], writable: true, enumerable: true, configurable: true });
      else meta[k] = metadata[k];
    }
    meta['name'] = name;
    if (typeof namespace === 'string') meta['namespace'] = namespace;
    if (isRecord(labels)) meta['labels'] = labels;
  }
  js['kind'] = kind;
  if (apiVersion !== undefined) js['apiVersion'] = apiVersion;
  js['metadata'] = meta as KubeObject['metadata'];
  js['pos'] = pos;
  return { ok: true, object: js as KubeObject };
}

/**
 * True when `metadata` (its name checked already) has the shape decodeObject
 * gives it: namespace (a string) and labels (a map) are its last keys, in that
 * order, when present, and no null namespace or labels is there to drop.
 */
function metadataInOrder(metadata: Record<string, unknown>): boolean {
  const keys = Object.keys(metadata);
  let i = keys.length;
  if (keys[i - 1] === 'labels') {
    if (!isRecord(metadata['labels'])) return false;
    i--;
  }
  if (keys[i - 1] === 'namespace') {
    if (typeof metadata['namespace'] !== 'string') return false;
    i--;
  }
  for (let j = 0; j < i; j++) if (keys[j] === 'labels' || keys[j] === 'namespace' || keys[j] === '__proto__') return false;
  return true;
}

/** metadata.namespace must be a string and labels a map of strings (null = absent), as the API server requires. */
function badMetadataField(metadata: Record<string, unknown>): { field: string; message: string } | undefined {
  const { namespace, labels } = metadata;
  if (namespace !== undefined && namespace !== null && typeof namespace !== 'string') {
    return { field: 'metadata.namespace', message: `metadata.namespace must be a string, got ${describeValue(namespace)}` };
  }
  if (labels === undefined || labels === null) return undefined;
  if (!isRecord(labels)) return { field: 'metadata.labels', message: `metadata.labels must be a map, got ${describeValue(labels)}` };
  for (const k of Object.keys(labels)) {
    const v = labels[k];
    if (typeof v !== 'string') {
      return { field: childPath('metadata.labels', k), message: `label ${k} must be a string (quote it), got ${describeValue(v)}` };
    }
  }
  return undefined;
}

/** True when a ConfigMap's `data` holds a string that looks like a policy manifest (what loadEmbedded reads). */
function mayEmbedPolicies(data: unknown): boolean {
  if (!isRecord(data)) return false;
  for (const v of Object.values(data)) if (typeof v === 'string' && EMBEDDED_KIND.test(v)) return true;
  return false;
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
