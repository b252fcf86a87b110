import test from 'ava';
import { UsageError, parseLabelList, parseNodeName } from '../../src/cli/options.js';

test('--node-labels: Kubernetes labels only; a label named constructor is kept as an own key', (t) => {
  const l = parseLabelList('constructor=yes, toString=,node-role.kubernetes.io/control-plane=');
  t.deepEqual(Object.entries(l), [['constructor', 'yes'], ['toString', ''], ['node-role.kubernetes.io/control-plane', '']]);
  t.is(Object.getPrototypeOf(l), Object.prototype);
  for (const [text, why] of [
    ['__proto__=x', /invalid label key: Invalid value: "__proto__"/],
    ['a\u0000b=x', /invalid label key: Invalid value: "a\\u0000b": contains the control character U\+0000/],
    ['zone=a\u001bb', /label zone: invalid label value: Invalid value: "a\\u001bb"/],
    [`zone=${'x'.repeat(64)}`, /must be no more than 63 characters/],
    ['=x', /is not key=value/],
  ] as const) {
    const err = t.throws(() => parseLabelList(text), { instanceOf: UsageError }, text);
    t.regex(err?.message ?? '', why);
    t.notRegex(err?.message ?? '', /[\u0000-\u001f]/);
  }
});

test('--node: a Kubernetes node name', (t) => {
  t.is(parseNodeName(undefined), undefined);
  t.is(parseNodeName('worker-1.example.com'), 'worker-1.example.com');
  for (const bad of ['node\u0000a', 'Node-A', '', 'a\nb']) {
    const err = t.throws(() => parseNodeName(bad), { instanceOf: UsageError }, JSON.stringify(bad));
    t.regex(err?.message ?? '', /^--node: Invalid value: /);
    t.notRegex(err?.message ?? '', /[\u0000-\u001f]/);
  }
});
