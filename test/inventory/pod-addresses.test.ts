// A pod's addresses are collected as a list of distinct addresses (not a Set,
// for memory at 100k pods): repeats inside one object, across two objects of
// the same pod and between a Pod and its CiliumEndpoint give each address once.
import test from 'ava';
import { loadManifestText } from '../../src/api/load-manifests.js';
import { buildInventory } from '../../src/inventory/build-inventory.js';
import { parseConfig } from '../../src/inventory/config.js';

const cfg = parseConfig('clusterName: prod\n', '/etc/nodewall/nodewall.yaml');

function podAddresses(yaml: string): Record<string, readonly string[]> {
  const load = loadManifestText(yaml, 'cluster.yaml');
  const { inventory } = buildInventory(load.objects, cfg, { nodeName: 'node-a', localAddresses: ['192.0.2.1'] });
  return Object.fromEntries(inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p.addresses]));
}

const pod = (name: string, ips: readonly string[]): string =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: shop}\nspec: {nodeName: node-a}\n` +
  `status:\n  phase: Running\n  podIPs:\n${ips.map((ip) => `  - ip: "${ip}"\n`).join('')}`;
const endpoint = (name: string, addressing: string): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumEndpoint\nmetadata: {name: ${name}, namespace: shop}\nstatus: {networking: {addressing: ${addressing}}}\n`;

test('an address repeated in one Pod is kept once', (t) => {
  t.deepEqual(podAddresses(pod('a', ['2001:db8:1::5', '198.51.100.5', '2001:db8:1::5', '198.51.100.5'])), { 'shop/a': ['198.51.100.5', '2001:db8:1::5'] });
});

test('the same Pod twice: the addresses of both, each once, sorted', (t) => {
  const yaml = [pod('a', ['198.51.100.9', '198.51.100.5']), pod('a', ['198.51.100.5', '2001:db8:1::7', '198.51.100.6'])].join('---\n');
  t.deepEqual(podAddresses(yaml), { 'shop/a': ['198.51.100.5', '198.51.100.6', '198.51.100.9', '2001:db8:1::7'] });
});

test('a CiliumEndpoint adds the addresses its Pod does not have, each once; alone it gives a pod of its own', (t) => {
  const yaml = [
    pod('a', ['198.51.100.5']),
    endpoint('a', '[{ipv4: 198.51.100.5, ipv6: "2001:db8:1::5"}, {ipv4: 198.51.100.5}]'),
    endpoint('b', '[{ipv4: 198.51.100.8}, {ipv4: 198.51.100.8, ipv6: "2001:db8:1::8"}]'),
  ].join('---\n');
  t.deepEqual(podAddresses(yaml), { 'shop/a': ['198.51.100.5', '2001:db8:1::5'], 'shop/b': ['198.51.100.8', '2001:db8:1::8'] });
});
