// The `- kubernetes: {...}` entry of `sources` in nodewall.yaml (src/inventory/config.ts).

import test from 'ava';
import { InputError, formatProblem } from '../../../src/api/problem.js';
import { parseConfig } from '../../../src/inventory/config.js';

const file = '/etc/nodewall/nodewall.yaml';

function problems(text: string): string[] {
  try {
    parseConfig(text, file);
  } catch (e) {
    if (e instanceof InputError) return e.problems.map(formatProblem);
    throw e;
  }
  throw new Error('expected an InputError');
}

test('files and the API combined: paths stay paths, the kubernetes entry becomes `kubernetes`', (t) => {
  const c = parseConfig('sources:\n  - policies/\n  - kubernetes: {kubeconfig: kubeconfig, needPods: auto}\n  - /srv/extra.yaml\n', file);
  t.deepEqual(c.sources, ['/etc/nodewall/policies', '/srv/extra.yaml']);
  t.deepEqual(c.kubernetes, { kubeconfig: '/etc/nodewall/kubeconfig', needPods: 'auto' });
  const inCluster = parseConfig('sources: [{kubernetes: {inCluster: true}}]\n', file);
  t.deepEqual(inCluster.sources, []);
  t.deepEqual(inCluster.kubernetes, { inCluster: true });
  t.is(parseConfig('sources: [a.yaml]\n', file).kubernetes, undefined);
});

test('bad kubernetes entries are positioned config errors', (t) => {
  t.deepEqual(problems('mode: audit\nsources:\n  - kubernetes: {inCluster: yes please}\n'), [
    `${file}:3:29: error: sources[0].kubernetes.inCluster: must be true or false`,
  ]);
  t.deepEqual(problems('sources:\n  - kubernetes: {}\n  - kubernetes: {inCluster: true}\n'), [`${file}:3:5: error: sources[1]: only one kubernetes source is supported`]);
  t.deepEqual(problems('sources:\n  - {files: x}\n'), [
    `${file}:2:5: error: sources[0]: must be a manifest path or a map {kubernetes: {kubeconfig: PATH} | {inCluster: true}}`,
  ]);
  t.deepEqual(problems('sources:\n  - ""\n'), [`${file}:2:5: error: sources[0]: must not be empty`]);
});
