// The two HTTP calls the Kubernetes source makes, on node:https (node:http for an
// http:// server), without the client library: a GET of one JSON document (one
// list page) and a watch stream (one JSON event per line).
//
// Bounded by design: a list page larger than `maxListBytes` (after gunzip) and a
// watch line longer than `maxLineBytes` are errors, never an unbounded buffer. A
// page is parsed with JSON.parse once it is complete; the caller slims its items
// at once (no typed objects in between).

import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import * as http from 'node:http';
import * as https from 'node:https';
import { createGunzip } from 'node:zlib';

/** Where requests go and with which credentials (kube-connection.ts). */
export interface KubeEndpoint {
  /** Base URL of the API server, without a trailing slash. */
  readonly server: string;
  /** TLS material, headers (Authorization) and agent for one request; evaluated per request (rotating tokens). */
  requestOptions(): Promise<RequestOptions & https.RequestOptions>;
}

/** The API answered with an HTTP status other than 200 (or an in-stream ERROR Status). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  /** HTTP status code (what errorStatusCode() reads). */
  readonly code: number;
  /** The Status object the server sent, when it sent one. */
  readonly body: unknown;
  constructor(code: number, body: unknown, message: string) {
    super(message);
    this.code = code;
    this.body = body;
  }
}

/** A response the client refuses: too large, not JSON, a watch line over the bound, a transport failure. */
export class KubeHttpError extends Error {
  override readonly name = 'KubeHttpError';
}

export interface KubeHttpLimits {
  /** A list page (decompressed) larger than this fails the request (default 256 MiB). */
  readonly maxListBytes?: number;
  /** A watch event line longer than this many characters ends the watch with an error (default 16 Mi). */
  readonly maxLineBytes?: number;
  /** A watch the server has not answered (status line and headers) within this ends with an error (default 60 s). */
  readonly watchAnswerMs?: number;
}

export const defaultMaxListBytes = 256 * 1024 * 1024;
export const defaultMaxLineBytes = 16 * 1024 * 1024;
/** Enough of an error body for its Status message. */
const maxErrorBodyBytes = 64 * 1024;

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

function urlFor(server: string, path: string, query: Query): URL {
  const url = new URL(server + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  return url;
}

/** A non-200 answer as a KubeApiError carrying the server's Status message. */
function apiError(status: number, text: string): KubeApiError {
  let body: unknown = text;
  let detail = '';
  try {
    body = JSON.parse(text);
    const m = (body as { message?: unknown } | null)?.message;
    if (typeof m === 'string') detail = m;
  } catch {
    // Not a Status object: the raw text (bounded) is the body.
  }
  return new KubeApiError(status, body, `HTTP ${status}${detail === '' ? ` ${http.STATUS_CODES[status] ?? ''}`.trimEnd() : `: ${detail}`}`);
}

/** Reads at most `max` bytes of a response body (gunzipped when the server compressed it). */
function readBody(res: IncomingMessage, max: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gzip = /\bgzip\b/i.test(String(res.headers['content-encoding'] ?? ''));
    const stream = gzip ? res.pipe(createGunzip()) : res;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      res.destroy();
      // The gunzip stream too: `pipe` never ends it when `res` stops early (an aborted connection, a page over
      // the bound), so it would stay open holding its zlib handle, its listeners and the chunks read so far,
      // and a gzip bomb's input already written would still be inflated.
      if (stream !== res) stream.destroy();
      reject(err);
    };
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        fail(new KubeHttpError(`${what}: response larger than ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    stream.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks, size));
    });
    stream.on('error', (err) => fail(new KubeHttpError(`${what}: ${err.message}`, { cause: err })));
    res.on('aborted', () => fail(new KubeHttpError(`${what}: connection closed before the response was complete`)));
    // The request destroyed by its caller (abort) ends `res` with 'close' alone, the body incomplete.
    res.on('close', () => {
      if (!res.complete) fail(new KubeHttpError(`${what}: connection closed before the response was complete`));
    });
    res.on('error', (err) => fail(new KubeHttpError(`${what}: ${err.message}`, { cause: err })));
  });
}

/**
 * A GET; `onAbort` runs once when `signal` aborts, after the request is destroyed. Destroyed without an
 * error: a socket already back in a keep-alive pool has nobody listening for one.
 */
function send(url: URL, opts: RequestOptions & https.RequestOptions, signal: AbortSignal, onAbort: () => void): ClientRequest {
  const mod = url.protocol === 'http:' ? http : https;
  const req = mod.request(url, { ...opts, method: 'GET' });
  const stop = (): void => {
    req.destroy();
    onAbort();
  };
  if (signal.aborted) queueMicrotask(stop);
  else signal.addEventListener('abort', stop, { once: true });
  req.on('close', () => signal.removeEventListener('abort', stop));
  return req;
}

export class KubeHttp {
  readonly endpoint: KubeEndpoint;
  private readonly maxListBytes: number;
  private readonly maxLineBytes: number;
  private readonly watchAnswerMs: number;

  constructor(endpoint: KubeEndpoint, limits: KubeHttpLimits = {}) {
    this.endpoint = endpoint;
    this.maxListBytes = limits.maxListBytes ?? defaultMaxListBytes;
    this.maxLineBytes = limits.maxLineBytes ?? defaultMaxLineBytes;
    this.watchAnswerMs = limits.watchAnswerMs ?? 60_000;
  }

  /** GET one JSON document. Rejects with KubeApiError (HTTP status) or KubeHttpError; `signal` aborts it. */
  async getJson(path: string, query: Query, signal?: AbortSignal): Promise<unknown> {
    const url = urlFor(this.endpoint.server, path, query);
    const base = await this.endpoint.requestOptions();
    const opts = { ...base, headers: { ...base.headers, Accept: 'application/json', 'Accept-Encoding': 'gzip' } };
    const what = `GET ${url.pathname}`;
    const text = await new Promise<string>((resolve, reject) => {
      const req = send(url, opts, signal ?? new AbortController().signal, () => reject(new KubeHttpError(`${what}: aborted`)));
      req.on('error', (err) => reject(err));
      req.on('response', (res) => {
        const ok = res.statusCode === 200;
        readBody(res, ok ? this.maxListBytes : maxErrorBodyBytes, what).then(
          (buf) => (ok ? resolve(buf.toString('utf8')) : reject(apiError(res.statusCode ?? 0, buf.toString('utf8')))),
          (err: unknown) => reject(ok ? err : apiError(res.statusCode ?? 0, '')),
        );
      });
      req.end();
    });
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new KubeHttpError(`${what}: the response is not JSON (${(err as Error).message})`, { cause: err });
    }
  }

  /**
   * Opens a watch; resolves once the server answered (or the watch ended before that).
   * `onEvent(type, object)` for every event line, then `done` exactly once: null when
   * the stream ended (server timeout, closed connection, or `abort()` on the returned controller),
   * an error otherwise (HTTP status, a line that is not JSON or too long, a transport error). A last
   * line cut off by the end of the stream is dropped: the watch resumes before it.
   */
  async watch(path: string, query: Query, onEvent: (type: string, object: unknown) => void, done: (err: Error | null) => void): Promise<AbortController> {
    const controller = new AbortController();
    let finished = false;
    // Resolved once the server answered the watch (or it ended before): "connected" means accepted.
    let answered: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (answered = resolve));
    const finish = (err: Error | null): void => {
      if (finished) return;
      finished = true;
      answered();
      if (!controller.signal.aborted) controller.abort();
      done(err);
    };
    let opts: RequestOptions & https.RequestOptions;
    const url = urlFor(this.endpoint.server, path, { ...query, watch: 'true' });
    try {
      const base = await this.endpoint.requestOptions();
      opts = { ...base, headers: { ...base.headers, Accept: 'application/json' } };
    } catch (err) {
      finish(err instanceof Error ? err : new KubeHttpError(String(err)));
      return controller;
    }
    const what = `watch ${url.pathname}`;
    let req: ClientRequest;
    try {
      req = send(url, opts, controller.signal, () => finish(null));
    } catch (err) {
      // Thrown synchronously, e.g. a header with a character HTTP forbids (a half-written token file):
      // the watch fails like any other, never a rejection nobody awaits (the ListWatch restarts it with `void`).
      finish(new KubeHttpError(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      return controller;
    }
    // A server that takes the connection and never answers must not hold the watch (and its kind) forever.
    const noAnswer = setTimeout(() => finish(new KubeHttpError(`${what}: no answer within ${this.watchAnswerMs} ms`)), this.watchAnswerMs);
    void ready.then(() => clearTimeout(noAnswer));
    req.on('error', (err) => finish(controller.signal.aborted ? null : err));
    req.on('socket', (s) => s.setKeepAlive(true, 30_000));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        // Resolved by finish(): a refused watch is over before watch() returns.
        readBody(res, maxErrorBodyBytes, what).then(
          (buf) => finish(apiError(res.statusCode ?? 0, buf.toString('utf8'))),
          () => finish(apiError(res.statusCode ?? 0, '')),
        );
        return;
      }
      answered();
      res.setEncoding('utf8');
      // The current line so far, in pieces (a line may span many chunks).
      let pending: string[] = [];
      let pendingLength = 0;
      const line = (text: string): boolean => {
        if (text.trim() === '') return true;
        let ev: unknown;
        try {
          ev = JSON.parse(text);
        } catch (err) {
          finish(new KubeHttpError(`${what}: an event is not JSON (${(err as Error).message})`, { cause: err }));
          return false;
        }
        const e = ev as { type?: unknown; object?: unknown } | null;
        if (e === null || typeof e !== 'object' || typeof e.type !== 'string') {
          finish(new KubeHttpError(`${what}: an event without a type`));
          return false;
        }
        try {
          onEvent(e.type, e.object);
        } catch (err) {
          // Thrown from a stream 'data' listener it would be an uncaught exception (the agent dies);
          // the watch ends with it instead, and the caller retries as for any other failed watch.
          finish(new KubeHttpError(`${what}: handling an event failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
          return false;
        }
        return !finished;
      };
      res.on('data', (chunk: string) => {
        if (finished) return;
        let from = 0;
        for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', from)) {
          const piece = chunk.slice(from, nl);
          from = nl + 1;
          if (pendingLength + piece.length > this.maxLineBytes) {
            finish(new KubeHttpError(`${what}: an event line is longer than ${this.maxLineBytes} characters`));
            return;
          }
          const text = pending.length === 0 ? piece : pending.join('') + piece;
          pending = [];
          pendingLength = 0;
          if (!line(text)) return;
        }
        const rest = chunk.slice(from);
        if (rest.length > 0) {
          pendingLength += rest.length;
          if (pendingLength > this.maxLineBytes) {
            finish(new KubeHttpError(`${what}: an event line is longer than ${this.maxLineBytes} characters`));
            return;
          }
          pending.push(rest);
        }
      });
      res.on('end', () => finish(null));
      res.on('aborted', () => finish(null));
      res.on('close', () => finish(null));
      res.on('error', (err) => finish(controller.signal.aborted ? null : err));
    });
    req.end();
    await ready;
    return controller;
  }
}
