// Staged policies: the annotation and the config key, the model's staged part, and the proof on the
// model/render side that a staged policy never changes what is enforced (kernel rules nor verdicts).

import test from 'ava';
import fc from 'fast-check';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { formatProblem, InputError } from '../../src/api/problem.js';
import { mergeConfig, parseConfig } from '../../src/inventory/config.js';
import { stripObject } from '../../src/inventory/sources/kube-kinds.js';
import type { NodewallConfig } from '../../src/inventory/types.js';
import { renderPlan } from '../../src/nft/render.js';
import { stagedComment } from '../../src/nft/render-staged.js';
import { buildState, StateBuilder, type State } from '../../src/pipeline.js';
import { stagedRecordDirections, stagedView } from '../../src/policy/staged.js';
import { evaluate } from '../../src/verdict/evaluate.js';
import { stagedPhrase, stagedVerdicts } from '../../src/verdict/staged-verdict.js';
import type { Flow } from '../../src/verdict/types.js';

const ccnp = (name: string, body: string, annotation?: string) => [
  'apiVersion: cilium.io/v2',
  'kind: CiliumClusterwideNetworkPolicy',
  'metadata:',
  `  name: ${name}`,
  ...(annotation === undefined ? [] : ['  annotations:', `    nodewall.io/stage: ${annotation}`]),
  'spec:',
  '  nodeSelector: {}',
  body,
].join('\n');

const base = ccnp('base', '  ingress:\n    - fromEntities: [world]\n      toPorts: [{ports: [{port: "22", protocol: TCP}, {port: "8080", protocol: TCP}]}]');
const stagedDeny = (annotation?: string) =>
  ccnp('tighten', '  ingressDeny:\n    - fromCIDR: [203.0.113.0/25]\n      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]\n  egress:\n    - toCIDR: [198.51.100.0/24]', annotation);

const config = (extra = ''): NodewallConfig => mergeConfig(parseConfig(`mode: enforce\nnodeName: node-a\n${extra}`, 'c.yaml'), {});

function state(text: string, cfg = config()): State {
  return buildState({ config: cfg, load: loadManifestText(text, 'p.yaml'), nodeName: 'node-a' });
}

test('the annotation stages a policy: the enforced model leaves it out, the staged part has it', (t) => {
  const s = state(`${base}\n---\n${stagedDeny('audit')}`);
  t.deepEqual(s.problems.filter((p) => p.severity === 'error'), []);
  t.deepEqual(s.model.selectedPolicies, ['base']);
  t.false(s.model.ingress.entries.some((e) => e.policy === 'tighten'));
  t.false(s.model.egress.enforced, 'the staged egress allow does not switch egress enforcement on');
  t.deepEqual(s.model.staged?.policies, ['tighten']);
  t.true(s.model.staged?.ingress.entries.some((e) => e.policy === 'tighten' && e.action === 'deny'));
  t.true(s.model.staged?.egress.enforced);
  t.deepEqual(stagedRecordDirections(s.model), ['ingress', 'egress']);
  t.deepEqual(s.valid.map((d) => d.name).sort(), ['base', 'tighten'], 'a staged policy is valid and listed');
});

test('stage: enforce and no annotation are the same; the config list stages by name', (t) => {
  const plain = state(`${base}\n---\n${stagedDeny()}`);
  const explicit = state(`${base}\n---\n${stagedDeny('enforce')}`);
  t.is(plain.model.staged, undefined);
  t.deepEqual(explicit.model.ingress, plain.model.ingress);
  const byConfig = state(`${base}\n---\n${stagedDeny()}`, config('stagedPolicies: [tighten]\n'));
  t.deepEqual(byConfig.model.staged?.policies, ['tighten']);
  t.deepEqual(byConfig.model.ingress, state(base).model.ingress);
});

test('an unknown stage value is an error at the annotation, naming file:line and the field path; the policy is neither enforced nor staged', (t) => {
  const s = state(`${base}\n---\n${stagedDeny('audti')}`);
  const errors = s.problems.filter((p) => p.severity === 'error');
  t.is(errors.length, 1);
  t.is(errors[0]?.code, 'stage/unknown');
  t.is(formatProblem(errors[0]!).split(': error: ')[0], 'p.yaml:16:5');
  t.regex(formatProblem(errors[0]!), /policy tighten: metadata\.annotations\["nodewall\.io\/stage"\]: unknown stage "audti": must be "audit"/);
  t.deepEqual(s.model.selectedPolicies, ['base']);
  t.is(s.model.staged, undefined);
  const nonString = state(`${base}\n---\n${stagedDeny('true')}`);
  t.regex(formatProblem(nonString.problems.find((p) => p.code === 'stage/unknown')!), /unknown stage a boolean/);
  const badMap = state(base.replace('  name: base', '  name: base\n  annotations: [x]'));
  t.true(badMap.problems.some((p) => p.severity === 'error' && p.field === 'metadata.annotations'));
});

test('the Kubernetes source keeps the stage annotation (and no other) on a CCNP', (t) => {
  const raw = {
    apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy',
    metadata: { name: 'tighten', resourceVersion: '7', annotations: { 'nodewall.io/stage': 'audit', 'kubectl.kubernetes.io/last-applied-configuration': '{...}' } },
    spec: { nodeSelector: {}, ingressDeny: [{ fromCIDR: ['203.0.113.0/25'] }] },
  };
  const kept = stripObject('ccnp', raw);
  t.deepEqual(kept.metadata['annotations'], { 'nodewall.io/stage': 'audit' });
  const doc = loadManifestText(JSON.stringify(kept), 'k8s:ccnp/tighten').policies[0];
  t.is(doc?.stage, 'audit');
  const without = stripObject('ccnp', { ...raw, metadata: { name: 'x' } });
  t.is(without.metadata['annotations'], undefined);
});

test('config stagedPolicies: names checked with file:line:col, duplicates refused', (t) => {
  const problems = (text: string): string[] => {
    try {
      parseConfig(text, 'c.yaml');
      return [];
    } catch (e) {
      return e instanceof InputError ? e.problems.map(formatProblem) : [String(e)];
    }
  };
  t.deepEqual(config('stagedPolicies: [a, b.c]\n').stagedPolicies, ['a', 'b.c']);
  t.deepEqual(problems('stagedPolicies: [ok, Bad_Name]\n'), [`c.yaml:1:22: error: stagedPolicies[1]: not a policy name: ${problems('stagedPolicies: [Bad_Name]\n')[0]?.split('not a policy name: ')[1] ?? ''}`]);
  t.deepEqual(problems('stagedPolicies: [a, a]\n'), ['c.yaml:1:21: error: stagedPolicies[1]: "a" is listed twice']);
  t.is(problems('stagedPolicies: a\n').length, 1);
});

test('the kernel ruleset of a model with staged policies has the same verdict rules as without them, plus record rules without a verdict', (t) => {
  const without = renderPlan(state(base).model, { table: 'nodewall', mode: 'enforce' });
  for (const mode of ['enforce', 'audit'] as const) {
    const s = state(`${base}\n---\n${stagedDeny('audit')}`);
    const plan = renderPlan(s.model, { table: 'nodewall', mode });
    const ref = mode === 'enforce' ? without : renderPlan(state(base).model, { table: 'nodewall', mode });
    const records = plan.rules.filter((r) => r.comment.startsWith(stagedComment));
    t.is(records.length, 8, 'two families x two rules (icmp, other) x two directions');
    for (const r of records) t.notRegex(r.text, /\b(accept|drop|reject|goto|jump|return)\b/);
    t.deepEqual(plan.rules.filter((r) => !r.comment.startsWith(stagedComment)), ref.rules);
    t.deepEqual([...plan.sets.keys()], [...ref.sets.keys()], 'identity sets of the staged policy are not loaded');
    t.regex(plan.script, /set nw_staged_in_v4 \{[^}]*flags dynamic,timeout[^}]*comment "nodewall staged ingress: tighten"/);
  }
  t.notRegex(without.script, /nw_staged/);
});

test('property: a staged policy never changes the enforced verdict; the staged verdict equals enforcing it', (t) => {
  const s = state(`${base}\n---\n${stagedDeny('audit')}`);
  const plain = state(base).model;
  const enforcedToo = state(`${base}\n---\n${stagedDeny()}`).model;
  const flow = fc.record({
    direction: fc.constantFrom('ingress' as const, 'egress' as const),
    peer: fc.constantFrom('203.0.113.9', '203.0.113.200', '198.51.100.7', '192.0.2.77', '2001:db8::9'),
    proto: fc.constantFrom('tcp' as const, 'udp' as const),
    port: fc.constantFrom(22, 8080, 53, 443),
  });
  fc.assert(fc.property(flow, (f: Flow) => {
    const v = stagedVerdicts(s.model, f, evaluate);
    return v.enforced.verdict === evaluate(plain, f).verdict && v.staged?.verdict === evaluate(enforcedToo, f).verdict &&
      v.changed === (v.enforced.verdict !== v.staged?.verdict);
  }), { numRuns: 300 });
  const v = stagedVerdicts(s.model, { direction: 'ingress', peer: '203.0.113.9', proto: 'tcp', port: 8080 }, evaluate);
  t.true(v.changed);
  t.is(stagedPhrase(v.staged!), 'would deny (staged: tighten spec.ingressDeny[0])');
  t.deepEqual(stagedView(s.model)?.selectedPolicies, ['base', 'tighten']);
});

test('StateBuilder (the agent, incremental) gives the same staged model as buildState across policy and pod changes', (t) => {
  const b = new StateBuilder();
  const cfg = config('clusterPodCIDRs: [198.51.100.0/24]\n');
  const toPods = ccnp('to-web', '  egress:\n    - toEndpoints: [{matchLabels: {app: web}}]\n      toPorts: [{ports: [{port: "443", protocol: TCP}]}]', 'audit');
  const pod = (name: string, ip: string, app: string) =>
    `---\napiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: default, labels: {app: ${app}}}\nspec: {nodeName: node-b}\nstatus: {phase: Running, podIPs: [{ip: ${ip}}]}\n`;
  const steps = [
    base,
    `${base}\n---\n${stagedDeny('audit')}\n---\n${toPods}\n${pod('w1', '198.51.100.10', 'web')}`,
    `${base}\n---\n${stagedDeny('audit')}\n---\n${toPods}\n${pod('w1', '198.51.100.11', 'web')}${pod('w2', '198.51.100.12', 'web')}`,
    `${base}\n---\n${stagedDeny()}\n---\n${toPods}\n${pod('w2', '198.51.100.12', 'web')}`,
    `${base}\n---\n${stagedDeny('audit')}\n---\n${toPods}\n${pod('w2', '198.51.100.12', 'db')}`,
    base,
  ];
  let staged = 0;
  for (const text of steps) {
    const input = { config: cfg, load: loadManifestText(text, 'p.yaml'), nodeName: 'node-a' };
    const got = b.build(input);
    const want = buildState(input);
    t.deepEqual(JSON.parse(JSON.stringify(got.model)), JSON.parse(JSON.stringify(want.model)));
    if (got.model.staged !== undefined) staged++;
  }
  t.is(staged, 4);
  const s = buildState({ config: cfg, load: loadManifestText(steps[2]!, 'p.yaml'), nodeName: 'node-a' });
  const set = s.model.staged?.egress.entries.find((e) => e.policy === 'to-web')?.peer;
  t.deepEqual(set === undefined || set === null ? undefined : s.model.staged?.sets[set]?.v4, ['198.51.100.11/32', '198.51.100.12/32']);
});

test('lint sees the enforced ruleset: a staged allow does not hide a lockout of the policies in force; a staged lockout is reported', (t) => {
  const denyAll = ccnp('lock', '  ingress:\n    - fromEntities: [world]\n      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]');
  const sshAllow = (a?: string) => ccnp('ssh', '  ingress:\n    - fromEntities: [world]\n      toPorts: [{ports: [{port: "22", protocol: TCP}]}]', a);
  const lockout = (s: State) => s.problems.filter((p) => /locks you out/.test(p.message));
  t.is(lockout(state(`${denyAll}\n---\n${sshAllow('audit')}`)).length, 1, 'enforced: no SSH, staged SSH allow does not count');
  t.is(lockout(state(`${denyAll}\n---\n${sshAllow()}`)).length, 0);
  const webOnly = ccnp('web-only', '  ingress:\n    - fromEntities: [world]\n      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]', 'audit');
  const staged = state(webOnly);
  t.false(staged.model.ingress.enforced);
  t.is(lockout(staged).length, 1, 'a staged policy whose default deny would cut SSH is reported');
});
