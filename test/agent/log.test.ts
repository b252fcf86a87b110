import test from 'ava';
import { Writable } from 'node:stream';
import { createAgentLogger, journalPrefix } from '../../src/agent/log.js';

function capture() {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { out, stream };
}

test('under journald every line gets its syslog priority and no pid/hostname', (t) => {
  const { out, stream } = capture();
  const log = createAgentLogger({ env: { JOURNAL_STREAM: '8:1234' }, destination: stream, level: 'debug' });
  log.info({ table: 'nodewall' }, 'ruleset applied');
  log.warn('table missing');
  log.error('apply failed');
  log.debug('detail');
  t.deepEqual(out.map((l) => l.slice(0, 3)), ['<6>', '<4>', '<3>', '<7>']);
  const first = JSON.parse(out[0]!.slice(3)) as Record<string, unknown>;
  t.like(first, { msg: 'ruleset applied', table: 'nodewall', level: 30 });
  t.false('pid' in first);
  t.false('hostname' in first);
});

test('without journald: plain JSON lines with pid', (t) => {
  const { out, stream } = capture();
  createAgentLogger({ env: {}, destination: stream }).info('hello');
  const line = JSON.parse(out[0]!) as Record<string, unknown>;
  t.like(line, { msg: 'hello', pid: process.pid });
  t.regex(String(line['time']), /^\d{4}-\d\d-\d\dT/);
});

test('journalPrefix maps unknown levels to info', (t) => {
  t.is(journalPrefix('{"level":60,"msg":"x"}'), '<2>{"level":60,"msg":"x"}');
  t.is(journalPrefix('{"msg":"x"}'), '<6>{"msg":"x"}');
});
