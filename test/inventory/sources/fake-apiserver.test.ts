// The fake API server itself, over raw HTTPS: the API behaviours the source's
// tests rely on (see the header of test/helpers/fake-apiserver.ts).

import { request } from 'node:https';
import test from 'ava';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { node } from '../../helpers/fake-apiserver-cluster.js';

interface Reply {
  readonly status: number;
  readonly body: string;
}

function get(s: FakeApiServer, path: string, token = 'nodewall-test-token'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${s.url}${path}`, { ca: s.cert.cert, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a watch and collects its events until `n` arrived or the stream ended. */
function watch(s: FakeApiServer, path: string, n: number, onOpen?: () => void): Promise<{ events: { type: string; object: { metadata: { name?: string; resourceVersion?: string }; code?: number } }[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const events: { type: string; object: { metadata: { name?: string; resourceVersion?: string }; code?: number } }[] = [];
    const req = request(`${s.url}${path}`, { ca: s.cert.cert, headers: { authorization: 'Bearer nodewall-test-token' } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      onOpen?.();
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, i)) as (typeof events)[number]);
          buf = buf.slice(i + 1);
          if (events.length >= n) {
            req.destroy();
            resolve({ events, ended: false });
          }
        }
      });
      res.on('end', () => resolve({ events, ended: true }));
      res.on('error', () => resolve({ events, ended: true }));
    });
    req.on('error', (e) => (events.length >= n ? undefined : reject(e)));
    req.end();
  });
}

async function server(t: { teardown(fn: () => Promise<void>): void }, absent: ('ciliumnodes' | 'ciliumendpoints')[] = []): Promise<FakeApiServer> {
  const s = await FakeApiServer.start({ absent });
  t.teardown(() => s.close());
  for (let i = 0; i < 5; i++) s.apply('nodes', node(`n${i}`, `192.0.2.${i + 10}`, `2001:db8::${i + 10}`, { idx: String(i) }));
  return s;
}

test('wrong or missing token: 401 Status', async (t) => {
  const s = await server(t);
  const r = await get(s, '/api/v1/nodes', 'nope');
  t.is(r.status, 401);
  t.like(JSON.parse(r.body), { kind: 'Status', code: 401, reason: 'Unauthorized' });
});

test('absent CRD and unknown paths: 404 Status', async (t) => {
  const s = await server(t, ['ciliumnodes']);
  t.is((await get(s, '/apis/cilium.io/v2/ciliumnodes')).status, 404);
  t.is((await get(s, '/apis/cilium.io/v2/ciliumnodes?watch=1')).status, 404);
  t.is((await get(s, '/api/v1/widgets')).status, 404);
  t.is((await get(s, '/apis/cilium.io/v2/ciliumendpoints')).status, 200);
});

test('list: resourceVersion, label selector, limit/continue pages from one snapshot, 410 for a compacted token', async (t) => {
  const s = await server(t);
  const all = JSON.parse((await get(s, '/api/v1/nodes')).body) as { kind: string; metadata: { resourceVersion: string }; items: { metadata: { name: string } }[] };
  t.is(all.kind, 'NodeList');
  t.is(all.metadata.resourceVersion, s.resourceVersion);
  t.deepEqual(all.items.map((i) => i.metadata.name), ['n0', 'n1', 'n2', 'n3', 'n4']);
  const sel = JSON.parse((await get(s, '/api/v1/nodes?labelSelector=idx%3D3')).body) as typeof all;
  t.deepEqual(sel.items.map((i) => i.metadata.name), ['n3']);
  const p1 = JSON.parse((await get(s, '/api/v1/nodes?limit=2')).body) as typeof all & { metadata: { continue: string; remainingItemCount: number } };
  t.deepEqual(p1.items.map((i) => i.metadata.name), ['n0', 'n1']);
  t.is(p1.metadata.remainingItemCount, 3);
  s.remove('nodes', 'n3'); // not seen by the paged list: it reads one snapshot
  const p2 = JSON.parse((await get(s, `/api/v1/nodes?limit=2&continue=${p1.metadata.continue}`)).body) as typeof p1;
  t.deepEqual(p2.items.map((i) => i.metadata.name), ['n2', 'n3']);
  t.is(p2.metadata.resourceVersion, p1.metadata.resourceVersion);
  s.compact();
  const expired = await get(s, `/api/v1/nodes?limit=2&continue=${p2.metadata.continue}`);
  t.is(expired.status, 410);
  t.like(JSON.parse(expired.body), { code: 410, reason: 'Expired' });
});

test('watch: synthetic ADDED without resourceVersion, replay after one, live events, DELETED with a new version', async (t) => {
  const s = await server(t);
  const initial = await watch(s, '/api/v1/nodes?watch=1', 5);
  t.deepEqual(initial.events.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED n0', 'ADDED n1', 'ADDED n2', 'ADDED n3', 'ADDED n4']);
  const rv = s.resourceVersion;
  s.apply('nodes', node('n1', '192.0.2.11', '2001:db8::11', { idx: 'changed' }));
  const replay = await watch(s, `/api/v1/nodes?watch=true&resourceVersion=${rv}`, 3, () => {
    setTimeout(() => s.remove('nodes', 'n0'), 20);
    setTimeout(() => s.apply('namespaces', { metadata: { name: 'other-kind' } }), 10);
    setTimeout(() => s.apply('nodes', node('n9', '192.0.2.99', '2001:db8::99')), 40);
  });
  t.deepEqual(replay.events.map((e) => `${e.type} ${e.object.metadata.name}`), ['MODIFIED n1', 'DELETED n0', 'ADDED n9']);
  const del = replay.events[1];
  t.true(Number(del?.object.metadata.resourceVersion) > Number(rv));
});

test('watch: too old resourceVersion is HTTP 200 then an ERROR 410 event and the end of the stream', async (t) => {
  const s = await server(t);
  const old = '101';
  s.compact();
  const w = await watch(s, `/api/v1/nodes?watch=1&resourceVersion=${old}`, 10);
  t.true(w.ended);
  t.is(w.events.length, 1);
  t.is(w.events[0]?.type, 'ERROR');
  t.is(w.events[0]?.object.code, 410);
});

test('watch: bookmarks only when allowed; timeoutSeconds ends the stream; dropWatches resets it', async (t) => {
  const s = await server(t);
  const rv = s.resourceVersion;
  const withBm = watch(s, `/api/v1/nodes?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`, 1, () => setTimeout(() => s.bookmark(), 20));
  const w = await withBm;
  t.deepEqual(w.events, [{ type: 'BOOKMARK', object: { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: rv } } }]);
  const timed = await watch(s, `/api/v1/nodes?watch=1&resourceVersion=${rv}&timeoutSeconds=1`, 1, () => setTimeout(() => s.bookmark(), 20));
  t.true(timed.ended);
  t.deepEqual(timed.events, []);
  const dropped = await watch(s, `/api/v1/nodes?watch=1&resourceVersion=${rv}`, 1, () => setTimeout(() => t.is(s.dropWatches(), 1), 50));
  t.true(dropped.ended);
});
