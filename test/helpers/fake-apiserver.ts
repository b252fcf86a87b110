// A loopback HTTPS stand-in for kube-apiserver, for tests of the Kubernetes source
// against the real client library (@kubernetes/client-node). No real API server can
// run on the test machines, so this reproduces the parts of the API those clients
// rely on, for the resources nodewall reads, and nothing else:
//
// - TLS with a self-signed certificate made at test time with `openssl` (SAN = the
//   listen address), bearer token auth: a missing or wrong token gets 401 with a
//   Status body (reason Unauthorized), like a revoked ServiceAccount token.
// - Resources: ciliumclusterwidenetworkpolicies, ciliumnodes, ciliumendpoints
//   (cilium.io/v2), nodes, namespaces, pods (v1), endpointslices
//   (discovery.k8s.io/v1), cluster-wide and namespaced paths
//   (/api/v1/namespaces/NS/pods, /apis/G/V/namespaces/NS/R).
//   A CRD marked absent answers 404 NotFound on every path, list and watch.
// - One etcd-like resourceVersion counter shared by all resources; every write
//   stamps the object with the next value; lists report the current value.
// - list: items in namespace/name order, equality label selectors (k=v, k==v,
//   k!=v, k, !k) and dotted-path field selectors (a.b=v, a.b!=v); `limit` +
//   `continue` chunking served from a snapshot frozen at the first page (the
//   whole list is consistent at one resourceVersion); a continue token older than
//   the last compaction gets 410 Gone (reason Expired).
// - watch (`watch=1|true`): a chunked `application/json` stream, one JSON event per
//   line: ADDED / MODIFIED / DELETED (DELETED carries the last state with a new
//   resourceVersion). resourceVersion unset or "0": synthetic ADDED for every
//   current object first, then live events. resourceVersion N: replay of every
//   event after N from history, then live. N older than the last compaction: HTTP
//   200 then one ERROR event carrying a Status with code 410 (reason Expired,
//   "too old resource version"), then the stream ends (what kube-apiserver does).
//   `allowWatchBookmarks=true`: BOOKMARK events ({kind, apiVersion,
//   metadata.resourceVersion} only) every `bookmarkIntervalMs` and on `bookmark()`.
//   `timeoutSeconds`: the server ends the stream cleanly after that time.
// - Faults on demand: `dropWatches()` destroys every open watch socket (a dropped
//   connection), `compact()` forgets history, `setToken()` revokes credentials,
//   `close()`/`listen()` take the whole server away and back on the same port,
//   `setListDelay()` / `holdLists()` make a collection slow to list, `stallWatches()`
//   black-holes watch streams (open, silent, never ending), `setAbsent()` (un)installs a CRD.
//
// Not reproduced: sendInitialEvents/streaming lists, resourceVersionMatch, set-based
// selectors (in, notin), protobuf, server-side apply, admission/validation,
// API discovery, priority and fairness (429), and watch cache lag.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type ResourceName =
  | 'ciliumclusterwidenetworkpolicies'
  | 'ciliumnodes'
  | 'ciliumendpoints'
  | 'nodes'
  | 'namespaces'
  | 'pods'
  | 'endpointslices';

interface ResourceInfo {
  readonly group: string; // '' = core
  readonly version: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

const resources: Readonly<Record<ResourceName, ResourceInfo>> = {
  ciliumclusterwidenetworkpolicies: { group: 'cilium.io', version: 'v2', kind: 'CiliumClusterwideNetworkPolicy', namespaced: false },
  ciliumnodes: { group: 'cilium.io', version: 'v2', kind: 'CiliumNode', namespaced: false },
  ciliumendpoints: { group: 'cilium.io', version: 'v2', kind: 'CiliumEndpoint', namespaced: true },
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false },
  namespaces: { group: '', version: 'v1', kind: 'Namespace', namespaced: false },
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true },
  endpointslices: { group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', namespaced: true },
};

export type JsonObject = { [k: string]: unknown };
export interface StoredObject extends JsonObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown };
}

export interface RequestRecord {
  readonly method: string;
  readonly resource: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

export interface FakeApiServerOptions {
  /** Listen address (default 127.0.0.1); also the certificate's IP SAN. */
  readonly host?: string;
  readonly token?: string;
  /** CRDs not installed: every request for them gets 404. */
  readonly absent?: readonly ResourceName[];
  /** Period of BOOKMARK events on watches that asked for them; 0 = only on bookmark(). */
  readonly bookmarkIntervalMs?: number;
}

interface WatchEvent {
  readonly rv: number;
  readonly resource: ResourceName;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: StoredObject;
}

interface OpenWatch {
  readonly resource: ResourceName;
  readonly namespace: string | undefined;
  readonly match: (o: StoredObject) => boolean;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
  readonly socket: Socket;
}

interface Certificate {
  readonly cert: string;
  readonly key: string;
}

const certs = new Map<string, Certificate>();

/** Self-signed EC certificate for `host`, made once per process with openssl. */
export function testCertificate(host: string): Certificate {
  const cached = certs.get(host);
  if (cached !== undefined) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'nw-fakeapi-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
      '-subj', '/CN=fake-kube-apiserver', '-addext', `subjectAltName=IP:${host},DNS:localhost`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const c = { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
    certs.set(host, c);
    return c;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class FakeApiServer {
  readonly host: string;
  readonly cert: Certificate;
  /** Every request served, in order. */
  readonly requests: RequestRecord[] = [];
  private token: string;
  private readonly absent: Set<ResourceName>;
  private readonly bookmarkIntervalMs: number;
  private readonly store = new Map<ResourceName, Map<string, StoredObject>>();
  private readonly history: WatchEvent[] = [];
  private readonly listSnapshots = new Map<string, StoredObject[]>();
  private readonly watches = new Set<OpenWatch>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private rv = 100;
  private compactedRv = 0;
  private nextSnapshot = 0;
  private listenPort = 0;
  private readonly listDelays = new Map<ResourceName, number>();
  private readonly heldLists = new Map<ResourceName, (() => void)[]>();
  private stalled = false;

  private constructor(opts: FakeApiServerOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.token = opts.token ?? 'nodewall-test-token';
    this.absent = new Set(opts.absent ?? []);
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 0;
    this.cert = testCertificate(this.host);
    for (const r of Object.keys(resources) as ResourceName[]) this.store.set(r, new Map());
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await s.listen();
    return s;
  }

  get port(): number {
    return this.listenPort;
  }

  get url(): string {
    return `https://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.listenPort}`;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Listen (again) on the same port as before, or a free one the first time. */
  async listen(): Promise<void> {
    if (this.server !== undefined) return;
    const server = createServer({ cert: this.cert.cert, key: this.cert.key }, (req, res) => this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, this.host, () => resolve());
    });
    this.listenPort = (server.address() as AddressInfo).port;
    this.server = server;
    if (this.bookmarkIntervalMs > 0) {
      this.bookmarkTimer = setInterval(() => this.bookmark(), this.bookmarkIntervalMs);
    }
  }

  /** Take the API away: stop listening and reset every open connection. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    if (this.bookmarkTimer !== undefined) clearInterval(this.bookmarkTimer);
    this.bookmarkTimer = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.watches.clear();
    await closed;
  }

  /** Kubeconfig (JSON, which is YAML) for this server, written under `dir`. */
  writeKubeconfig(dir: string, token: string = this.token): string {
    const file = join(dir, 'kubeconfig');
    const kc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.cert.cert).toString('base64') } }],
      users: [{ name: 'nodewall', user: { token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'nodewall' } }],
      'current-context': 'fake',
    };
    writeFileSync(file, JSON.stringify(kc, null, 2));
    return file;
  }

  /** Change the accepted token: clients with the old one get 401 from now on. */
  setToken(token: string): void {
    this.token = token;
  }

  /** Answer lists of `resource` only after `ms` (a slow or large collection). */
  setListDelay(resource: ResourceName, ms: number): void {
    this.listDelays.set(resource, ms);
  }

  /**
   * A black-holed network: open watches stay open but receive nothing (no events,
   * no bookmarks, no end at timeoutSeconds), like a peer that vanished without a RST.
   */
  stallWatches(on: boolean): void {
    this.stalled = on;
  }

  /** Hold every list of `resource` until releaseLists() (a collection that takes long to list). */
  holdLists(resource: ResourceName): void {
    if (!this.heldLists.has(resource)) this.heldLists.set(resource, []);
  }

  releaseLists(resource: ResourceName): void {
    const held = this.heldLists.get(resource) ?? [];
    this.heldLists.delete(resource);
    for (const serve of held) serve();
  }

  setAbsent(resource: ResourceName, absent: boolean): void {
    if (absent) this.absent.add(resource);
    else this.absent.delete(resource);
  }

  // ---- writes ----

  /** Create or replace an object; emits ADDED or MODIFIED. Returns the stored copy. */
  apply(resource: ResourceName, obj: JsonObject): StoredObject {
    const info = resources[resource];
    const o = structuredClone(obj) as StoredObject;
    o['apiVersion'] = info.group === '' ? info.version : `${info.group}/${info.version}`;
    o['kind'] = info.kind;
    if (info.namespaced && o.metadata.namespace === undefined) o.metadata.namespace = 'default';
    const key = objectKey(o);
    const existing = this.objects(resource).get(key);
    this.rv++;
    o.metadata.resourceVersion = String(this.rv);
    if (existing === undefined) o.metadata['uid'] = `uid-${resource}-${this.rv}`;
    else o.metadata['uid'] = existing.metadata['uid'];
    this.objects(resource).set(key, o);
    this.emit({ rv: this.rv, resource, type: existing === undefined ? 'ADDED' : 'MODIFIED', object: o });
    return o;
  }

  /** Delete an object; emits DELETED. Returns false if it did not exist. */
  remove(resource: ResourceName, name: string, namespace?: string): boolean {
    const ns = resources[resource].namespaced ? (namespace ?? 'default') : undefined;
    const key = ns === undefined ? name : `${ns}/${name}`;
    const existing = this.objects(resource).get(key);
    if (existing === undefined) return false;
    this.objects(resource).delete(key);
    this.rv++;
    const last = structuredClone(existing);
    last.metadata.resourceVersion = String(this.rv);
    this.emit({ rv: this.rv, resource, type: 'DELETED', object: last });
    return true;
  }

  get(resource: ResourceName, name: string, namespace?: string): StoredObject | undefined {
    const ns = resources[resource].namespaced ? (namespace ?? 'default') : undefined;
    return this.objects(resource).get(ns === undefined ? name : `${ns}/${name}`);
  }

  count(resource: ResourceName): number {
    return this.objects(resource).size;
  }

  // ---- faults ----

  /** Forget all history up to now: older watch resourceVersions and continue tokens get 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history.length = 0;
    this.listSnapshots.clear();
  }

  /** Abruptly reset every open watch connection. Returns how many were dropped. */
  dropWatches(): number {
    const n = this.watches.size;
    for (const w of this.watches) w.socket.destroy();
    this.watches.clear();
    return n;
  }

  /** Send a BOOKMARK at the current resourceVersion to every watch that allows them. */
  bookmark(): number {
    let n = 0;
    if (this.stalled) return 0;
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      const info = resources[w.resource];
      writeEvent(w.res, {
        type: 'BOOKMARK',
        object: { kind: info.kind, apiVersion: apiVersionOf(info), metadata: { resourceVersion: String(this.rv) } },
      });
      n++;
    }
    return n;
  }

  openWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of this.watches) if (resource === undefined || w.resource === resource) n++;
    return n;
  }

  // ---- HTTP ----

  private objects(resource: ResourceName): Map<string, StoredObject> {
    const m = this.store.get(resource);
    if (m === undefined) throw new Error(`unknown resource ${resource}`);
    return m;
  }

  private emit(e: WatchEvent): void {
    this.history.push(e);
    if (this.stalled) return;
    for (const w of this.watches) {
      if (w.resource !== e.resource) continue;
      if (w.namespace !== undefined && e.object.metadata.namespace !== w.namespace) continue;
      if (!w.match(e.object)) continue;
      writeEvent(w.res, { type: e.type, object: e.object });
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://fake');
    const query = Object.fromEntries(url.searchParams.entries());
    const route = parsePath(url.pathname);
    const record = (status: number): void => {
      this.requests.push({ method: req.method ?? 'GET', resource: route?.resource ?? '', path: url.pathname, query, status });
    };
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      record(401);
      sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    if (route === undefined || this.absent.has(route.resource) || req.method !== 'GET') {
      record(404);
      sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
      return;
    }
    let match: (o: StoredObject) => boolean;
    try {
      match = selectorMatcher(query['labelSelector'], query['fieldSelector']);
    } catch (e) {
      record(400);
      sendStatus(res, 400, 'BadRequest', (e as Error).message);
      return;
    }
    const isWatch = query['watch'] === '1' || query['watch'] === 'true';
    if (isWatch) {
      this.serveWatch(route, query, match, req, res, record);
      return;
    }
    const delay = this.listDelays.get(route.resource) ?? 0;
    const held = this.heldLists.get(route.resource);
    if (held !== undefined) held.push(() => this.serveList(route, query, match, res, record));
    else if (delay > 0) setTimeout(() => this.serveList(route, query, match, res, record), delay);
    else this.serveList(route, query, match, res, record);
  }

  private current(route: Route, match: (o: StoredObject) => boolean): StoredObject[] {
    const out: StoredObject[] = [];
    for (const o of this.objects(route.resource).values()) {
      if (route.namespace !== undefined && o.metadata.namespace !== route.namespace) continue;
      if (match(o)) out.push(o);
    }
    return out.sort((a, b) => (objectKey(a) < objectKey(b) ? -1 : objectKey(a) > objectKey(b) ? 1 : 0));
  }

  private serveList(route: Route, query: Record<string, string>, match: (o: StoredObject) => boolean, res: ServerResponse, record: (s: number) => void): void {
    if (res.destroyed) return;
    const info = resources[route.resource];
    const limit = query['limit'] === undefined ? 0 : Number(query['limit']);
    let items: StoredObject[];
    let rv: number;
    let offset = 0;
    let snapshotId: string;
    const cont = query['continue'];
    if (cont !== undefined && cont !== '') {
      let token: { rv: number; offset: number; id: string };
      try {
        token = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as typeof token;
      } catch {
        record(400);
        sendStatus(res, 400, 'BadRequest', 'continue key is not valid');
        return;
      }
      const snap = this.listSnapshots.get(token.id);
      if (token.rv <= this.compactedRv || snap === undefined) {
        record(410);
        sendStatus(res, 410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
        return;
      }
      items = snap;
      rv = token.rv;
      offset = token.offset;
      snapshotId = token.id;
    } else {
      items = this.current(route, match).map((o) => o);
      rv = this.rv;
      snapshotId = String(this.nextSnapshot++);
    }
    let page = items;
    let next: string | undefined;
    if (limit > 0 && offset + limit < items.length) {
      page = items.slice(offset, offset + limit);
      this.listSnapshots.set(snapshotId, items);
      next = Buffer.from(JSON.stringify({ rv, offset: offset + limit, id: snapshotId })).toString('base64url');
    } else {
      page = items.slice(offset);
      this.listSnapshots.delete(snapshotId);
    }
    const metadata: JsonObject = { resourceVersion: String(rv) };
    if (next !== undefined) {
      metadata['continue'] = next;
      metadata['remainingItemCount'] = items.length - offset - page.length;
    }
    record(200);
    const body = JSON.stringify({ kind: `${info.kind}List`, apiVersion: apiVersionOf(info), metadata, items: page });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private serveWatch(route: Route, query: Record<string, string>, match: (o: StoredObject) => boolean, req: IncomingMessage, res: ServerResponse, record: (s: number) => void): void {
    record(200);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (this.stalled) {
      const silent: OpenWatch = { resource: route.resource, namespace: route.namespace, match: () => false, bookmarks: false, res, socket: req.socket };
      this.watches.add(silent);
      res.on('close', () => this.watches.delete(silent));
      return;
    }
    const rvParam = query['resourceVersion'];
    if (rvParam !== undefined && rvParam !== '' && rvParam !== '0') {
      const from = Number(rvParam);
      if (!(from >= this.compactedRv)) {
        writeEvent(res, {
          type: 'ERROR',
          object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${rvParam} (${this.compactedRv + 1})`, reason: 'Expired', code: 410 },
        });
        res.end();
        return;
      }
      for (const e of this.history) {
        if (e.rv <= from || e.resource !== route.resource) continue;
        if (route.namespace !== undefined && e.object.metadata.namespace !== route.namespace) continue;
        if (match(e.object)) writeEvent(res, { type: e.type, object: e.object });
      }
    } else {
      for (const o of this.current(route, match)) writeEvent(res, { type: 'ADDED', object: o });
    }
    const w: OpenWatch = {
      resource: route.resource,
      namespace: route.namespace,
      match,
      bookmarks: query['allowWatchBookmarks'] === 'true' || query['allowWatchBookmarks'] === '1',
      res,
      socket: req.socket,
    };
    this.watches.add(w);
    const timeout = query['timeoutSeconds'] === undefined ? 0 : Number(query['timeoutSeconds']);
    const timer = timeout > 0 ? setTimeout(() => (this.stalled ? undefined : res.end()), timeout * 1000) : undefined;
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      this.watches.delete(w);
    };
    res.on('close', done);
    res.on('finish', done);
  }
}

interface Route {
  readonly resource: ResourceName;
  readonly namespace: string | undefined;
}

function parsePath(pathname: string): Route | undefined {
  const parts = pathname.split('/').filter((p) => p !== '');
  let rest: string[];
  let group: string;
  if (parts[0] === 'api' && parts[1] === 'v1') {
    group = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = `${parts[1]}/${parts[2]}`;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  let name: string | undefined;
  if (rest.length === 3 && rest[0] === 'namespaces') {
    namespace = rest[1];
    name = rest[2];
  } else if (rest.length === 1) {
    name = rest[0];
  } else {
    return undefined;
  }
  if (name === undefined || !(name in resources)) return undefined;
  const resource = name as ResourceName;
  const info = resources[resource];
  const infoGroup = info.group === '' ? '' : `${info.group}/${info.version}`;
  if (infoGroup !== group) return undefined;
  if (namespace !== undefined && !info.namespaced) return undefined;
  return { resource, namespace };
}

function apiVersionOf(info: ResourceInfo): string {
  return info.group === '' ? info.version : `${info.group}/${info.version}`;
}

function objectKey(o: StoredObject): string {
  return o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`;
}

function writeEvent(res: ServerResponse, event: JsonObject): void {
  if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(event)}\n`);
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function fieldValue(o: unknown, path: string): string | undefined {
  let cur: unknown = o;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as JsonObject)[p];
  }
  if (cur === undefined || cur === null) return undefined;
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

/** Equality-based label and field selectors, comma = AND (set-based forms are rejected). */
function selectorMatcher(labelSelector: string | undefined, fieldSelector: string | undefined): (o: StoredObject) => boolean {
  const tests: ((o: StoredObject) => boolean)[] = [];
  for (const term of splitSelector(labelSelector)) {
    if (/\s(in|notin)\s/.test(term) || term.includes('(')) throw new Error(`unsupported label selector ${term}`);
    const ne = term.indexOf('!=');
    const eq = term.indexOf('=');
    if (ne >= 0) {
      const k = term.slice(0, ne).trim();
      const v = term.slice(ne + 2).trim();
      tests.push((o) => o.metadata.labels?.[k] !== v);
    } else if (eq >= 0) {
      const k = term.slice(0, eq).trim();
      const v = term.slice(term[eq + 1] === '=' ? eq + 2 : eq + 1).trim();
      tests.push((o) => o.metadata.labels?.[k] === v);
    } else if (term.startsWith('!')) {
      const k = term.slice(1).trim();
      tests.push((o) => o.metadata.labels?.[k] === undefined);
    } else {
      const k = term.trim();
      tests.push((o) => o.metadata.labels?.[k] !== undefined);
    }
  }
  for (const term of splitSelector(fieldSelector)) {
    const ne = term.indexOf('!=');
    const eq = term.indexOf('=');
    if (ne >= 0) {
      const k = term.slice(0, ne).trim();
      const v = term.slice(ne + 2).trim();
      tests.push((o) => fieldValue(o, k) !== v);
    } else if (eq >= 0) {
      const k = term.slice(0, eq).trim();
      const v = term.slice(term[eq + 1] === '=' ? eq + 2 : eq + 1).trim();
      tests.push((o) => (fieldValue(o, k) ?? '') === v);
    } else {
      throw new Error(`invalid field selector ${term}`);
    }
  }
  return (o) => tests.every((t) => t(o));
}

function splitSelector(s: string | undefined): string[] {
  if (s === undefined || s.trim() === '') return [];
  return s.split(',').map((t) => t.trim()).filter((t) => t !== '');
}
