// The drift hash predicted from a full load's structure script in a scratch namespace
// (predicted-table-hash.ts) against the real thing: the terse listing of the table as loaded, read back
// from a lab namespace, for every corpus policy in every mode. And the guard: a "namespace" that is not
// fresh (it holds tables) gets nothing loaded.

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { LoadResult } from '../../src/api/load-manifests.js';
import { tableState } from '../../src/agent/drift.js';
import { applyModel, type PredictableLoad } from '../../src/nft/apply.js';
import { predictTableHash } from '../../src/agent/predicted-table-hash.js';
import { loadManifestPaths } from '../../src/inventory/load-manifest-files.js';
import type { DropRecordSettings, RunMode } from '../../src/inventory/types.js';
import { renderPlan } from '../../src/nft/render.js';
import { buildState } from '../../src/pipeline.js';
import { caseConfig, CONFORMANCE_NODE, loadBaseCluster, type ConformanceCase } from '../helpers/conformance.js';
import { corpusDir } from '../api/corpus.js';
import { Lab, nftPath } from './lab.js';

const files = readdirSync(corpusDir).filter((f) => f.endsWith('.yaml')).sort();

async function corpusModel(file: string) {
  const own = await loadManifestPaths([join(corpusDir, file)]);
  const cluster = loadBaseCluster();
  const load: LoadResult = { policies: [...own.policies], objects: [...cluster.objects, ...own.objects], problems: [...own.problems] };
  const flags = file === 'cilium-allow-extended-protocols.yaml' ? { enableExtendedIPProtocols: true } : {};
  const config = caseConfig({ name: file, file, line: 1, config: flags } as unknown as ConformanceCase);
  return buildState({ config, load, nodeName: CONFORMANCE_NODE, nodeLabels: { status: 'lockdown', type: 'worker' } }).model;
}

const variants: readonly { mode: RunMode; dropRecords?: DropRecordSettings }[] = [
  { mode: 'enforce' },
  { mode: 'audit' },
  { mode: 'enforce', dropRecords: { size: 1024, timeoutSeconds: 600, log: true } },
];

test('predicted hash = hash of the live table read back after the full load, corpus x modes', async (t) => {
  const lab = await Lab.create(t, 'pth');
  // The agent's nft runs in the lab's node namespace: a wrapper for the read-back only (the prediction needs
  // the nft binary itself and makes its own namespace).
  const dir = await mkdtemp(join(tmpdir(), 'nw-pth-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const nftInLab = join(dir, 'nft');
  await writeFile(nftInLab, `#!/bin/sh\nexec ip netns exec ${lab.nodeNs} ${nftPath} "$@"\n`);
  await chmod(nftInLab, 0o755);
  let compared = 0;
  const seen = new Set<string>();
  for (const file of files) {
    let model;
    try {
      model = await corpusModel(file);
    } catch {
      t.fail(`${file} does not build`);
      continue;
    }
    for (const v of variants) {
      const r = renderPlan(model, { table: 'nodewall', mode: v.mode, dropRecords: v.dropRecords });
      await lab.nft(['-f', '-'], r.script);
      const live = await tableState(nftInLab, 'nodewall');
      const predicted = await predictTableHash({ nftPath, table: 'nodewall', structureScript: r.structureScript });
      t.true(live.present, `${file} ${JSON.stringify(v)}: loaded`);
      t.is(predicted.hash, live.present ? live.hash : 'absent', `${file} ${JSON.stringify(v)}: ${'skipped' in predicted ? predicted.skipped : ''}`);
      if (predicted.hash !== undefined) seen.add(predicted.hash);
      compared++;
    }
  }
  t.is(compared, 3 * files.length, `compared ${compared}`);
  // Different rulesets give different hashes (the prediction is not a constant).
  t.true(seen.size > compared / 3, `${seen.size} distinct hashes`);
});

test('a staged cold start (applyModel, hooks last) lists as predicted from the structure script it hands onFullLoad, corpus x modes', async (t) => {
  const lab = await Lab.create(t, 'pthc');
  const dir = await mkdtemp(join(tmpdir(), 'nw-pthc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const nftInLab = join(dir, 'nft');
  await writeFile(nftInLab, `#!/bin/sh\nexec ip netns exec ${lab.nodeNs} ${nftPath} "$@"\n`);
  await chmod(nftInLab, 0o755);
  let compared = 0;
  let staged = 0;
  for (const file of files) {
    const model = await corpusModel(file);
    for (const v of variants) {
      await lab.nft(['delete', 'table', 'inet', 'nodewall']).catch(() => undefined);
      let load: PredictableLoad | undefined;
      const r = await applyModel(model, {
        nftPath, table: 'nodewall', mode: v.mode, netns: lab.nodeNs, ...(v.dropRecords === undefined ? {} : { dropRecords: v.dropRecords }),
        onFullLoad: (l) => void (load = l),
      });
      if (load === undefined) return t.fail(`${file}: no onFullLoad for a cold start`);
      t.true(r.predictable);
      if (r.transactions > 1) staged++;
      const live = await tableState(nftInLab, 'nodewall');
      const predicted = await predictTableHash({ nftPath, table: 'nodewall', structureScript: load.structureScript });
      t.is(predicted.hash, live.present ? live.hash : 'absent', `${file} ${JSON.stringify(v)}: ${'skipped' in predicted ? predicted.skipped : ''}`);
      compared++;
    }
  }
  t.is(compared, 3 * files.length);
  t.true(staged > 0, `${staged} staged cold starts`);
});

test('a scratch namespace that already holds tables gets nothing loaded (no prediction, the table untouched)', async (t) => {
  const lab = await Lab.create(t, 'pthg');
  const dir = await mkdtemp(join(tmpdir(), 'nw-pthg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await lab.nft(['-f', '-'], 'table inet nodewall {\n\tchain input { type filter hook input priority 0; policy accept; }\n}\n');
  const nftInLab = join(dir, 'nft');
  await writeFile(nftInLab, `#!/bin/sh\nexec ip netns exec ${lab.nodeNs} ${nftPath} "$@"\n`);
  await chmod(nftInLab, 0o755);
  const before = await tableState(nftInLab, 'nodewall');
  // A namespace helper that does not make a new namespace: runs the commands in the lab's node namespace.
  const fakeUnshare = join(dir, 'unshare');
  await writeFile(fakeUnshare, `#!/bin/sh\n[ "$1" = --net ] && [ "$2" = -- ] || exit 9\nshift 2\nexec ip netns exec ${lab.nodeNs} "$@"\n`);
  await chmod(fakeUnshare, 0o755);
  const model = await corpusModel(files.find((f) => f !== 'cilium-test-ccnp-host-ingress-from-cidr-to-ports.yaml') ?? files[0]!);
  const r = renderPlan(model, { table: 'nodewall', mode: 'enforce' });
  const out = await predictTableHash({ nftPath, table: 'nodewall', structureScript: r.structureScript, unsharePath: fakeUnshare });
  t.is(out.hash, undefined);
  t.regex('skipped' in out ? out.skipped : '', /status 3/);
  t.deepEqual(await tableState(nftInLab, 'nodewall'), before, 'the lab table is as it was');
});
