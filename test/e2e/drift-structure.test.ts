// The cheap structural listing (drift.ts structureState) against the real nft, in a lab namespace: what it
// sees (a chain or set added or removed, a base chain's policy, the table gone) and what it leaves to the
// full check (set elements, a rule edited inside a chain).

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { structureState, tableState } from '../../src/agent/drift.js';
import { Lab, nftPath } from './lab.js';

test('structureState: chains and set declarations of our table only; the full tableState sees rule edits', async (t) => {
  const lab = await Lab.create(t, 'drs');
  const dir = await mkdtemp(join(tmpdir(), 'nw-drs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // nft run inside the lab's node namespace, as the agent would run it on the host.
  const nft = join(dir, 'nft');
  await writeFile(nft, `#!/bin/sh\nexec ip netns exec ${lab.nodeNs} ${nftPath} "$@"\n`);
  await chmod(nft, 0o755);
  await lab.nft(['-f', '-'], [
    'table inet nodewall {',
    '  set peers { type ipv4_addr; flags interval; elements = { 192.0.2.0/28, 198.51.100.7 }; }',
    '  chain pol-a { ip saddr @peers tcp dport 22 accept; }',
    '  chain input { type filter hook input priority 0; policy accept; jump pol-a; }',
    '}',
    'table inet other { chain x { type filter hook output priority 0; policy accept; }; }',
  ].join('\n'));
  const s0 = await structureState(nft, 'nodewall');
  const f0 = await tableState(nft, 'nodewall');
  t.true(s0.present && f0.present);
  const hash = async () => {
    const s = await structureState(nft, 'nodewall');
    return s.present ? s.hash : undefined;
  };
  const full = async () => {
    const s = await tableState(nft, 'nodewall');
    return s.present ? s.hash : undefined;
  };
  const h0 = s0.present ? s0.hash : '';
  // Another table's chains do not count, nor its sets (nft 1.0.6 lists every inet table's sets for
  // `list sets table inet nodewall`: a temporary table of a make-before-break replace, firewalld's table).
  await lab.nft(['add', 'chain', 'inet', 'other', 'y']);
  t.is(await hash(), h0);
  await lab.nft(['add', 'set', 'inet', 'other', 'theirs', '{ type ipv4_addr; }']);
  t.is(await hash(), h0);
  // Elements: neither listing shows them.
  await lab.nft(['add', 'element', 'inet', 'nodewall', 'peers', '{ 203.0.113.9 }']);
  t.is(await hash(), h0);
  // A rule added inside a chain: only the full listing shows it.
  await lab.nft(['add', 'rule', 'inet', 'nodewall', 'pol-a', 'udp', 'dport', '53', 'accept']);
  t.is(await hash(), h0);
  t.not(await full(), f0.present ? f0.hash : '');
  // A chain added, a set added, the base chain's policy changed, the table gone: all seen.
  await lab.nft(['add', 'chain', 'inet', 'nodewall', 'pol-b']);
  const h1 = await hash();
  t.not(h1, h0);
  await lab.nft(['add', 'set', 'inet', 'nodewall', 'more', '{ type ipv4_addr; }']);
  const h2 = await hash();
  t.not(h2, h1);
  await lab.nft(['add', 'chain', 'inet', 'nodewall', 'input', '{ type filter hook input priority 0; policy drop; }']);
  t.not(await hash(), h2);
  await lab.nft(['flush', 'ruleset']);
  const gone = await structureState(nft, 'nodewall');
  t.false(gone.present);
});
