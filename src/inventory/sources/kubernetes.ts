// Kubernetes API source: lists then watches the CCNPs and the cluster state the
// inventory needs, and hands out whole snapshots in the same shape as the file
// source (KubeObjects + decoded PolicyDocuments), so everything downstream is
// unchanged.
//
// The API work is our own, on node:https (issue 9: the client library's typed
// list conversion and its caches cost ~2 s and ~250 MB at 100k pods):
// kube-connection.ts (in-cluster, kubeconfig; the client library only for exec
// plugins, auth providers, proxies and other rare kubeconfig settings),
// kube-http.ts (list pages parsed with JSON.parse, watch streams of JSON lines,
// both bounded), kube-list-watch.ts (the list-then-watch loop with
// resourceVersion resume, bookmark resourceVersions, relist on 410 Gone, and the
// store of slim objects). This module adds: slim objects as each page or event
// arrives, bookmarks requested, chunked lists, backoff with jitter after errors,
// the watchdog for silent watches, "synced" only once every kind has been
// listed, optional CRDs, pods only while needed, coalescing of changes
// (coalesce.ts: an isolated change goes out at once, a burst at most once per
// `debounceMs`), and the disk cache.
//
// List pages: `limit` 500 by default (pageSize). Not resourceVersion=0 (served
// from the API server's watch cache): such a list ignores `limit` and returns
// every pod in one response, an unbounded buffer at 100k pods.

import { createHash } from 'node:crypto';
import { loadManifestText, type LoadResult } from '../../api/load-manifests.js';
import type { Problem } from '../../api/problem.js';
import type { KubeObject, PolicyDocument } from '../../api/types.js';
import { backoffDelay, defaultBackoff, type BackoffOptions } from './backoff.js';
import { loadCache, removeSelection, writeCache, writeSelection } from './cache.js';
import { coalesce, type CoalesceTimers, type Coalescer } from './coalesce.js';
import type { LabelFilter, Labels } from '../types.js';
import { kindSpecs, policyNeedsPods, stripObject, type KindId, type KindSpec } from './kube-kinds.js';
import { ObjectChangeLog, type ObjectChanges, type ObjectFeed } from '../object-feed.js';
import { selectedPoliciesNeedPods } from './pod-need.js';
import { openConnection, type Connection } from './kube-connection.js';
import { KubeHttp, type KubeHttpLimits } from './kube-http.js';
import { KindListWatch, type ListResult, type WatchHandler } from './kube-list-watch.js';
import { EndpointRecord, KubeRecord, objectName, objectNamespace, PodRecord, sameEndpointContent, samePodContent } from './pod-record.js';

export interface SourceLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface KubernetesSourceOptions {
  /** Kubeconfig file. Neither this nor inCluster: the client library's default lookup ($KUBECONFIG, ~/.kube/config, in-cluster). */
  readonly kubeconfig?: string;
  /** ServiceAccount token and CA from /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT. */
  readonly inCluster?: boolean;
  readonly context?: string;
  /** Directory of k8s-cache.json; no cache without it. */
  readonly stateDir?: string;
  /**
   * Watch pod addresses: always, never, or 'auto' (default): while a CCNP has an endpoint
   * selector peer or the cluster entity, in a host rule selecting `node` when that is given
   * (else in any CCNP).
   */
  readonly needPods?: boolean | 'auto';
  /** This node, for 'auto' pod watching: its Node object's labels, layered under `labels` (config nodeLabels). */
  readonly node?: { readonly name: string; readonly labels?: Labels; readonly labelFilter?: LabelFilter };
  /**
   * Coalescing window (default 200 ms): an isolated change is handed to onChange at once;
   * changes arriving within this window after a hand-off go out together when it ends.
   */
  readonly debounceMs?: number;
  /** Timers of the coalescing (tests: a fake clock); default the real ones. */
  readonly coalesceTimers?: CoalesceTimers;
  /** List page size (`limit`, default 500). */
  readonly pageSize?: number;
  readonly backoff?: BackoffOptions;
  /** Server-side watch timeout; default a random 300..600 s per watch, like client-go. */
  readonly watchTimeoutSeconds?: number;
  /**
   * A watch still open this long after its server-side timeout is presumed dead
   * (peer gone without a reset) and is dropped and reopened (default 30 s).
   */
  readonly watchGraceMs?: number;
  /** A list page taking longer than this fails the list, which is retried (default 60 s). */
  readonly listPageTimeoutMs?: number;
  /** How often an absent CRD is looked for again (default 5 min). */
  readonly absentRecheckMs?: number;
  /** Minimum time between two cache writes (default 30 s); the first sync is written at once. */
  readonly cacheIntervalMs?: number;
  /** Bounds of one list page and one watch line (kube-http.ts; defaults 256 MiB and 16 Mi characters). */
  readonly limits?: KubeHttpLimits;
  /** Environment and ServiceAccount directory for in-cluster and the default lookup (tests); default the process's. */
  readonly env?: NodeJS.ProcessEnv;
  readonly serviceAccountDir?: string;
  readonly logger?: SourceLogger;
  /** Called on every API error a watched kind gets (after logging; it is retried anyway). */
  readonly onApiError?: (error: { readonly kind: string; readonly status: number | undefined; readonly message: string }) => void;
}

/** One CCNP as the policy loader read it: like a manifest file named `k8s:ccnp/NAME`. */
export interface PolicyFile {
  readonly file: string;
  /** The JSON text decoded (the slim object, pretty-printed). */
  readonly text: string;
  /** sha256 of `text` (of the file name and resourceVersion when the object could not be encoded). */
  readonly hash: string;
  readonly load: LoadResult;
}

/** One page of a list: its items raw (not yet slimmed). */
interface ListPage {
  readonly items: readonly unknown[];
  readonly resourceVersion: string | undefined;
  readonly continue: string | undefined;
}

export interface KubernetesSnapshot {
  readonly objects: KubeObject[];
  readonly policies: PolicyDocument[];
  readonly problems: Problem[];
  /** 'cache': the last state read from the API, loaded from disk at start (stale); 'api': live. */
  readonly origin: 'api' | 'cache';
  /** Increases with every snapshot of this source: a cheap change marker for the whole snapshot. */
  readonly revision: number;
  /** The CCNPs one by one (same content as `policies`/`problems`), for per-policy last-good handling. */
  readonly policyFiles: PolicyFile[];
  /** What changed in `objects` since earlier snapshots of this source (object-feed.ts); absent: not known. */
  readonly objectFeed?: ObjectFeed;
}

/**
 * Takes each snapshot. May return a promise that settles when the snapshot has been dealt with (the
 * agent: its pass, i.e. enforced): the source defers its first full cache write until then. Any
 * other return value: dealt with at once.
 */
export type SnapshotConsumer = (snapshot: KubernetesSnapshot) => unknown;

export interface KubernetesSourceStatus {
  /** Every running watch is established. */
  readonly connected: boolean;
  readonly lastError?: string;
  /** When `connected` last changed (ISO 8601). */
  readonly since: string;
  /** Last resourceVersion seen per kind (lists, events and bookmarks). */
  readonly resourceVersions: Record<string, string>;
  readonly synced: boolean;
  /** The last snapshot handed out came from the disk cache, not from the API. */
  readonly stale: boolean;
  /** When the cached state had been read from the API, if a cache was loaded. */
  readonly cacheSyncedAt?: string;
  /** Which kind gives pod addresses, or false while pods are not watched. */
  readonly pods: 'CiliumEndpoint' | 'Pod' | 'probing' | false;
  /** Optional CRDs the API does not serve. */
  readonly absent: string[];
}

export class KubernetesSourceError extends Error {
  override readonly name = 'KubernetesSourceError';
}

interface Runner {
  readonly spec: KindSpec;
  lw: KindListWatch;
  /** Its first list has been applied to the store. */
  listed: boolean;
  /** A list finished and its items are being applied (ListWatch opens the watch right after). */
  listApplied: boolean;
  absent: boolean;
  connected: boolean;
  /** Consecutive failures, for the backoff. */
  attempts: number;
  retryTimer: NodeJS.Timeout | undefined;
  stopped: boolean;
  /** The event being handled changes nothing the inventory reads (a status heartbeat). */
  quiet: boolean;
  /** The store's objects, one array per namespace, kept until a store callback touches that namespace. */
  nsLists: Map<string, readonly KubeObject[]>;
}

const noopLogger: SourceLogger = { debug() {}, info() {}, warn() {}, error() {} };
const baseKinds: readonly KindId[] = ['ccnp', 'node', 'namespace', 'apiserver-endpointslice', 'ciliumnode'];
/** CCNPs decoded per step of the background decoding (a step is some 10-20 ms). */
const predecodeChunk = 20;
/** A watch that lived at least this long, or delivered an event, counts as healthy. */
const healthyWatchMs = 5_000;

export function errorStatusCode(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function describeError(err: unknown): string {
  const code = errorStatusCode(err);
  if (code !== undefined) {
    const body = (err as { body?: unknown }).body;
    let detail: string | undefined;
    if (typeof body === 'string') {
      try {
        const m = (JSON.parse(body) as { message?: unknown }).message;
        detail = typeof m === 'string' ? m : undefined;
      } catch {
        detail = undefined;
      }
    } else if (body !== null && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
      detail = (body as { message: string }).message;
    }
    detail ??= err instanceof Error ? err.message.split('\n')[0] : undefined;
    return `HTTP ${code}${detail === undefined || detail === '' ? '' : `: ${detail}`}`;
  }
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

/**
 * A runner's objects as its store's list() gives them (namespace by namespace, in the store's order), but
 * from arrays kept per namespace: an event rebuilds only its namespace's array.
 */
function runnerLists(r: Runner): (readonly KubeObject[])[] {
  const out: (readonly KubeObject[])[] = [];
  for (const [ns, objects] of r.lw.objects) {
    let list = r.nsLists.get(ns);
    if (list === undefined) {
      // The store's own array (NameStore.list): no copy per namespace; the store copies before it changes.
      list = objects.list();
      r.nsLists.set(ns, list);
    }
    out.push(list);
  }
  return out;
}

/** The arrays' elements one after the other (what joinParts would hold), without the joined array. */
export function* eachOf<T>(parts: readonly (readonly T[])[]): Generator<T> {
  for (const part of parts) yield* part;
}

/** The arrays one after the other, in one new array. */
export function joinParts(parts: readonly (readonly KubeObject[])[]): KubeObject[] {
  // concat copies arrays wholesale (a memcpy at 100k pods); in slices so that the argument count stays small.
  let objects: KubeObject[] = [];
  for (let i = 0; i < parts.length; i += 1024) objects = objects.concat(...parts.slice(i, i + 1024));
  return objects;
}

/**
 * Equal apart from metadata.resourceVersion (slim objects are built in a fixed key order). A CCNP
 * spec nested too deeply for JSON.stringify (the API accepts it; the decoder reports it) counts as
 * changed: the event is then handled in full instead of failing, and failing again on every retry.
 */
export function sameContent(a: KubeObject | undefined, b: KubeObject): boolean {
  if (a === undefined) return false;
  // Two pod records (every regular pod): their fields, without building their slim objects.
  if (a instanceof PodRecord && b instanceof PodRecord) return samePodContent(a, b);
  if (a instanceof EndpointRecord && b instanceof EndpointRecord) return sameEndpointContent(a, b);
  const withoutRv = (x: KubeObject): string => {
    // A record's slim object is its toJSON() (a spread would copy its fields, not that object).
    const o = x instanceof KubeRecord ? (x.toJSON() as unknown as KubeObject) : x;
    return JSON.stringify({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
  };
  try {
    return withoutRv(a) === withoutRv(b);
  } catch {
    return false;
  }
}

export class KubernetesSource {
  private readonly opts: KubernetesSourceOptions;
  private needPods: boolean | 'auto';
  private readonly log: SourceLogger;
  private onChange: SnapshotConsumer | undefined;
  private http: KubeHttp | undefined;
  /** The API server URL of the current kubeconfig cluster, once loaded (rollout probe `kube-apiserver`). */
  server: string | undefined;
  private readonly runners = new Map<KindId, Runner>();
  private podRunner: Runner | undefined;
  private podsWanted = false;
  private podsProbing = false;
  private needsFromPolicies = false;
  private needsDirty = true;
  private readonly decoded = new Map<string, { rv: string; file: PolicyFile }>();
  private revision = 0;
  private readonly coalescer: Coalescer;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private started = false;
  /** The next step of schedulePredecode(). */
  private predecode: NodeJS.Immediate | undefined;
  private connectedNow = false;
  private sinceAt: string = new Date().toISOString();
  private lastError: string | undefined;
  private stale = false;
  private cacheSyncedAt: string | undefined;
  private lastSnapshot: KubernetesSnapshot | undefined;
  /** Steps of the object list from snapshot to snapshot (object-feed.ts). */
  private readonly changeLog = new ObjectChangeLog();
  /** Objects changed by watch events since the last snapshot: what each key held at that snapshot. */
  private readonly pendingBefore = new Map<string, { readonly r: Runner; readonly name: string; readonly namespace: string | undefined; readonly before: KubeObject | undefined }>();
  /** The object list changed in a way the watch events do not show (a list applied, a kind stopped). */
  private objectsUnknown = false;
  /** The CCNPs decoded as of the last snapshot, reused while no CCNP changed. */
  private decodedAll: { policies: PolicyDocument[]; problems: Problem[]; policyFiles: PolicyFile[] } | undefined;
  /** selectionKey memo: its inputs (by identity) and the key. */
  private selectionMemo: { files: readonly PolicyFile[]; node: unknown; key: string } | undefined;
  private cacheWrittenAt = 0;
  /** When a big cache write last failed: the next attempt waits a cache interval from then (a full disk is no busy loop). */
  private cacheFailedAt = 0;
  private cacheWrite: Promise<void> | undefined;
  private cacheDirty = false;
  private cacheTimer: NodeJS.Timeout | undefined;
  /**
   * Settles once the first snapshot from the API has been handed out and its consumer is done with it
   * (the agent: enforced). The first big cache write waits for it (see scheduleCacheWrite).
   */
  private readonly firstConsumed: Promise<void>;
  private markFirstConsumed: () => void = () => undefined;
  private firstApiDelivered = false;
  /** selectionKey of the last snapshot whose cache write was forced. */
  private cacheSelectionKey: string | undefined;
  /** Snapshots that wait for their cache write are delivered in order. */
  private orderedDelivery: Promise<void> = Promise.resolve();
  /** Snapshots queued on orderedDelivery. */
  private ordered = 0;

  constructor(opts: KubernetesSourceOptions = {}) {
    this.opts = opts;
    this.needPods = opts.needPods ?? 'auto';
    this.log = opts.logger ?? noopLogger;
    this.coalescer = coalesce(() => this.flush(), opts.debounceMs ?? 200, opts.coalesceTimers);
    this.firstConsumed = new Promise((resolve) => {
      this.markFirstConsumed = resolve;
    });
  }

  /**
   * Hands out the cached state at once (if there is one), then starts listing and
   * watching; `onChange` gets a full snapshot after every coalesced batch of
   * changes, and never before every watched kind has been listed.
   */
  async start(onChange: SnapshotConsumer): Promise<void> {
    if (this.started) throw new KubernetesSourceError('KubernetesSource already started');
    this.started = true;
    this.onChange = onChange;
    await this.emitCache();
    let conn: Connection;
    try {
      conn = await openConnection({
        ...(this.opts.kubeconfig === undefined ? {} : { kubeconfig: this.opts.kubeconfig }),
        ...(this.opts.inCluster === undefined ? {} : { inCluster: this.opts.inCluster }),
        ...(this.opts.context === undefined ? {} : { context: this.opts.context }),
        ...(this.opts.env === undefined ? {} : { env: this.opts.env }),
        ...(this.opts.serviceAccountDir === undefined ? {} : { serviceAccountDir: this.opts.serviceAccountDir }),
      });
    } catch (err) {
      const where = this.opts.inCluster === true ? 'in-cluster credentials' : (this.opts.kubeconfig ?? 'the default kubeconfig');
      throw new KubernetesSourceError(`cannot load ${where}: ${describeError(err)}`, { cause: err });
    }
    this.http = new KubeHttp(conn, this.opts.limits);
    this.server = conn.server;
    if (this.stopped) return;
    for (const id of baseKinds) {
      const r = this.makeRunner(id);
      this.runners.set(id, r);
      void r.lw.start();
    }
    this.log.info({ server: conn.server, credentials: conn.source, client: conn.via }, 'kubernetes source: listing');
    this.updatePodWatch();
  }

  /** True once every watched kind (pods included when needed) has completed its first list. */
  synced(): boolean {
    if (this.runners.size === 0) return false;
    for (const r of this.runners.values()) if (!r.listed) return false;
    if (this.wantPods()) return this.podRunner?.listed === true;
    return true;
  }

  /** Switch pod watching on or off at run time (the agent knows which policies select this node). */
  setNeedPods(need: boolean | 'auto'): void {
    this.needPods = need;
    this.updatePodWatch();
    this.scheduleFlush();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.coalescer.cancel();
    if (this.predecode !== undefined) clearImmediate(this.predecode);
    if (this.cacheTimer !== undefined) clearTimeout(this.cacheTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const all = [...this.runners.values(), ...(this.podRunner === undefined ? [] : [this.podRunner])];
    await Promise.all(all.map((r) => this.stopRunner(r)));
    if (this.cacheWrite !== undefined) await this.cacheWrite;
    if (this.cacheDirty) await this.writeCacheNow();
  }

  status(): KubernetesSourceStatus {
    const resourceVersions: Record<string, string> = {};
    const absent: string[] = [];
    for (const r of this.allRunners()) {
      resourceVersions[r.spec.kind] = r.lw.latestResourceVersion();
      if (r.absent) absent.push(r.spec.kind);
    }
    const pods = !this.podsWanted ? false : this.podsProbing ? 'probing' : this.podRunner?.spec.kind === 'CiliumEndpoint' ? 'CiliumEndpoint' : 'Pod';
    return {
      connected: this.connectedNow,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      since: this.sinceAt,
      resourceVersions,
      synced: this.synced(),
      stale: this.stale,
      ...(this.cacheSyncedAt === undefined ? {} : { cacheSyncedAt: this.cacheSyncedAt }),
      pods,
      absent,
    };
  }

  /** The last snapshot handed to onChange (from the API or the cache). */
  snapshot(): KubernetesSnapshot | undefined {
    return this.lastSnapshot;
  }

  // ---- runners ----

  private allRunners(): Runner[] {
    const out = [...this.runners.values()];
    if (this.podRunner !== undefined) out.push(this.podRunner);
    return out;
  }

  private makeRunner(id: KindId): Runner {
    if (this.http === undefined) throw new KubernetesSourceError('not started');
    const spec = kindSpecs[id];
    const r = { spec, listed: false, listApplied: false, absent: false, connected: false, attempts: 0, retryTimer: undefined, stopped: false, quiet: false, nsLists: new Map() } as Omit<Runner, 'lw'> as Runner;
    // The watch strips objects and adds bookmarks, timeouts, the watchdog and backoff.
    r.lw = new KindListWatch((query, cb, done) => this.openWatch(r, spec.path, query, cb, done), () => this.listAll(r), spec.labelSelector);
    // Every store change: that namespace's array is made anew; a change not made by a watch event (a list
    // applied) cannot be followed by the object feed.
    const touched = (obj: KubeObject): void => {
      r.nsLists.delete(objectNamespace(obj) ?? '');
      if (r.listApplied && r.spec.id !== 'ccnp') this.objectsUnknown = true;
      if (r.spec.id === 'ccnp') {
        this.decodedAll = undefined;
        this.schedulePredecode();
      }
    };
    const changed = (obj: KubeObject): void => {
      touched(obj);
      this.changed(r);
    };
    r.lw.on('add', changed);
    r.lw.on('update', (obj: KubeObject) => {
      touched(obj);
      if (!r.quiet) this.changed(r);
    });
    r.lw.on('delete', changed);
    r.lw.on('error', (err: unknown) => this.failed(r, err));
    return r;
  }

  private async stopRunner(r: Runner): Promise<void> {
    r.stopped = true;
    if (r.retryTimer !== undefined) clearTimeout(r.retryTimer);
    r.retryTimer = undefined;
    r.connected = false;
    await r.lw.stop();
  }

  /** One full list, page by page (one consistent resourceVersion), each page slimmed as it arrives. */
  private async listAll(r: Runner): Promise<ListResult> {
    const items: KubeObject[] = [];
    const limit = this.opts.pageSize ?? 500;
    let cont: string | undefined;
    let rv = '';
    let next: Promise<ListPage> | undefined = this.listPage(r.spec, undefined, limit);
    try {
      while (next !== undefined) {
        const page: ListPage = await next;
        next = undefined;
        // A server that hands back the token it was given would page forever.
        if (page.continue !== undefined && page.continue === cont) throw new KubernetesSourceError(`list of ${r.spec.kind}: the server repeated its continue token`);
        cont = page.continue;
        // The next page is asked for before this one is slimmed: the server prepares it meanwhile
        // (one request in flight at a time, as before; only earlier). Its failure is seen at its await;
        // if slimming throws first, it is dropped.
        if (cont !== undefined && !r.stopped) {
          next = this.listPage(r.spec, cont, limit);
          next.catch(() => undefined);
        }
        for (const o of page.items) items.push(stripObject(r.spec.id, o));
        rv = page.resourceVersion ?? rv;
      }
    } catch (err) {
      if (r.spec.optional && errorStatusCode(err) === 404) {
        if (!r.absent) this.log.info({ kind: r.spec.kind }, 'kubernetes source: CRD not installed; treated as empty');
        r.absent = true;
        r.listApplied = true;
        return { items: [], resourceVersion: '' };
      }
      throw err;
    }
    if (r.absent) this.log.info({ kind: r.spec.kind }, 'kubernetes source: CRD now served');
    r.absent = false;
    r.listApplied = true;
    this.log.debug({ kind: r.spec.kind, items: items.length, resourceVersion: rv }, 'kubernetes source: listed');
    return { items, resourceVersion: rv };
  }

  /**
   * One list page: the raw JSON, its items not yet slimmed. Aborted (an error, the list is retried)
   * when it takes longer than listPageTimeoutMs.
   */
  private async listPage(spec: KindSpec, cont: string | undefined, limit: number): Promise<ListPage> {
    const client = this.http;
    if (client === undefined) throw new KubernetesSourceError('not started');
    const ms = this.opts.listPageTimeoutMs ?? 60_000;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    let body: unknown;
    try {
      body = await client.getJson(spec.path, { limit, labelSelector: spec.labelSelector, continue: cont }, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) throw new KubernetesSourceError(`list of ${spec.kind} took longer than ${ms} ms`, { cause: err });
      throw err;
    } finally {
      clearTimeout(timer);
    }
    const list = body as { items?: unknown; metadata?: { resourceVersion?: unknown; continue?: unknown } } | null;
    if (list === null || typeof list !== 'object' || !Array.isArray(list.items)) throw new KubernetesSourceError(`list of ${spec.kind}: the answer is not a list (no items)`);
    const md = list.metadata ?? {};
    const rv = typeof md.resourceVersion === 'string' ? md.resourceVersion : undefined;
    const next = typeof md.continue === 'string' && md.continue !== '' ? md.continue : undefined;
    return { items: list.items as unknown[], resourceVersion: rv, continue: next };
  }

  private async openWatch(
    r: Runner,
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    cb: WatchHandler,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const idle = new AbortController();
    if (r.stopped) return idle;
    if (r.listApplied) {
      // ListWatch calls watch() right after it applied a list to its store.
      r.listApplied = false;
      if (!r.listed) {
        this.log.debug({ kind: r.spec.kind }, 'kubernetes source: first list applied');
        r.listed = true;
        // The first list completes the sync even when it is empty (no add callbacks).
        this.changed(r);
      }
      // A relist (410, an absent CRD looked for again every absentRecheckMs) reports what it
      // changed through the store's add/update/delete callbacks; an identical relist is no
      // change (at 100k pods, a snapshot costs a whole pass).
    }
    if (r.absent) {
      // Nothing to watch; look for the CRD again later (done(null) makes ListWatch relist).
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (!idle.signal.aborted && !r.stopped) done(null);
      }, this.opts.absentRecheckMs ?? 300_000);
      this.timers.add(t);
      idle.signal.addEventListener('abort', () => clearTimeout(t));
      this.setConnected(r, true);
      return idle;
    }
    const client = this.http;
    if (client === undefined) return idle;
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
    const startedAt = Date.now();
    let events = 0;
    let finished = false;
    const controller = await client.watch(
      path,
      { ...query, allowWatchBookmarks: true, timeoutSeconds },
      (phase, obj) => {
        events++;
        if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') {
          // Logged before the store changes: every snapshot of a later revision contains this event
          // (the kernel e2e test waits on it to know which pass enforces which API write).
          this.log.debug({ kind: r.spec.kind, phase, resourceVersion: (obj as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion ?? null, revision: this.revision }, 'kubernetes source: event');
          const slim = stripObject(r.spec.id, obj);
          const before = r.lw.get(objectName(slim), objectNamespace(slim)) as unknown as KubeObject | undefined;
          this.noteBefore(r, slim, before);
          // Most MODIFIED events at scale are status heartbeats: same slim object, new resourceVersion.
          r.quiet = phase === 'MODIFIED' && sameContent(before, slim);
          try {
            cb(phase, slim);
          } finally {
            r.quiet = false;
          }
          return;
        }
        if (phase === 'ERROR') {
          const code = errorStatusCode(obj);
          if (code === 410) this.log.info({ kind: r.spec.kind }, 'kubernetes source: resourceVersion expired (410 Gone), relisting');
          else this.log.warn({ kind: r.spec.kind, status: obj }, 'kubernetes source: watch error event');
        }
        cb(phase, obj);
      },
      (err: unknown) => {
        finished = true;
        this.setConnected(r, false);
        if (r.stopped) return;
        const healthy = events > 0 || Date.now() - startedAt >= healthyWatchMs;
        if (healthy) r.attempts = 0;
        if (err === null || err === undefined) {
          if (healthy) {
            done(null);
            return;
          }
          // A watch the server ends at once, again and again, must not become a busy loop.
          r.attempts++;
          this.later(r, backoffDelay(r.attempts, this.opts.backoff ?? defaultBackoff), () => done(null));
          return;
        }
        if (errorStatusCode(err) === 410) this.log.info({ kind: r.spec.kind }, 'kubernetes source: resourceVersion expired (410 Gone), relisting');
        done(err);
      },
    );
    if (r.stopped) {
      // Stopped while the watch was connecting: ListWatch.stop() had nothing to abort yet.
      controller.abort();
      return controller;
    }
    if (!finished) {
      this.setConnected(r, true);
      // The server ends every watch at timeoutSeconds; one still open well after that is a dead peer.
      const deadline = timeoutSeconds * 1000 + (this.opts.watchGraceMs ?? 30_000);
      const watchdog = setTimeout(() => {
        this.timers.delete(watchdog);
        if (finished || r.stopped) return;
        this.log.warn({ kind: r.spec.kind, afterMs: deadline }, 'kubernetes source: watch silent past its timeout; reconnecting');
        controller.abort();
      }, deadline);
      this.timers.add(watchdog);
      controller.signal.addEventListener('abort', () => {
        clearTimeout(watchdog);
        this.timers.delete(watchdog);
      });
    }
    return controller;
  }

  private later(r: Runner, ms: number, fn: () => void): void {
    if (r.retryTimer !== undefined) clearTimeout(r.retryTimer);
    r.retryTimer = setTimeout(() => {
      r.retryTimer = undefined;
      if (!r.stopped && !this.stopped) fn();
    }, ms);
  }

  /** ListWatch gave up (list failed, or the watch failed other than by 410): retry after a backoff. */
  private failed(r: Runner, err: unknown): void {
    if (r.stopped || this.stopped) return;
    this.setConnected(r, false);
    r.attempts++;
    const delay = backoffDelay(r.attempts, this.opts.backoff ?? defaultBackoff);
    this.lastError = `${r.spec.kind}: ${describeError(err)}`;
    this.log.warn({ kind: r.spec.kind, err: describeError(err), attempt: r.attempts, retryInMs: delay }, 'kubernetes source: API error; keeping the last state, retrying');
    this.later(r, delay, () => void r.lw.start());
    this.opts.onApiError?.({ kind: r.spec.kind, status: errorStatusCode(err), message: this.lastError });
  }

  private setConnected(r: Runner, up: boolean): void {
    r.connected = up;
    const all = this.allRunners().filter((x) => !x.stopped);
    const now = all.length > 0 && all.every((x) => x.connected);
    if (now !== this.connectedNow) {
      this.connectedNow = now;
      this.sinceAt = new Date().toISOString();
      if (this.stopped) return;
      if (now) this.log.info({}, 'kubernetes source: connected, all watches established');
      else this.log.warn({ kind: r.spec.kind }, 'kubernetes source: disconnected');
    }
  }

  // ---- pods ----

  private wantPods(): boolean {
    const need = this.needPods;
    if (need !== 'auto') return need;
    if (this.needsDirty) {
      this.needsFromPolicies = this.policiesNeedPods();
      this.needsDirty = false;
    }
    return this.needsFromPolicies;
  }

  private policiesNeedPods(): boolean {
    const ccnp = this.runners.get('ccnp');
    if (ccnp === undefined) return false;
    // Cheap test on the raw objects first; only candidates are decoded.
    const candidates = (ccnp.lw.list() as unknown as readonly KubeObject[]).filter(policyNeedsPods);
    const node = this.opts.node;
    if (node === undefined || candidates.length === 0) return candidates.length > 0;
    const nodeObj = this.runners.get('node')?.lw.get(node.name) as unknown as KubeObject | undefined;
    const labels: Labels = { ...nodeObj?.metadata.labels, ...node.labels };
    // One candidate at a time: the first that needs pods ends the search (the pod list starts sooner).
    for (const raw of candidates) if (selectedPoliciesNeedPods(this.decode(raw).load.policies, labels, node.labelFilter ?? 'cilium')) return true;
    return false;
  }

  /**
   * Decodes the listed CCNPs a few at a time, between I/O (into the `decoded` memo), so that while the
   * pod list pages in, the first snapshot's decoding gets done. Same decode, same memo: only earlier.
   */
  private schedulePredecode(): void {
    if (this.predecode !== undefined || this.stopped) return;
    this.predecode = setImmediate(() => {
      this.predecode = undefined;
      if (this.stopped) return;
      const raws = this.runners.get('ccnp')?.lw.list() ?? [];
      let done = 0;
      for (const raw of raws) {
        const rv = raw.metadata['resourceVersion'];
        if (this.decoded.get(raw.metadata.name)?.rv === rv) continue;
        this.decode(raw);
        if (++done >= predecodeChunk) {
          this.schedulePredecode();
          return;
        }
      }
    });
  }

  private updatePodWatch(): void {
    if (this.stopped || this.http === undefined) return;
    // In auto mode the policies (and this node's labels) decide, so wait until they have been listed.
    const inputsListed = this.runners.get('ccnp')?.listed === true && (this.opts.node === undefined || this.runners.get('node')?.listed === true);
    const want = this.needPods === 'auto' && !inputsListed ? this.podsWanted : this.wantPods();
    if (want && !this.podsWanted) {
      this.podsWanted = true;
      this.log.info({}, 'kubernetes source: a policy needs pod addresses; watching pods');
      void this.startPodRunner();
    } else if (!want && this.podsWanted) {
      this.podsWanted = false;
      this.log.info({}, 'kubernetes source: no policy needs pod addresses; pod watch stopped');
      const r = this.podRunner;
      this.podRunner = undefined;
      if (r !== undefined) void this.stopRunner(r);
      // Its objects leave the list without a watch event.
      this.objectsUnknown = true;
      this.scheduleFlush();
    }
  }

  /** CiliumEndpoint where its CRD is served (Cilium runs), else Pod. */
  private async startPodRunner(): Promise<void> {
    if (this.http === undefined || this.podsProbing || this.podRunner !== undefined) return;
    this.podsProbing = true;
    let kind: KindId | undefined;
    for (let attempt = 1; kind === undefined; attempt++) {
      if (this.stopped || !this.podsWanted) break;
      try {
        await this.listPage(kindSpecs.ciliumendpoint, undefined, 1);
        kind = 'ciliumendpoint';
      } catch (err) {
        if (errorStatusCode(err) === 404) {
          kind = 'pod';
        } else {
          this.lastError = `CiliumEndpoint: ${describeError(err)}`;
          await new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              this.timers.delete(t);
              resolve();
            }, backoffDelay(attempt, this.opts.backoff ?? defaultBackoff));
            this.timers.add(t);
          });
        }
      }
    }
    this.podsProbing = false;
    if (kind === undefined || this.stopped || !this.podsWanted) return;
    const r = this.makeRunner(kind);
    this.podRunner = r;
    this.log.info({ kind: r.spec.kind }, 'kubernetes source: pod addresses from this kind');
    void r.lw.start();
  }

  // ---- snapshots ----

  private changed(r: Runner): void {
    if (r.spec.id === 'ccnp' || (r.spec.id === 'node' && this.opts.node !== undefined)) this.needsDirty = true;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.stopped) return;
    this.coalescer.notify();
  }

  /** Hands out a snapshot; false when there is none to hand out yet (not every kind listed). */
  private flush(): boolean {
    if (this.stopped) return false;
    this.updatePodWatch();
    if (!this.synced()) return false;
    const snap = this.buildSnapshot();
    this.stale = false;
    this.cacheDirty = true;
    const key = this.selectionKey(snap);
    const forced = this.opts.stateDir !== undefined && key !== this.cacheSelectionKey;
    if (!forced && this.ordered === 0) {
      // Only pod and address churn: the cache write is rate-limited.
      this.deliver(snap);
      this.scheduleCacheWrite();
      return true;
    }
    // Policies or this node's labels changed: on disk before anyone enforces it, so that a
    // crash right after the apply cannot bring back a deleted policy from an older cache.
    // Only the selection file (cache.ts): the pods follow on the cache's rate limit.
    // Later snapshots queue behind it (they contain the change too).
    this.cacheSelectionKey = key;
    this.ordered++;
    this.orderedDelivery = this.orderedDelivery
      .then(() => (forced ? this.writeSelectionNow() : undefined))
      .then(() => this.scheduleCacheWrite())
      .then(() => {
        this.ordered--;
        if (!this.stopped) this.deliver(snap);
      });
    return true;
  }

  /** What decides this node's policies: the CCNPs as decoded, and this node's Node labels. */
  private selectionKey(snap: KubernetesSnapshot): string {
    const name = this.opts.node?.name;
    const nodeObj = name === undefined ? undefined : this.runners.get('node')?.lw.get(name) as unknown as KubeObject | undefined;
    // Same CCNP files and the same Node object (by identity) as last time: the same key, not hashed again.
    const memo = this.selectionMemo;
    if (memo !== undefined && memo.files === snap.policyFiles && memo.node === nodeObj) return memo.key;
    const key = createHash('sha256').update(JSON.stringify([snap.policyFiles.map((f) => f.hash), nodeObj?.metadata.labels ?? null])).digest('hex');
    this.selectionMemo = { files: snap.policyFiles, node: nodeObj, key };
    return key;
  }

  /** Write the selection file (the CCNPs and this node's Node as they are now); a failure is logged, not thrown. */
  private async writeSelectionNow(): Promise<void> {
    const dir = this.opts.stateDir;
    if (dir === undefined) return;
    const name = this.opts.node?.name ?? null;
    const policies = [...((this.runners.get('ccnp')?.lw.list() ?? []) as unknown as readonly KubeObject[])];
    const node = name === null ? null : ((this.runners.get('node')?.lw.get(name) as unknown as KubeObject | undefined) ?? null);
    try {
      await writeSelection(dir, { syncedAt: new Date().toISOString(), policies, nodeName: name, node });
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'kubernetes source: cannot write the cache (selection)');
      // The file on disk still holds the previous selection, which readCache/loadCache lay over the big
      // cache however new that is: remove it, and force the write again on the next snapshot.
      await removeSelection(dir);
      this.cacheSelectionKey = undefined;
    }
  }

  private deliver(snap: KubernetesSnapshot): void {
    this.log.debug({ revision: snap.revision, origin: snap.origin }, 'kubernetes source: snapshot handed out');
    this.lastSnapshot = snap;
    const first = snap.origin === 'api' && !this.firstApiDelivered;
    if (first) this.firstApiDelivered = true;
    let consumed: unknown;
    try {
      consumed = this.onChange?.(snap);
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'kubernetes source: onChange failed');
    }
    if (!first) return;
    const mark = (): void => this.markFirstConsumed();
    if (consumed instanceof Promise) consumed.then(mark, mark);
    else mark();
  }

  /** A watch event is about to change `obj`'s key in r's store: keep what the key held at the last snapshot. */
  private noteBefore(r: Runner, obj: KubeObject, before: KubeObject | undefined): void {
    if (r.spec.id === 'ccnp') return;
    const name = objectName(obj);
    const namespace = objectNamespace(obj);
    const key = `${r.spec.id}\0${namespace ?? ''}\0${name}`;
    if (!this.pendingBefore.has(key)) this.pendingBefore.set(key, { r, name, namespace, before });
  }

  /** The objects gone and come since the last snapshot, by identity; undefined when not known. Resets the record. */
  private takeObjectChanges(): ObjectChanges | undefined {
    const unknown = this.objectsUnknown;
    this.objectsUnknown = false;
    const pending = [...this.pendingBefore.values()];
    this.pendingBefore.clear();
    if (unknown) return undefined;
    const gone: KubeObject[] = [];
    const come: KubeObject[] = [];
    for (const p of pending) {
      const now = p.r.lw.get(p.name, p.namespace) as unknown as KubeObject | undefined;
      if (now === p.before) continue;
      if (p.before !== undefined) gone.push(p.before);
      if (now !== undefined) come.push(now);
    }
    return { gone, come };
  }

  private decode(raw: KubeObject): PolicyFile {
    const rv = typeof raw.metadata['resourceVersion'] === 'string' ? raw.metadata['resourceVersion'] : '';
    const hit = this.decoded.get(raw.metadata.name);
    if (hit !== undefined && hit.rv === rv && rv !== '') return hit.file;
    const file = `k8s:ccnp/${raw.metadata.name}`;
    let pf: PolicyFile;
    try {
      const text = JSON.stringify(raw, null, 2);
      pf = { file, text, hash: createHash('sha256').update(text).digest('hex'), load: loadManifestText(text, file) };
    } catch (err) {
      // A hostile object (nested some thousands deep) overflows the stack of JSON.stringify or the decoder:
      // one invalid CCNP, like any other, never a throw out of the snapshot (a crash, a crash loop on the cache).
      const text = '';
      const problem: Problem = { severity: 'error', pos: { file, line: 1, col: 1 }, policy: raw.metadata.name, field: '', code: 'load/too-deep', message: `cannot decode this CCNP: ${describeError(err)}` };
      pf = { file, text, hash: createHash('sha256').update(`${file}\n${rv}\n${describeError(err)}`).digest('hex'), load: { policies: [], objects: [], problems: [problem], skipped: 1 } };
    }
    this.decoded.set(raw.metadata.name, { rv, file: pf });
    return pf;
  }

  private decodeAll(raws: readonly KubeObject[]): { policies: PolicyDocument[]; problems: Problem[]; policyFiles: PolicyFile[] } {
    const policies: PolicyDocument[] = [];
    const problems: Problem[] = [];
    const policyFiles: PolicyFile[] = [];
    const names = new Set<string>();
    for (const raw of [...raws].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0))) {
      names.add(raw.metadata.name);
      const d = this.decode(raw);
      policyFiles.push(d);
      for (const p of d.load.policies) policies.push(p);
      for (const p of d.load.problems) problems.push(p);
    }
    for (const name of this.decoded.keys()) if (!names.has(name)) this.decoded.delete(name);
    return { policies, problems, policyFiles };
  }

  /**
   * The objects now, as the per-namespace arrays (never changed once made: a store change makes its
   * namespace's array anew), and the CCNPs (only when `withCcnps`: the decoded lists are kept otherwise).
   */
  private currentParts(withCcnps: boolean): { parts: (readonly KubeObject[])[]; size: number; ccnps: KubeObject[] } {
    let ccnps: KubeObject[] = [];
    const parts: (readonly KubeObject[])[] = [];
    let size = 0;
    for (const r of this.allRunners()) {
      if (r.spec.id === 'ccnp') {
        if (withCcnps) ccnps = [...(r.lw.list() as unknown as readonly KubeObject[])];
      } else {
        for (const part of runnerLists(r)) {
          parts.push(part);
          size += part.length;
        }
      }
    }
    return { parts, size, ccnps };
  }

  private buildSnapshot(): KubernetesSnapshot {
    const changes = this.takeObjectChanges();
    // No CCNP changed since the last snapshot: its decoded lists again (the same objects: no sort, no decode).
    const { parts, size, ccnps } = this.currentParts(this.decodedAll === undefined);
    const decoded = this.decodedAll ?? this.decodeAll(ccnps);
    this.decodedAll = decoded;
    const { policies, problems, policyFiles } = decoded;
    const revision = ++this.revision;
    const objectFeed = this.changeLog.commit(revision, changes, size);
    // The one list of every object (100k+ entries: a large object for V8, and garbage at the next event)
    // is made only when read: a pod event that the feed explains never reads it (pipeline.ts). It is
    // kept only while a reader holds it (a weak reference): the snapshot, which the source keeps until
    // the next one, holds its parts, not a second copy of them (100k pods: 0.8 MB). A read after the
    // list was collected joins the parts again (the same objects in the same order).
    let joined: WeakRef<KubeObject[]> | undefined;
    return {
      get objects(): KubeObject[] {
        let objects = joined?.deref();
        if (objects === undefined) {
          objects = joinParts(parts);
          joined = new WeakRef(objects);
        }
        return objects;
      },
      policies,
      problems,
      origin: 'api',
      revision,
      policyFiles,
      objectFeed,
    };
  }

  // ---- disk cache ----

  private async emitCache(): Promise<void> {
    const dir = this.opts.stateDir;
    if (dir === undefined) return;
    // A corrupt cache is moved aside (k8s-cache.json.corrupt): the source then waits for the API.
    const { value: cached, error } = await loadCache(dir);
    if (error !== undefined) this.log.warn({ file: error.file, reason: error.reason, movedTo: error.movedTo ?? null }, `kubernetes source: ignoring unusable cache: ${error.message}`);
    if (cached === undefined) return;
    const { policies, problems, policyFiles } = this.decodeAll(cached.policies);
    this.stale = true;
    this.cacheSyncedAt = cached.syncedAt;
    this.log.info({ syncedAt: cached.syncedAt, objects: cached.objects.length, policies: cached.policies.length }, 'kubernetes source: enforcing the cached cluster state until the API answers');
    const revision = ++this.revision;
    this.deliver({ objects: [...cached.objects], policies, problems, origin: 'cache', revision, policyFiles, objectFeed: this.changeLog.commit(revision, undefined) });
  }

  private scheduleCacheWrite(): void {
    if (this.opts.stateDir === undefined || this.cacheWrite !== undefined || this.cacheTimer !== undefined || this.stopped) return;
    const interval = this.opts.cacheIntervalMs ?? 30_000;
    const lastAttempt = Math.max(this.cacheWrittenAt, this.cacheFailedAt);
    const first = lastAttempt === 0;
    // The first big write (every pod: some 0.3 s of serialisation at 100k pods) waits until the first
    // snapshot has been enforced, at most one cache interval: it would otherwise take that CPU from the
    // start's own build and apply. The selection file (policies, this node) is on disk before that
    // snapshot is handed out whatever this waits for (flush).
    const wait = first ? interval : Math.max(0, lastAttempt + interval - Date.now());
    const timer = setTimeout(() => {
      this.cacheTimer = undefined;
      void this.writeCacheNow();
    }, wait);
    this.cacheTimer = timer;
    if (first) {
      void this.firstConsumed.then(() => {
        if (this.cacheTimer !== timer) return;
        clearTimeout(timer);
        this.cacheTimer = undefined;
        void this.writeCacheNow();
      });
    }
  }

  private async writeCacheNow(): Promise<void> {
    const dir = this.opts.stateDir;
    if (dir === undefined || !this.cacheDirty || !this.synced()) return;
    this.cacheDirty = false;
    // The per-namespace arrays as they are now (never changed once made): written one object at a time.
    const { parts, size, ccnps } = this.currentParts(true);
    const resourceVersions: Record<string, string> = {};
    for (const r of this.allRunners()) resourceVersions[r.spec.kind] = r.lw.latestResourceVersion();
    const write = writeCache(dir, { syncedAt: new Date().toISOString(), resourceVersions, objects: eachOf(parts), policies: ccnps })
      .then(() => {
        this.cacheWrittenAt = Date.now();
        this.log.debug({ objects: size, policies: ccnps.length }, 'kubernetes source: cache written');
      })
      .catch((err: unknown) => {
        this.cacheDirty = true;
        this.cacheFailedAt = Date.now();
        this.log.warn({ err: describeError(err), retryInMs: this.opts.cacheIntervalMs ?? 30_000 }, 'kubernetes source: cannot write the cache');
      })
      .finally(() => {
        this.cacheWrite = undefined;
        if (this.cacheDirty && !this.stopped) this.scheduleCacheWrite();
      });
    this.cacheWrite = write;
    await write;
  }
}

/**
 * One-shot read for the CLI (validate, trace, render): list everything once,
 * return the first complete snapshot from the API, stop. Never the disk cache.
 * Throws KubernetesSourceError with the last API error when no complete
 * snapshot arrives within `timeoutMs` (default 30 s), and at once when the API
 * refuses the credentials (401, 403).
 */
export async function readKubernetesOnce(opts: Omit<KubernetesSourceOptions, 'stateDir'> & { readonly timeoutMs?: number }): Promise<KubernetesSnapshot> {
  const { timeoutMs = 30_000, ...rest } = opts;
  let refused: ((err: Error) => void) | undefined;
  const source = new KubernetesSource({
    debounceMs: 0,
    ...rest,
    // Refused credentials do not heal within one CLI run: fail at once, naming the cause.
    onApiError: (e) => {
      rest.onApiError?.(e);
      if (e.status === 401 || e.status === 403) refused?.(new KubernetesSourceError(`the Kubernetes API refused the credentials: ${e.message}`));
    },
  });
  try {
    return await new Promise<KubernetesSnapshot>((resolve, reject) => {
      refused = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(() => {
        const st = source.status();
        reject(new KubernetesSourceError(`no complete read of the Kubernetes API within ${timeoutMs} ms${st.lastError === undefined ? '' : `: ${st.lastError}`}`));
      }, timeoutMs);
      source
        .start((s) => {
          if (s.origin !== 'api') return;
          clearTimeout(timer);
          resolve(s);
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new KubernetesSourceError(String(err)));
        });
    });
  } finally {
    await source.stop();
  }
}
