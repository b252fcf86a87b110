import test from 'ava';
import { NftError, checkScript, errorLine, loadScript, runNft } from '../../src/nft/nft-exec.js';
import { throwawayNetns } from './netns.js';

const nft = '/usr/sbin/nft';

test('errorLine finds the script line nft reports', (t) => {
  t.is(errorLine('/dev/stdin:12:5-10: Error: syntax error, unexpected junk\nfoo\n'), 12);
  t.is(errorLine('-:3:1-2: Error: Could not process rule: No such file or directory'), 3);
  t.is(errorLine('Error: something without a position'), undefined);
});

test('a failing script is an NftError with argv, exit code, stderr and the offending line', async (t) => {
  const ns = await throwawayNetns(t, 'exec');
  const script = 'table inet x {\n\tchain c {\n\t\tbogus stuff here\n\t}\n}\n';
  const err = await t.throwsAsync(loadScript(nft, script, { netns: ns }), { instanceOf: NftError });
  t.is(err?.line, 3);
  t.is(err?.scriptLine?.trim(), 'bogus stuff here');
  t.is(err?.exitCode, 1);
  t.true(err?.argv.includes(nft));
  t.regex(err?.stderr ?? '', /Error/);
  t.regex(err?.message ?? '', /script line 3: bogus stuff here/);
});

test('check (-c) validates without committing; load commits', async (t) => {
  const ns = await throwawayNetns(t, 'exec');
  await checkScript(nft, 'table inet x {}\n', { netns: ns });
  t.is((await runNft(nft, ['list', 'tables'], { netns: ns })).stdout, '');
  await loadScript(nft, 'table inet x {}\n', { netns: ns });
  t.regex((await runNft(nft, ['list', 'tables'], { netns: ns })).stdout, /table inet x/);
});

test('a missing binary is an NftError with a cause', async (t) => {
  const err = await t.throwsAsync(runNft('/nonexistent/nft', ['list', 'tables']), { instanceOf: NftError });
  t.truthy(err?.cause);
  t.is(err?.exitCode, null);
});
