// maxSetElements (issue 8, defect 8): a rule's CIDR field becomes one nft set, so a policy whose
// field would make a set over the limit is invalid, with an error naming the policy and the field.

import test from 'ava';
import { parseConfig } from '../../src/inventory/config.js';
import { InputError } from '../../src/api/problem.js';
import { errorsOf, hostPolicy, validateText } from './manifests.js';

function cidrs(n: number): string {
  return Array.from({ length: n }, (_, i) => `203.0.113.${i}/32`).join(', ');
}

test('a fromCIDR list over maxSetElements is an error on that field; at the limit it is valid', (t) => {
  const at = validateText(hostPolicy(`ingress:\n- fromCIDR: [${cidrs(4)}]\n`), { maxSetElements: 4 });
  t.deepEqual(errorsOf(at), []);
  const over = errorsOf(validateText(hostPolicy(`ingress:\n- toPorts: [{ports: [{port: "22"}]}]\n- fromCIDR: [${cidrs(5)}]\n`), { maxSetElements: 4 }));
  t.is(over.length, 1);
  t.is(over[0]?.field, 'spec.ingress[1].fromCIDR');
  t.is(over[0]?.policy, 't');
  t.is(over[0]?.code, 'set-too-large');
  t.regex(over[0]?.message ?? '', /^5 CIDRs would make one nft set larger than maxSetElements \(4\); .*raise maxSetElements in the nodewall config$/);
  t.is(errorsOf(validateText(hostPolicy(`egress:\n- toCIDR: [${cidrs(5)}]\n`), { maxSetElements: 4 }))[0]?.field, 'spec.egress[0].toCIDR');
});

test('CIDRSet excepts count by what they can split a cidr into', (t) => {
  // 10.0.0.0/8 minus a /16 is up to 8 prefixes.
  const body = 'ingress:\n- fromCIDRSet:\n  - cidr: 10.0.0.0/8\n    except: [10.1.0.0/16]\n';
  t.deepEqual(errorsOf(validateText(hostPolicy(body), { maxSetElements: 8 })), []);
  const over = errorsOf(validateText(hostPolicy(body), { maxSetElements: 7 }));
  t.is(over[0]?.field, 'spec.ingress[0].fromCIDRSet');
  t.regex(over[0]?.message ?? '', /up to 8 prefixes/);
  // A hostile except list is bounded by arithmetic, not by computing the split.
  const hostile = `ingress:\n- fromCIDRSet:\n  - cidr: 0.0.0.0/1\n    except: [${Array.from({ length: 5000 }, (_, i) => `10.${i >> 8}.${i & 255}.1/32`).join(', ')}]\n`;
  t.regex(errorsOf(validateText(hostPolicy(hostile), { maxSetElements: 100_000 }))[0]?.message ?? '', /up to 155000 prefixes/);
  t.deepEqual(errorsOf(validateText(hostPolicy(hostile), { maxSetElements: 155_000 })), []);
});

test('maxSetElements is a config key: default 250000, bad values name the key', (t) => {
  t.is(parseConfig('', 'c.yaml').maxSetElements, 250_000);
  t.is(parseConfig('maxSetElements: 1000', 'c.yaml').maxSetElements, 1000);
  const err = t.throws(() => parseConfig('maxSetElements: 0', 'c.yaml'), { instanceOf: InputError });
  t.regex(err?.problems[0]?.message ?? '', /must be a whole number from 1 to 10000000/);
  t.is(err?.problems[0]?.field, 'maxSetElements');
});

test('counts, bytes and milliseconds must be whole numbers', (t) => {
  for (const key of ['maxSetElements', 'maxFileBytes', 'debounceMs']) {
    const err = t.throws(() => parseConfig(`${key}: 1000.5`, 'c.yaml'), { instanceOf: InputError });
    t.is(err?.problems[0]?.field, key);
    t.regex(err?.problems[0]?.message ?? '', /must be a whole number/);
  }
  t.is(parseConfig('driftCheckSeconds: 0.5', 'c.yaml').driftCheckSeconds, 0.5);
});
