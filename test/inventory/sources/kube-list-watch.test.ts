// The list-then-watch loop and its store (kube-list-watch.ts) with scripted list and watch
// functions: the store always equals the server's state (property test over random event
// sequences, relists included), callbacks report exactly the changes, and the loop's control
// flow (resume, 410 relist, errors) is the one the source relies on.

import test from 'ava';
import fc from 'fast-check';
import type { KubeObject } from '../../../src/api/types.js';
import { KindListWatch, type ListResult, type WatchHandler } from '../../../src/inventory/sources/kube-list-watch.js';
import { stripObject } from '../../../src/inventory/sources/kube-kinds.js';
import { PodRecord } from '../../../src/inventory/sources/pod-record.js';

function obj(ns: string, name: string, rv: number, v = 0): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, ...(ns === '' ? {} : { namespace: ns }), resourceVersion: String(rv) }, v } as unknown as KubeObject;
}

interface Script {
  lists: ListResult[];
  listError?: unknown;
  watches: { query: Readonly<Record<string, string>>; cb: WatchHandler; done: (err: unknown) => void; aborted: boolean }[];
}

function scripted(): { script: Script; lw: KindListWatch; log: string[] } {
  const script: Script = { lists: [], watches: [] };
  const log: string[] = [];
  const lw = new KindListWatch(
    async (query, cb, done) => {
      const c = new AbortController();
      const w = { query, cb, done, aborted: false };
      c.signal.addEventListener('abort', () => (w.aborted = true));
      script.watches.push(w);
      return c;
    },
    async () => {
      if (script.listError !== undefined) throw script.listError;
      const l = script.lists.shift();
      if (l === undefined) throw new Error('no list scripted');
      return l;
    },
    'a=b',
  );
  const name = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  lw.on('add', (o) => log.push(`add ${name(o)}`));
  lw.on('update', (o) => log.push(`update ${name(o)}`));
  lw.on('delete', (o) => log.push(`delete ${name(o)}`));
  lw.on('error', (e) => log.push(`error ${(e as Error).message}`));
  return { script, lw, log };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('list, then watch from the list version with the label selector; events and bookmarks move the version', async (t) => {
  const { script, lw, log } = scripted();
  script.lists.push({ items: [obj('a', 'p1', 5), obj('', 'n1', 6)], resourceVersion: '10' });
  await lw.start();
  t.deepEqual(log, ['add a/p1', 'add /n1']);
  t.deepEqual(script.watches[0]?.query, { resourceVersion: '10', labelSelector: 'a=b' });
  const w = script.watches[0]!;
  w.cb('MODIFIED', obj('a', 'p1', 11, 1));
  w.cb('MODIFIED', obj('a', 'p1', 11, 1)); // the same version again: no update
  w.cb('ADDED', obj('b', 'p2', 12));
  w.cb('DELETED', obj('', 'n1', 13));
  w.cb('DELETED', obj('', 'never', 14)); // unknown: nothing
  w.cb('BOOKMARK', { metadata: { resourceVersion: '20' } });
  t.deepEqual(log.slice(2), ['update a/p1', 'add b/p2', 'delete /n1']);
  t.is(lw.latestResourceVersion(), '20');
  t.deepEqual(lw.list().map((o) => o.metadata.name), ['p1', 'p2']);
  t.deepEqual([...lw.objects.keys()], ['a', 'b'], 'an emptied namespace is dropped');
  t.is(lw.get('p1', 'a')?.metadata['resourceVersion'], '11');
  // The stream ends: watch again from the last version, no list.
  w.done(null);
  await tick();
  t.is(script.watches[1]?.query['resourceVersion'], '20');
  t.true(w.aborted);
});

test('410 (HTTP or an ERROR event then the end) relists: gone objects deleted, changed ones updated, new ones added', async (t) => {
  const { script, lw, log } = scripted();
  script.lists.push({ items: [obj('a', 'p1', 5), obj('a', 'p2', 6), obj('b', 'p3', 7)], resourceVersion: '10' });
  await lw.start();
  log.length = 0;
  script.watches[0]!.cb('ERROR', { kind: 'Status', code: 410, metadata: {} });
  t.is(lw.latestResourceVersion(), '');
  script.lists.push({ items: [obj('a', 'p1', 5), obj('a', 'p2', 16), obj('c', 'p4', 17)], resourceVersion: '20' });
  script.watches[0]!.done(null);
  await tick();
  t.deepEqual(log, ['delete b/p3', 'update a/p2', 'add c/p4']);
  t.is(script.watches[1]?.query['resourceVersion'], '20');
  // HTTP 410 on the watch itself: the same.
  log.length = 0;
  script.lists.push({ items: [obj('a', 'p1', 5)], resourceVersion: '30' });
  script.watches[1]!.done(Object.assign(new Error('gone'), { code: 410 }));
  await tick();
  t.deepEqual(log, ['delete a/p2', 'delete c/p4']);
  // An ERROR event other than 410 keeps the version (the stream's end resumes).
  script.watches[2]!.cb('ERROR', { kind: 'Status', code: 500, metadata: {} });
  t.is(lw.latestResourceVersion(), '30');
});

test('another error goes to the error callbacks and stops the loop; start() resumes from the version; stop() aborts', async (t) => {
  const { script, lw, log } = scripted();
  script.listError = new Error('refused');
  await lw.start();
  t.deepEqual(log, ['error refused']);
  t.is(script.watches.length, 0);
  script.listError = undefined;
  script.lists.push({ items: [], resourceVersion: '10' });
  await lw.start();
  script.watches[0]!.cb('ADDED', obj('a', 'p', 11));
  script.watches[0]!.done(Object.assign(new Error('HTTP 401'), { code: 401 }));
  await tick();
  t.deepEqual(log.slice(1), ['add a/p', 'error HTTP 401']);
  t.is(script.watches.length, 1);
  await lw.start();
  t.is(script.watches[1]?.query['resourceVersion'], '11', 'resumed, no relist');
  await lw.stop();
  t.true(script.watches[1]?.aborted);
  script.watches[1]!.done(null);
  await tick();
  t.is(script.watches.length, 2, 'stopped: no new watch');
});

// A random history of a kind: the store must equal the server's state after every step.
type Op = { op: 'put'; ns: number; name: number } | { op: 'del'; ns: number; name: number } | { op: 'relist' } | { op: 'bookmark' };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), ns: fc.nat(2), name: fc.nat(4) }),
  fc.record({ op: fc.constant('del' as const), ns: fc.nat(2), name: fc.nat(4) }),
  fc.constant({ op: 'relist' as const }),
  fc.constant({ op: 'bookmark' as const }),
);

type Make = (ns: string, name: string, rv: number, v: number) => KubeObject;

/** The store property, for objects made by `make` (plain slim objects, or the source's pod records). */
async function storeProperty(make: Make): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
      const { script, lw } = scripted();
      const server = new Map<string, KubeObject>();
      // A mirror built only from the callbacks.
      const mirror = new Map<string, KubeObject>();
      const key = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      lw.on('add', (o) => mirror.set(key(o), o));
      lw.on('update', (o) => mirror.set(key(o), o));
      lw.on('delete', (o) => mirror.delete(key(o)));
      let rv = 1;
      const sorted = (): KubeObject[] => [...server.values()];
      script.lists.push({ items: sorted(), resourceVersion: String(rv) });
      await lw.start();
      for (const op of ops) {
        rv++;
        const w = script.watches.at(-1)!;
        if (op.op === 'put') {
          const o = make(`ns${op.ns}`, `p${op.name}`, rv, rv);
          const had = server.has(key(o));
          server.set(key(o), o);
          w.cb(had ? 'MODIFIED' : 'ADDED', o);
        } else if (op.op === 'del') {
          const k = `ns${op.ns}/p${op.name}`;
          const o = server.get(k);
          if (o === undefined) continue;
          server.delete(k);
          // The deleted object as the API sends it: its last state (made at its version) with a new resourceVersion.
          w.cb('DELETED', make(o.metadata.namespace ?? '', o.metadata.name, rv, Number(o.metadata['resourceVersion'])));
        } else if (op.op === 'bookmark') {
          w.cb('BOOKMARK', { metadata: { resourceVersion: String(rv) } });
        } else {
          w.cb('ERROR', { code: 410 });
          script.lists.push({ items: sorted(), resourceVersion: String(rv) });
          w.done(null);
          await tick();
        }
        const stored = new Map(lw.list().map((o) => [key(o), o]));
        if (stored.size !== server.size || [...server].some(([k, o]) => stored.get(k)?.metadata['resourceVersion'] !== o.metadata['resourceVersion'])) return false;
        if (mirror.size !== server.size || [...server].some(([k, o]) => mirror.get(k) !== stored.get(k) || o.metadata['resourceVersion'] !== mirror.get(k)?.metadata['resourceVersion'])) return false;
        if (op.op !== 'relist' && lw.latestResourceVersion() !== String(rv)) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
}

test('property: after any sequence of events and relists, the store holds exactly the server state, and the callbacks replayed give it too', async (t) => {
  await storeProperty(obj);
  t.pass();
});

test("property: the same with the Kubernetes source's pod records (stripObject)", async (t) => {
  let records = 0;
  await storeProperty((ns, name, rv, v) => {
    const o = stripObject('pod', { metadata: { name, ...(ns === '' ? {} : { namespace: ns }), resourceVersion: String(rv) }, status: { podIPs: [{ ip: `192.0.2.${v % 250}` }] } });
    if (o instanceof PodRecord) records++;
    return o;
  });
  t.true(records > 0);
});
