import test from 'ava';
import {
  dns1123LabelProblems, dns1123SubdomainProblems, invalidValue, labelKeyProblems, labelValueProblems, selectorKeyProblems,
} from '../../src/api/k8s-names.js';
import { escapeUnprintable, replaceUnprintable, shown, unprintableProblem } from '../../src/api/printable.js';

const HOSTILE = ['a\u0000b', 'a\nb', 'a\rb', 'a\tb', 'a\u001b[2Jb', 'a\u007fb', 'a\u0085b', 'a\u2028b', 'a\u202eb', 'a\ufffdb', 'a\ud800b'];

test('valid Kubernetes names and labels, including the forms Cilium and kubelet write', (t) => {
  for (const s of ['a', 'node-a', 'worker-1.example.com', '0', 'a'.repeat(253)]) t.deepEqual(dns1123SubdomainProblems(s), [], s);
  for (const s of ['kube-system', 'a'.repeat(63)]) t.deepEqual(dns1123LabelProblems(s), [], s);
  for (const k of ['app', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'node-role.kubernetes.io/control-plane',
    'kubernetes.io/metadata.name', 'io.kubernetes.pod.namespace', 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name',
    'App_Name.v2', `${'a'.repeat(253)}/${'b'.repeat(63)}`]) {
    t.deepEqual(labelKeyProblems(k), [], k);
  }
  for (const v of ['', 'x', 'My_Value.1-2', 'a'.repeat(63)]) t.deepEqual(labelValueProblems(v), [], v);
  for (const k of ['app', 'k8s:app', 'any:app', 'reserved:host', 'k8s:io.kubernetes.pod.namespace', 'io.kubernetes.pod.namespace',
    'k8s:io.cilium.k8s.policy.serviceaccount', 'node:node-role.kubernetes.io/control-plane', 'constructor', 'k8s:constructor']) {
    t.deepEqual(selectorKeyProblems(k), [], k);
  }
});

test('what Kubernetes refuses is refused, with its messages', (t) => {
  t.deepEqual(dns1123SubdomainProblems('Node-A'), [
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')",
  ]);
  t.deepEqual(dns1123SubdomainProblems('a'.repeat(254)), ['must be no more than 253 characters']);
  t.is(dns1123LabelProblems('a.b').length, 1);
  t.deepEqual(labelKeyProblems('-app'), [
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')",
  ]);
  t.deepEqual(labelKeyProblems('a'.repeat(64)), ['name part must be no more than 63 characters']);
  t.deepEqual(labelKeyProblems('/app'), ['prefix part must be non-empty']);
  t.deepEqual(labelKeyProblems('app/'), ['name part must be non-empty']);
  t.regex(labelKeyProblems('Example.com/app')[0] ?? '', /^prefix part a lowercase RFC 1123 subdomain/);
  t.regex(labelKeyProblems('a/b/c')[0] ?? '', /^a qualified name must consist of/);
  t.is(labelKeyProblems('__proto__').length, 1);
  t.deepEqual(labelValueProblems('a'.repeat(64)), ['must be no more than 63 characters']);
  t.regex(labelValueProblems('bad value')[0] ?? '', /^a valid label must be an empty string or consist of/);
  t.deepEqual(selectorKeyProblems('k8s:a:b'), ["a valid label key only support ':' character as a source separator with non empty value"]);
  t.deepEqual(selectorKeyProblems(':app'), ['label source should be a non empty string with only alphanumeric characters']);
  t.deepEqual(selectorKeyProblems('k8s:'), ['name part must be non-empty']);
  t.is(selectorKeyProblems('$host').length, 1);
});

test('control characters, bad UTF-8 and lone surrogates are named first, in every check', (t) => {
  for (const s of HOSTILE) {
    for (const check of [dns1123SubdomainProblems, dns1123LabelProblems, labelKeyProblems, labelValueProblems, selectorKeyProblems]) {
      const ps = check(s);
      t.true(ps.length >= 2, `${check.name} ${JSON.stringify(s)}`);
      t.regex(ps[0] ?? '', /^contains /, `${check.name} ${JSON.stringify(s)}`);
    }
  }
  t.is(unprintableProblem('a\u0000b'), 'contains the control character U+0000 at character 2');
  t.is(unprintableProblem('x\u202e'), 'contains the control character U+202E at character 2');
  t.is(unprintableProblem('a\ufffd'), 'contains U+FFFD, which stands for bytes that are not valid UTF-8');
  t.is(unprintableProblem('\udc00'), 'contains a lone UTF-16 surrogate (not valid Unicode text)');
  t.is(unprintableProblem('\ud83d\ude00 ok'), undefined, 'a surrogate pair is fine');
});

test('shown() and escapeUnprintable() never emit a control character; long values are cut', (t) => {
  for (const s of HOSTILE) {
    t.notRegex(shown(s), /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/, JSON.stringify(s));
    t.notRegex(escapeUnprintable(s), /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/, JSON.stringify(s));
    t.notRegex(replaceUnprintable(s, '?'), /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/, JSON.stringify(s));
  }
  t.is(shown('a\u0000b'), '"a\\u0000b"');
  t.is(shown('a\u0085b'), '"a\\u0085b"');
  t.is(escapeUnprintable('plain text'), 'plain text');
  const long = shown('x'.repeat(1000));
  t.true(long.length < 120);
  t.regex(long, /\.\.\." \(1000 characters\)$/);
  t.is(invalidValue('A', ['one', 'two']), 'Invalid value: "A": one; two');
});

test('checks stay linear on huge hostile strings', (t) => {
  // A regex with nested quantifiers could take minutes here; the checks must not.
  for (const s of ['a-'.repeat(200_000), `${'a.'.repeat(100_000)}-`, `${'a'.repeat(400_000)}!`]) {
    t.true(dns1123SubdomainProblems(s).length > 0);
    t.true(labelKeyProblems(s).length > 0);
    t.true(labelValueProblems(s).length > 0);
    t.true(selectorKeyProblems(s).length > 0);
  }
});
