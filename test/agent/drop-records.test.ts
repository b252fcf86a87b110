import test from 'ava';
import { DropLogLimiter, DropRecordReporter, attributeDrop, listPauseFactor, dropKey, dropRows, lastSeenMs, readDropRecords, type DropRecordsRead } from '../../src/agent/drop-records.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRecordSet } from '../../src/agent/audit-records.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { existsSync } from 'node:fs';
import * as b from '../helpers/model-builders.js';

const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity' });
const bad = b.identity('bad', ['198.51.100.66/32'], [], { kind: 'cidr' });
const model = b.model({
  sets: [world, bad],
  ingress: b.enforced([b.allow('world', [b.tcp(22)], 'spec.ingress[0]', 'edge'), b.deny('bad', [b.anyL4], 'spec.ingressDeny[0]', 'edge')]),
});

const setJson = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6' } },
    {
      set: {
        family: 'inet', name: 'nw_drop_in_v4', table: 'nodewall', type: ['inet_proto', 'inet_service', 'ipv4_addr'], size: 8, timeout: 600,
        elem: [
          { elem: { val: { concat: ['tcp', 8080, '203.0.113.5'] }, expires: 590, counter: { packets: 3, bytes: 180 } } },
          { elem: { val: { concat: ['tcp', 22, '198.51.100.66'] }, expires: 599, counter: { packets: 1, bytes: 60 } } },
          { elem: { val: { concat: [58, 139 * 256, '2001:db8::5'] }, expires: 500, counter: { packets: 2, bytes: 96 } } },
          { elem: { val: { concat: ['tcp', 'not a port', '203.0.113.9'] }, expires: 1 } },
          'garbage',
        ],
      },
    },
  ],
});

test('drop-record sets are read: protocol, port, peer in the proto-port-peer layout, counters, expiry, timeout', (t) => {
  const r = parseRecordSet(setJson, 'ingress', 'proto-port-peer');
  t.is(r.length, 3);
  t.deepEqual(r[0], { direction: 'ingress', peer: '203.0.113.5', proto: 6, port: 8080, expires: 590, packets: 3, bytes: 180, timeoutSeconds: 600 });
  t.is(r[2]?.proto, 58);
});

test('last seen is the read time minus the elapsed part of the timeout, never before the first drop', (t) => {
  const [a] = parseRecordSet(setJson, 'ingress', 'proto-port-peer');
  if (a === undefined) return t.fail();
  t.is(lastSeenMs(a, 1_000_000), 1_000_000 - 10_000);
  t.is(lastSeenMs({ ...a, firstSeenMs: 995_000 }, 1_000_000), 995_000);
  const { expires: _gone, ...noExpiry } = a;
  t.is(lastSeenMs(noExpiry, 1_000_000), undefined);
});

test('each drop is attributed the way trace decides it: deny entry, default deny, datapath, or changed since', (t) => {
  t.like(attributeDrop(model, { direction: 'ingress', peer: '198.51.100.66', proto: 'tcp', port: 22 }, evaluate), { decidedBy: 'deny-entry', policy: 'edge', rule: 'spec.ingressDeny[0]' });
  const dd = attributeDrop(model, { direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 8080 }, evaluate);
  t.like(dd, { decidedBy: 'default-deny', policy: null, rule: 'default-deny' });
  t.is(dd.reason, model.ingress.reason, 'the reason default deny is active');
  t.like(attributeDrop(model, { direction: 'ingress', peer: '2001:db8::5', proto: 'icmpv6', icmpType: 139, icmpCode: 0 }, evaluate), { decidedBy: 'datapath', rule: 'datapath' });
  t.like(attributeDrop(model, { direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 22 }, evaluate), { decidedBy: 'changed', rule: 'recorded-before-last-change' });
});

test('rows are newest first and filtered by time and peer prefix', (t) => {
  const read: DropRecordsRead = { records: parseRecordSet(setJson, 'ingress', 'proto-port-peer'), recordedPackets: 6, unrecordedPackets: 0, readAtMs: 1_000_000, startedAtMs: 999_000 };
  const rows = dropRows(read, model, evaluate);
  t.deepEqual(rows.map((r) => r.peer), ['198.51.100.66', '203.0.113.5', '2001:db8::5']);
  t.is(rows[2]?.icmpType, 139);
  t.is(rows[2]?.port, undefined);
  t.deepEqual(dropRows(read, model, evaluate, { sinceMs: 1_000_000 - 5000 }).map((r) => r.peer), ['198.51.100.66']);
  t.deepEqual(dropRows(read, model, evaluate, { peer: '203.0.113.0/24' }).map((r) => r.peer), ['203.0.113.5']);
  t.deepEqual(dropRows(read, model, evaluate, { peer: '2001:db8::/32' }).map((r) => r.peer), ['2001:db8::5']);
});

test('the log limiter lets one line per key and interval through and never remembers more than its bound', (t) => {
  const l = new DropLogLimiter(60_000, 100);
  const k = dropKey({ direction: 'ingress', peer: '203.0.113.5', proto: 'tcp', port: 8080 });
  t.true(l.allow(k, 0));
  t.false(l.allow(k, 59_999));
  t.true(l.allow(k, 60_000));
  for (let i = 0; i < 10_000; i++) l.allow(`k${i}`, 1000 + i);
  t.is(l.size, 100);
  // Forgotten (least recently logged first): allowed again.
  t.true(l.allow('k0', 20_000));
  t.false(l.allow('k9999', 20_000));
});

test('readDropRecords: each set\'s expiries count from its own listing, so a slow listing never makes drops look older', async (t) => {
  // A fake nft that takes 0.5 s per call (a loaded node): the ingress IPv4 set is listed after the two chains
  // (>= 1.5 s after the read began), with a record refreshed at that moment (expires = timeout).
  const dir = await mkdtemp(join(tmpdir(), 'nwt-slow-nft-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fake = join(dir, 'nft');
  const set = (name: string, elem: string) => `{"nftables":[{"set":{"family":"inet","name":"${name}","table":"nodewall","size":1024,"timeout":600,"elem":[${elem}]}}]}`;
  await writeFile(fake, [
    '#!/bin/sh',
    'sleep 0.5',
    'name="$6"',
    'case "$3" in chain) echo \'{"nftables":[]}\'; exit 0;; esac',
    `case "$name" in nw_drop_in_v4) echo '${set('nw_drop_in_v4', '{"elem":{"val":{"concat":["tcp",8080,"203.0.113.5"]},"expires":600,"counter":{"packets":1,"bytes":60}}}')}';;`,
    `  nw_drop_in_v4_first) echo '${set('nw_drop_in_v4_first', '{"elem":{"val":{"concat":["tcp",8080,"203.0.113.5"]},"expires":600}}')}';;`,
    `  *) echo '${set('x', '')}';; esac`,
    '',
  ].join('\n'), { mode: 0o755 });
  const t0 = Date.now();
  const read = await readDropRecords(fake, 'nodewall');
  const done = Date.now();
  t.is(read.records.length, 1);
  const r = read.records[0];
  const last = r === undefined ? undefined : lastSeenMs(r, read.readAtMs);
  t.true(last !== undefined && last >= t0 + 1500, `last seen ${String(last)} is at the set's listing, not at the start of the read (${t0})`);
  t.true(last !== undefined && last <= done, 'never in the future');
});

test('a drop landing in a set already listed while a slow read lists the others is logged by the next read', async (t) => {
  // A fake nft taking 0.5 s per call (a loaded node). During the first read, right after it lists the ingress
  // IPv4 record set (empty), a drop of 198.51.100.66 tcp/22 "happens": the set holds it from then on (expiry
  // counted from that second) and the chains' counters rise. Seven more listings follow (>= 3.5 s), so the
  // drop is well over a second older than the end of the first read: a next read that reaches back only to
  // that end (less a second) never logged it.
  const dir = await mkdtemp(join(tmpdir(), 'nwt-drop-race-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fake = join(dir, 'nft');
  const state = join(dir, 'drop_at');
  const setDoc = (name: string, elem: string) => `{"nftables":[{"set":{"family":"inet","name":"${name}","table":"nodewall","size":1024,"timeout":600,"elem":[${elem}]}}]}`;
  const withDrop = setDoc('nw_drop_in_v4', '{"elem":{"val":{"concat":["tcp",22,"198.51.100.66"]},"expires":@E@,"counter":{"packets":1,"bytes":60}}}').split('@E@');
  const counterDoc = '{"nftables":[{"rule":{"comment":"rec","expr":[{"counter":{"packets":@N@}}]}}]}'.split('@N@');
  await writeFile(fake, [
    '#!/bin/sh',
    'sleep 0.5',
    `state='${state}'`,
    'name="$6"',
    'if [ "$3" = chain ]; then',
    '  n=0; [ -f "$state" ] && n=1',
    `  printf '%s%s%s\\n' '${counterDoc[0]}' "$n" '${counterDoc[1]}'; exit 0`,
    'fi',
    'if [ "$name" = nw_drop_in_v4 ]; then',
    '  if [ -f "$state" ]; then',
    '    e=$((600 - $(date +%s) + $(cat "$state")))',
    `    printf '%s%s%s\\n' '${withDrop[0]}' "$e" '${withDrop[1]}'`,
    '  else',
    `    echo '${setDoc('nw_drop_in_v4', '')}'`,
    '    date +%s > "$state"',
    '  fi',
    '  exit 0',
    'fi',
    `echo '${setDoc('x', '')}'`,
    '',
  ].join('\n'), { mode: 0o755 });
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const reporter = new DropRecordReporter({ minListIntervalMs: 0, maxListShare: 1 });
  const ctx = { nftPath: fake, table: 'nodewall', model, log, evaluate };
  await reporter.tick(ctx);
  t.deepEqual(lines.filter((l) => l['kind'] === 'drop'), [], 'the first read saw no drop');
  t.true(existsSync(state), 'the drop happened during the first read');
  await reporter.tick(ctx);
  const drops = lines.filter((l) => l['kind'] === 'drop');
  t.is(drops.length, 1, JSON.stringify(lines));
  t.like(drops[0], { peer: '198.51.100.66', port: 22, policy: 'edge', rule: 'spec.ingressDeny[0]' });
});

test('the listing pause factor: 19 for the default 5%, 0 for a share of 1, and the default for a share that would stop listing', (t) => {
  t.is(listPauseFactor(undefined), 19);
  t.is(listPauseFactor(1), 0);
  t.is(listPauseFactor(0.5), 1);
  for (const bad of [0, -1, Number.NaN, 2, Number.POSITIVE_INFINITY]) t.is(listPauseFactor(bad), 19, String(bad));
});
