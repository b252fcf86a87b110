// Scrape the agent's /metrics from inside the lab's node namespace (where the agent listens) and wait for a
// condition on the parsed exposition, with a generous bound (a busy CI machine scrapes slowly).

import type { Lab } from './lab.js';
import { parseExposition, type Family } from '../helpers/prom-text.js';

export async function scrapeMetrics(lab: Lab): Promise<Map<string, Family>> {
  const script = `const r = await fetch('http://127.0.0.1:9964/metrics', { signal: AbortSignal.timeout(15000) });
if (r.status !== 200) throw new Error('GET /metrics: ' + r.status);
process.stdout.write(await r.text());`;
  return parseExposition(await lab.exec('node', process.execPath, ['--input-type=module', '-e', script]));
}

/** Scrape every 0.5 s until `pred` holds (a failed scrape keeps the last good one); throw after 60 s. */
export async function waitMetrics(lab: Lab, pred: (f: Map<string, Family>) => boolean, what: string): Promise<Map<string, Family>> {
  const deadline = Date.now() + 60_000;
  let last: Map<string, Family> | undefined;
  for (;;) {
    last = await scrapeMetrics(lab).catch(() => last);
    if (last !== undefined && pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`timeout waiting for metrics: ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
