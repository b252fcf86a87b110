import { fc, testProp } from '@fast-check/ava';
import { stringify } from 'yaml';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { validatePolicy } from '../../src/api/validate.js';
import type { Problem } from '../../src/api/problem.js';
import { defaultEngineConfig } from '../../src/inventory/types.js';

const wellPlaced = (p: Problem): boolean => p.pos.line >= 1 && p.pos.col >= 1 && p.message !== '';

const yamlish = fc.stringMatching(/^[a-zA-Z0-9 :\-[\]{}"',#&*!|>\n]{0,200}$/);

testProp('any text: the loader never throws and every problem has a position', [yamlish], (t, text) => {
  const r = loadManifestText(`apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n${text}`, 'x.yaml');
  t.true(r.problems.every(wellPlaced));
  for (const doc of r.policies) t.true(validatePolicy(doc, defaultEngineConfig).every(wellPlaced));
}, { numRuns: 300 });

const value = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer({ min: -5, max: 70000 }), fc.constantFrom('', 'TCP', 'world', '10.0.0.0/8', '80', 'x'),
  fc.constant([]), fc.constant({}),
);
const PEER_KEYS = ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromNodes', 'toPorts', 'icmps', 'fromCIRD'];
const peerRule = fc.dictionary(fc.constantFrom(...PEER_KEYS), fc.oneof(value, fc.array(fc.oneof(value,
  fc.dictionary(fc.constantFrom('ports', 'port', 'protocol', 'cidr', 'except', 'fields', 'type', 'matchLabels'), value)), { maxLength: 3 })));
const rule = fc.record({
  nodeSelector: fc.oneof(fc.constant({}), value),
  ingress: fc.oneof(value, fc.array(peerRule, { maxLength: 3 })),
}, { requiredKeys: [] });

testProp('any rule shape: validation never throws; errors point at existing positions', [rule], (t, spec) => {
  const obj = { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'p' }, spec };
  for (const text of [stringify(obj), JSON.stringify(obj, null, 1)]) {
    const r = loadManifestText(text, 'p');
    t.is(r.policies.length, 1);
    const ps = validatePolicy(r.policies[0]!, defaultEngineConfig);
    t.true(ps.every(wellPlaced));
    if (JSON.stringify(spec).includes('fromCIRD')) t.true(ps.some((p) => p.code === 'decode/unknown-field'));
  }
}, { numRuns: 300 });

testProp('YAML and JSON spellings decode to the same rules and hash', [rule], (t, spec) => {
  const obj = { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'p' }, spec };
  const [a] = loadManifestText(stringify(obj), 'a.yaml').policies;
  const [b] = loadManifestText(JSON.stringify(obj), 'b.json').policies;
  t.deepEqual(a?.rules, b?.rules);
  t.is(a?.hash, b?.hash);
  t.deepEqual(a?.decodeProblems?.map((p) => [p.field, p.message]), b?.decodeProblems?.map((p) => [p.field, p.message]));
}, { numRuns: 200 });
