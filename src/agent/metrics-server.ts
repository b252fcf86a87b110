// Serves GET /metrics (Prometheus text format) on metrics.listen. Its own
// small HTTP server, so a slow or hostile scraper cannot reach the reconcile
// loop: requests carry no body we read, connections and time are bounded,
// and collection is bounded in rule-counters.ts. A bind failure (port taken,
// address not on this host) is logged as an error and retried with backoff;
// enforcement goes on regardless.

import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { backoffDelay } from '../inventory/sources/backoff.js';
import type { MetricsListen } from '../inventory/types.js';

export interface MetricsSource {
  text(): Promise<string>;
  readonly contentType: string;
}

const bindBackoff = { initialMs: 2000, maxMs: 60_000 };
/** A scrape that takes longer gets 503 (collection is bounded below this anyway). */
const scrapeTimeoutMs = 10_000;

export function listenText(l: MetricsListen): string {
  return l === 'off' ? 'off' : l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

/** What `nodewall status` shows of the endpoint. */
export type MetricsEndpointState =
  | { readonly state: 'off' }
  | { readonly state: 'binding'; readonly listen: string }
  | { readonly state: 'listening'; readonly listen: string; readonly address: string }
  | { readonly state: 'error'; readonly listen: string; readonly error: string; readonly since: string };

export class MetricsServer {
  readonly #source: MetricsSource;
  readonly #log: Logger;
  /** Called when the endpoint starts listening, fails to bind or stops (the agent rewrites its status file). */
  readonly #onChange: () => void;
  #listen: MetricsListen = 'off';
  #server: Server | undefined;
  #retry: NodeJS.Timeout | undefined;
  #attempts = 0;
  #generation = 0;
  #bindError: { error: string; since: string } | undefined;

  constructor(source: MetricsSource, log: Logger, onChange: () => void = () => undefined) {
    this.#source = source;
    this.#log = log;
    this.#onChange = onChange;
  }

  get state(): MetricsEndpointState {
    if (this.#listen === 'off') return { state: 'off' };
    const listen = listenText(this.#listen);
    const a = this.address;
    if (a !== undefined) return { state: 'listening', listen, address: listenText(a) };
    return this.#bindError === undefined ? { state: 'binding', listen } : { state: 'error', listen, ...this.#bindError };
  }

  /** The bound address (tests: port 0 picks one), or undefined while not listening. */
  get address(): { host: string; port: number } | undefined {
    const a = this.#server?.address();
    return a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** Listen on `listen` (re-binding when it changed), or stop serving ('off'). */
  async sync(listen: MetricsListen): Promise<void> {
    if (listenText(listen) === listenText(this.#listen)) return;
    await this.stop();
    this.#listen = listen;
    if (listen === 'off') {
      this.#log.info({}, 'metrics: disabled (metrics.listen: off)');
      this.#onChange();
      return;
    }
    this.#attempts = 0;
    await this.#bind(++this.#generation, listen);
  }

  async stop(): Promise<void> {
    this.#generation++;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#retry = undefined;
    const s = this.#server;
    this.#server = undefined;
    this.#listen = 'off';
    this.#bindError = undefined;
    if (s !== undefined) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  async #bind(generation: number, l: Exclude<MetricsListen, 'off'>): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req.method, req.url, res));
    server.maxConnections = 32;
    server.requestTimeout = scrapeTimeoutMs + 5000;
    server.headersTimeout = 10_000;
    server.keepAliveTimeout = 5000;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: l.host, port: l.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      server.close();
      if (generation !== this.#generation) return;
      const delay = backoffDelay(++this.#attempts, bindBackoff);
      const code = (err as NodeJS.ErrnoException).code;
      const error = `${code ?? 'error'}: ${err instanceof Error ? err.message : String(err)}`;
      if (this.#bindError?.error !== error) {
        this.#bindError = { error, since: new Date().toISOString() };
        this.#onChange();
      }
      this.#log.error({ err, listen: listenText(l), code, retryInMs: delay },
        `metrics: cannot listen on ${listenText(l)} (${code ?? 'error'}): /metrics is not served, enforcement goes on; retrying`);
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        if (generation === this.#generation) void this.#bind(generation, l);
      }, delay);
      this.#retry.unref();
      return;
    }
    if (generation !== this.#generation) {
      server.close();
      return;
    }
    server.on('error', (err) => this.#log.error({ err }, 'metrics: server error'));
    this.#server = server;
    this.#bindError = undefined;
    const a = this.address;
    this.#log.info({ listen: listenText(l), port: a?.port }, 'metrics: serving /metrics');
    this.#onChange();
  }

  async #handle(method: string | undefined, url: string | undefined, res: import('node:http').ServerResponse): Promise<void> {
    const path = (url ?? '').split('?')[0];
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(path === '/' ? 200 : 404, { 'content-type': 'text/plain' }).end(path === '/' ? 'nodewall: see /metrics\n' : 'not found\n');
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const text = await Promise.race([
        this.#source.text(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`collection took longer than ${scrapeTimeoutMs} ms`)), scrapeTimeoutMs);
        }),
      ]);
      res.writeHead(200, { 'content-type': this.#source.contentType });
      res.end(method === 'HEAD' ? undefined : text);
    } catch (err) {
      this.#log.warn({ err }, 'metrics: collection failed');
      if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('metrics collection failed\n');
    } finally {
      clearTimeout(timer);
    }
  }
}
