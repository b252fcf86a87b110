// A throwaway network namespace for nft checks (never the host's ruleset).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';

function ip(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _out, stderr) => (err === null ? resolve() : reject(new Error(`ip ${args.join(' ')}: ${stderr}`, { cause: err }))));
  });
}

/** Creates `nwt-nft-<tag>-<rand>`, deleted in t.teardown even when the test fails. */
export async function throwawayNetns(t: ExecutionContext, tag: string): Promise<string> {
  const name = `nwt-nft-${tag}-${randomBytes(3).toString('hex')}`;
  await ip(['netns', 'add', name]);
  t.teardown(() => ip(['netns', 'del', name]).catch(() => undefined));
  return name;
}
