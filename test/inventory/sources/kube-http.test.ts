// The HTTP layer of the Kubernetes source (kube-http.ts) against hostile or broken servers:
// bounded list pages (plain and gzip, including a gzip bomb and an endless body), bounded
// watch lines, a line that is not JSON, a last line cut off by the end of the stream, events
// split across chunks, error bodies, and abort.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { syncBuiltinESMExports } from 'node:module';
import zlib, { type Gunzip, gzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { KubeApiError, KubeHttp, KubeHttpError, type KubeEndpoint } from '../../../src/inventory/sources/kube-http.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(t: ExecutionContext, handler: Handler): Promise<KubeEndpoint> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as AddressInfo).port;
  return { server: `http://127.0.0.1:${port}`, requestOptions: async () => ({ headers: { Authorization: 'Bearer t' } }) };
}

interface WatchResult {
  readonly events: [string, unknown][];
  readonly err: Error | null;
}

function watchAll(http: KubeHttp, path = '/w'): Promise<WatchResult> {
  const events: [string, unknown][] = [];
  return new Promise((resolve) => {
    void http.watch(path, {}, (type, obj) => events.push([type, obj]), (err) => resolve({ events, err }));
  });
}

test('a list page is parsed; its query and headers are sent; gzip is decoded', async (t) => {
  let seen: IncomingMessage | undefined;
  const body = JSON.stringify({ items: [{ metadata: { name: 'a' } }], metadata: { resourceVersion: '7' } });
  const ep = await serve(t, (req, res) => {
    seen = req;
    if (req.url?.includes('gz=1') === true) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(body));
    } else res.end(body);
  });
  const http = new KubeHttp(ep);
  t.deepEqual(await http.getJson('/api/v1/pods', { limit: 500, continue: undefined, labelSelector: 'a=b' }), JSON.parse(body));
  t.is(seen?.url, '/api/v1/pods?limit=500&labelSelector=a%3Db');
  t.is(seen?.headers['authorization'], 'Bearer t');
  t.regex(String(seen?.headers['accept-encoding']), /gzip/);
  t.deepEqual(await http.getJson('/x', { gz: 1 }), JSON.parse(body));
});

test('a list page over the bound is an error, plain, endless or a gzip bomb', async (t) => {
  const ep = await serve(t, (req, res) => {
    if (req.url === '/plain') res.end(`{"items":[],"pad":"${'x'.repeat(5000)}"}`);
    else if (req.url === '/bomb') {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)));
    } else {
      // Endless: a chunk every tick, never an end.
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'.repeat(64 * 1024)), 1);
      res.on('close', () => clearInterval(timer));
    }
  });
  const http = new KubeHttp(ep, { maxListBytes: 4096 });
  await t.throwsAsync(http.getJson('/plain', {}), { instanceOf: KubeHttpError, message: /GET \/plain: response larger than 4096 bytes/ });
  await t.throwsAsync(http.getJson('/bomb', {}), { instanceOf: KubeHttpError, message: /larger than 4096 bytes/ });
  await t.throwsAsync(http.getJson('/endless', {}), { instanceOf: KubeHttpError, message: /larger than 4096 bytes/ });
});

test('an error status carries the Status message and code; a body that is not JSON is an error', async (t) => {
  const ep = await serve(t, (req, res) => {
    if (req.url === '/forbidden') {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 403, message: 'pods is forbidden: User "x" cannot list' }));
    } else if (req.url === '/gone') {
      res.writeHead(410);
      res.end('not json');
    } else res.end('{"items": [1, 2');
  });
  const http = new KubeHttp(ep);
  const e = await t.throwsAsync(http.getJson('/forbidden', {}), { instanceOf: KubeApiError });
  t.is(e?.code, 403);
  t.is(e?.message, 'HTTP 403: pods is forbidden: User "x" cannot list');
  const gone = await t.throwsAsync(http.getJson('/gone', {}), { instanceOf: KubeApiError });
  t.deepEqual([gone?.code, gone?.message, gone?.body], [410, 'HTTP 410 Gone', 'not json']);
  await t.throwsAsync(http.getJson('/truncated', {}), { instanceOf: KubeHttpError, message: /not JSON/ });
});

test('watch: events split across chunks and several per chunk are delivered in order; a cut-off last line is dropped', async (t) => {
  const ep = await serve(t, (req, res) => {
    t.is(new URL(req.url ?? '', 'http://x').searchParams.get('watch'), 'true');
    res.writeHead(200);
    const text = `${JSON.stringify({ type: 'ADDED', object: { n: 1 } })}\n\n${JSON.stringify({ type: 'MODIFIED', object: { n: 'ü'.repeat(100) } })}\n${JSON.stringify({ type: 'BOOKMARK', object: { n: 3 } })}\n{"type":"DELETED","obj`;
    // Byte by byte in places: a multi-byte character split across chunks must survive.
    const bytes = Buffer.from(text);
    let i = 0;
    const next = (): void => {
      if (i >= bytes.length) {
        res.end();
        return;
      }
      const n = i % 3 === 0 ? 1 : 17;
      res.write(bytes.subarray(i, i + n));
      i += n;
      setImmediate(next);
    };
    next();
  });
  const r = await watchAll(new KubeHttp(ep));
  t.is(r.err, null);
  t.deepEqual(r.events, [['ADDED', { n: 1 }], ['MODIFIED', { n: 'ü'.repeat(100) }], ['BOOKMARK', { n: 3 }]]);
});

test('watch: a line over the bound, a line that is not JSON, an event without a type, and an HTTP error end the watch with an error', async (t) => {
  const ep = await serve(t, (req, res) => {
    if (req.url?.startsWith('/huge') === true) {
      res.writeHead(200);
      res.write(`${JSON.stringify({ type: 'ADDED', object: {} })}\n`);
      // A line that never ends.
      const timer = setInterval(() => res.write('x'.repeat(1024)), 1);
      res.on('close', () => clearInterval(timer));
    } else if (req.url?.startsWith('/garbage') === true) {
      res.writeHead(200);
      res.end('{"type":"ADDED","object":{}}\n<html>\n');
    } else if (req.url?.startsWith('/untyped') === true) {
      res.writeHead(200);
      res.end('[1,2]\n');
    } else {
      res.writeHead(401);
      res.end(JSON.stringify({ kind: 'Status', code: 401, message: 'Unauthorized' }));
    }
  });
  const http = new KubeHttp(ep, { maxLineBytes: 10_000 });
  const huge = await watchAll(http, '/huge');
  t.is(huge.events.length, 1);
  t.true(huge.err instanceof KubeHttpError);
  t.regex(huge.err?.message ?? '', /an event line is longer than 10000 characters/);
  const garbage = await watchAll(http, '/garbage');
  t.is(garbage.events.length, 1);
  t.regex(garbage.err?.message ?? '', /an event is not JSON/);
  t.regex((await watchAll(http, '/untyped')).err?.message ?? '', /without a type/);
  const denied = await watchAll(http, '/denied');
  t.true(denied.err instanceof KubeApiError);
  t.is((denied.err as KubeApiError).code, 401);
});

test('watch: abort ends it with done(null), once; a refused connection is an error', async (t) => {
  const ep = await serve(t, (_req, res) => {
    res.writeHead(200);
    res.write('\n');
  });
  let calls = 0;
  let got: Error | null | undefined;
  const finished = new Promise<void>((resolve) => {
    void new KubeHttp(ep).watch('/w', {}, () => undefined, (err) => {
      calls++;
      got = err;
      resolve();
    }).then((c) => setTimeout(() => {
      c.abort();
      c.abort();
    }, 50));
  });
  await finished;
  await new Promise((r) => setTimeout(r, 50));
  t.is(got, null);
  t.is(calls, 1);
  // Port 9 on loopback: nothing listens (connection refused).
  const refused = await watchAll(new KubeHttp({ server: 'http://127.0.0.1:9', requestOptions: async () => ({}) }));
  t.regex(refused.err?.message ?? '', /ECONNREFUSED/);
});

test('watch: a server that takes the request and never answers ends the watch with an error', async (t) => {
  const ep = await serve(t, () => undefined);
  const r = await watchAll(new KubeHttp(ep, { watchAnswerMs: 300 }));
  t.true(r.err instanceof KubeHttpError);
  t.regex(r.err?.message ?? '', /watch \/w: no answer within 300 ms/);
});

test('watch: an event handler that throws ends the watch with that error (no uncaught exception); later lines are not delivered', async (t) => {
  const ep = await serve(t, (_req, res) => {
    res.writeHead(200);
    res.write('{"type":"ADDED","object":{"n":1}}\n{"type":"ADDED","object":{"n":2}}\n{"type":"ADDED","object":{"n":3}}\n');
  });
  const http = new KubeHttp(ep);
  const events: unknown[] = [];
  const err = await new Promise<Error | null>((resolve) => {
    void http.watch(
      '/w',
      {},
      (_type, obj) => {
        events.push(obj);
        if (events.length === 2) throw new RangeError('handler failed');
      },
      resolve,
    );
  });
  t.deepEqual(events, [{ n: 1 }, { n: 2 }]);
  t.true(err instanceof KubeHttpError);
  t.regex(String(err?.message), /handler failed/);
  t.true((err as Error & { cause?: unknown }).cause instanceof RangeError);
});

test('a request the HTTP layer refuses to send (a token with a newline) is an error of the list or watch, never a thrown or unhandled rejection', async (t) => {
  const ep = await serve(t, (_req, res) => res.end('{}'));
  const bad: KubeEndpoint = { server: ep.server, requestOptions: async () => ({ headers: { Authorization: 'Bearer a\nb' } }) };
  const http = new KubeHttp(bad);
  await t.throwsAsync(http.getJson('/l', {}));
  const { events, err } = await watchAll(http);
  t.deepEqual(events, []);
  t.true(err instanceof KubeHttpError);
});

/** Records every gunzip stream node:zlib makes while `body` runs (kube-http imports createGunzip by name: live binding). */
async function gunzipsMadeDuring(body: () => Promise<void>): Promise<Gunzip[]> {
  const made: Gunzip[] = [];
  const original = zlib.createGunzip;
  // A read-only but configurable property of the builtin.
  const set = (value: typeof original): void => {
    Object.defineProperty(zlib, 'createGunzip', { value, writable: false, enumerable: true, configurable: true });
    syncBuiltinESMExports();
  };
  set((...args: Parameters<typeof original>) => {
    const g = original(...args);
    made.push(g);
    return g;
  });
  try {
    await body();
  } finally {
    set(original);
  }
  return made;
}

// Serial: no other test of this file makes gunzip streams meanwhile.
test.serial('an aborted gzip response, a gzip page over the bound and an aborted request leave no gunzip stream open', async (t) => {
  const body = gzipSync(JSON.stringify({ items: Array.from({ length: 5000 }, (_, i) => ({ metadata: { name: `pod-${i}` } })) }));
  const ep = await serve(t, (req, res) => {
    res.writeHead(req.url === '/error' ? 500 : 200, { 'content-encoding': 'gzip' });
    if (req.url === '/bomb') {
      res.end(gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)));
      return;
    }
    // Half the compressed page, then the connection is cut (or, for /hang, held open until the client aborts).
    res.write(body.subarray(0, body.length >> 1), () => {
      if (req.url !== '/hang') setImmediate(() => res.socket?.destroy());
    });
  });
  const http = new KubeHttp(ep, { maxListBytes: 4096 });
  const made = await gunzipsMadeDuring(async () => {
    await t.throwsAsync(new KubeHttp(ep).getJson('/cut', {}), { instanceOf: KubeHttpError, message: /GET \/cut: (connection closed before the response was complete|aborted)/ });
    await t.throwsAsync(new KubeHttp(ep).getJson('/error', {}), { instanceOf: KubeApiError, message: /HTTP 500/ });
    await t.throwsAsync(http.getJson('/bomb', {}), { instanceOf: KubeHttpError, message: /larger than 4096 bytes/ });
    const ac = new AbortController();
    const hung = new KubeHttp(ep).getJson('/hang', {}, ac.signal);
    setTimeout(() => ac.abort(), 200);
    await t.throwsAsync(hung, { instanceOf: KubeHttpError });
  });
  t.is(made.length, 4, 'every request answered with gzip');
  // An abort rejects at once; the response ends (and its gunzip is destroyed) when the socket closes. A stream
  // left open never closes: generous bound.
  const closed = (g: Gunzip): Promise<boolean> => g.closed ? Promise.resolve(true)
    : new Promise((r) => {
      const timer = setTimeout(() => r(false), 20_000);
      g.once('close', () => {
        clearTimeout(timer);
        r(true);
      });
    });
  t.deepEqual(await Promise.all(made.map(closed)), [true, true, true, true], 'every gunzip stream was closed');
});
