// List-then-watch of one kind, and its store of slim objects: what the client
// library's ListWatch did for the source, with the same contract so that the
// source's loop is unchanged:
//
// - start(): list (when no resourceVersion is known), apply the list to the
//   store (delete what is gone, add or update the rest: callbacks per change),
//   then watch from the list's resourceVersion.
// - watch events change the store (callbacks); every event, bookmarks included,
//   advances the resourceVersion; an ERROR event forgets it (410 Gone: a relist
//   follows when the stream ends).
// - the watch ends with done(null): watch again (relist if the version was
//   forgotten); done(410): relist; done(other error): the error callbacks, and
//   nothing more until start() is called again (the source's backoff).
//
// The store is a Map of namespaces, each a NameStore of names (insertion order,
// name-store.ts: what a Map of names did, in less memory), so that the source can
// take one array per namespace for its snapshots (NameStore.list()).

import type { KubeObject } from '../../api/types.js';
import { NameStore } from './name-store.js';
import { objectName, objectNamespace, objectResourceVersion } from './pod-record.js';

export type WatchHandler = (phase: string, obj: unknown) => void;
export type WatchFn = (query: Readonly<Record<string, string>>, cb: WatchHandler, done: (err: unknown) => void) => Promise<AbortController>;
export interface ListResult {
  readonly items: readonly KubeObject[];
  readonly resourceVersion: string;
}

type Verb = 'add' | 'update' | 'delete' | 'error';
type Callback = (obj: KubeObject) => void;

function statusCode(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
}

// Names, namespaces and versions are read through pod-record.ts: a pod record builds its metadata
// object only when asked for it, which the store never needs.
const rvOf = objectResourceVersion;

export class KindListWatch {
  /** namespace ('' for cluster-scoped) -> name -> slim object. */
  objects = new Map<string, NameStore<KubeObject>>();
  private resourceVersion = '';
  private stopped = false;
  private request: AbortController | undefined;
  private readonly callbacks: Record<Verb, ((x: never) => void)[]> = { add: [], update: [], delete: [], error: [] };

  private readonly watchFn: WatchFn;
  private readonly listFn: () => Promise<ListResult>;
  private readonly labelSelector: string | undefined;

  constructor(watchFn: WatchFn, listFn: () => Promise<ListResult>, labelSelector?: string) {
    this.watchFn = watchFn;
    this.listFn = listFn;
    this.labelSelector = labelSelector;
  }

  on(verb: 'add' | 'update' | 'delete', cb: Callback): void;
  on(verb: 'error', cb: (err: unknown) => void): void;
  on(verb: Verb, cb: (x: never) => void): void {
    this.callbacks[verb].push(cb);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.doneHandler(null);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort();
  }

  get(name: string, namespace?: string): KubeObject | undefined {
    return this.objects.get(namespace ?? '')?.get(name);
  }

  list(): KubeObject[] {
    const out: KubeObject[] = [];
    for (const ns of this.objects.values()) for (const o of ns.values()) out.push(o);
    return out;
  }

  latestResourceVersion(): string {
    return this.resourceVersion;
  }

  private abort(): void {
    const r = this.request;
    this.request = undefined;
    r?.abort();
  }

  private emit(verb: Verb, x: unknown): void {
    for (const cb of [...this.callbacks[verb]]) (cb as (x: unknown) => void)(x);
  }

  private async doneHandler(err: unknown): Promise<void> {
    this.abort();
    if (err !== null && err !== undefined) {
      if (statusCode(err) === 410) this.resourceVersion = '';
      else {
        this.emit('error', err);
        return;
      }
    }
    if (this.stopped) return;
    if (this.resourceVersion === '') {
      let list: ListResult;
      try {
        list = await this.listFn();
      } catch (e) {
        this.emit('error', e);
        return;
      }
      if (this.stopped) return;
      this.applyList(list.items);
      this.resourceVersion = list.resourceVersion;
    }
    const query: Record<string, string> = { resourceVersion: this.resourceVersion };
    if (this.labelSelector !== undefined) query['labelSelector'] = this.labelSelector;
    this.request = await this.watchFn(query, (phase, obj) => this.event(phase, obj), (e) => void this.doneHandler(e));
  }

  /** A full list replaces the store: removed objects first (delete callbacks), then adds and updates. */
  private applyList(items: readonly KubeObject[]): void {
    const fresh = new Map<string, Set<string>>();
    for (const o of items) {
      const ns = objectNamespace(o) ?? '';
      let names = fresh.get(ns);
      if (names === undefined) fresh.set(ns, (names = new Set()));
      names.add(objectName(o));
    }
    for (const [ns, objs] of this.objects) {
      const names = fresh.get(ns);
      // Found first, then deleted: a store is not changed while it is iterated.
      const gone = [...objs.values()].filter((o) => names?.has(objectName(o)) !== true);
      for (const o of gone) {
        objs.delete(objectName(o));
        this.emit('delete', o);
      }
      if (objs.size === 0) this.objects.delete(ns);
    }
    for (const o of items) this.addOrUpdate(o);
  }

  private addOrUpdate(o: KubeObject): void {
    const ns = objectNamespace(o) ?? '';
    let objs = this.objects.get(ns);
    if (objs === undefined) this.objects.set(ns, (objs = new NameStore(objectName)));
    const name = objectName(o);
    const found = objs.get(name);
    if (found === undefined) {
      objs.set(o);
      this.emit('add', o);
    } else if (rvOf(found) === '' || rvOf(found) !== rvOf(o)) {
      objs.set(o);
      this.emit('update', o);
    }
  }

  private event(phase: string, obj: unknown): void {
    switch (phase) {
      case 'ERROR':
        // A Status, not an object. 410 Gone: the version is forgotten, a relist follows when the stream ends.
        if (statusCode(obj) === 410) this.resourceVersion = '';
        return;
      case 'ADDED':
      case 'MODIFIED':
        this.addOrUpdate(obj as KubeObject);
        break;
      case 'DELETED': {
        const o = obj as KubeObject;
        const ns = objectNamespace(o) ?? '';
        const objs = this.objects.get(ns);
        if (objs?.delete(objectName(o)) !== undefined) {
          if (objs.size === 0) this.objects.delete(ns);
          this.emit('delete', o);
        }
        break;
      }
      default:
        // BOOKMARK (and anything newer): only the version moves.
        break;
    }
    const rv = rvOf(obj);
    if (rv !== '') this.resourceVersion = rv;
  }
}
