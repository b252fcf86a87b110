// Defence in depth: whatever names reach the renderer (validation refuses them long before), the
// script carries no control character and no unescaped quote, and nft reads all of it.
import test from 'ava';
import { checkScript } from '../../src/nft/nft-exec.js';
import { renderPlan } from '../../src/nft/render.js';
import { commentText } from '../../src/nft/render-sets.js';
import * as b from '../helpers/model-builders.js';
import { throwawayNetns } from './netns.js';

const HOSTILE = 'p\u0000nul "quote" back\\slash\nnew\rline \u001b[2J esc \u007f del \u0085 nel \u2028 sep \u202e bidi \ud800 lone';

function hostileModel() {
  const world = b.identity('world', ['0.0.0.0/0'], ['::/0'], { kind: 'entity', exclude: 'cluster', label: `world ${HOSTILE}` });
  const pods = b.identity('pods', ['198.51.100.5/32'], [], { kind: 'endpoints', label: `endpoints:{app=${HOSTILE}}` });
  return b.model({
    node: `node ${HOSTILE}`,
    sets: [world, pods],
    ingress: b.enforced([
      b.allow('world', [b.tcp(22)], `spec.ingress[0] ${HOSTILE}`, HOSTILE),
      b.deny('pods', [b.anyL4], 'spec.ingressDeny[0]', `x${HOSTILE}`),
    ]),
    egress: b.enforced([b.allow('pods', [b.udp(53)], 'spec.egress[0]', HOSTILE)], false),
  });
}

// The script's own layout uses tab and newline only.
const FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

test('commentText removes every control character, quote and backslash', (t) => {
  const c = commentText(HOSTILE);
  t.notRegex(c, FORBIDDEN);
  t.notRegex(c, /["\\\n]/);
  t.true(Buffer.byteLength(c) <= 128);
});

for (const mode of ['enforce', 'audit', 'dry-run'] as const) {
  test(`${mode}: hostile names leave no control character or stray quote in the script, and nft -c accepts it`, async (t) => {
    const plan = renderPlan(hostileModel(), { table: 'nodewall', mode });
    for (const script of [plan.script, plan.structureScript]) {
      t.notRegex(script, FORBIDDEN);
      for (const line of script.split('\n')) {
        // Every line has an even number of double quotes: no string runs into the next token or line.
        t.is(((line.match(/"/g) ?? []).length) % 2, 0, line);
      }
    }
    for (const r of plan.rules) t.notRegex(r.comment, /["\\]|[\u0000-\u001f]/);
    const ns = await throwawayNetns(t, 'hostile');
    await checkScript('/usr/sbin/nft', plan.script, { netns: ns });
    t.pass();
  });
}
