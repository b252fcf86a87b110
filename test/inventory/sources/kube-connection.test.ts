// Credentials without the client library (kube-connection.ts), against the loopback fake API
// server: in-cluster (token and CA files, re-read when they change), kubeconfig files (YAML,
// token, tokenFile, CA file or data, tls-server-name, insecure-skip-tls-verify, client
// certificates), the library fallback for exec plugins and merged $KUBECONFIG lists, the
// default lookup order, and errors that name the file and the field.

import { mkdir, rm, writeFile } from 'node:fs/promises';
import type { Agent } from 'node:https';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { KubeconfigError, openConnection, type Connection, type ConnectionRequest } from '../../../src/inventory/sources/kube-connection.js';
import { KubeApiError, KubeHttp } from '../../../src/inventory/sources/kube-http.js';
import { FakeApiServer } from '../../helpers/fake-apiserver.js';
import { seededFakeApi } from '../../helpers/fake-apiserver-cluster.js';

function setup(t: ExecutionContext): Promise<{ server: FakeApiServer; dir: string }> {
  return seededFakeApi(t, 'nw-kconn-');
}

/** Node names listed through `conn`. */
async function nodeNames(conn: Connection): Promise<string[]> {
  const list = (await new KubeHttp(conn).getJson('/api/v1/nodes', {})) as { items: { metadata: { name: string } }[] };
  return list.items.map((o) => o.metadata.name);
}

function kubeconfigYaml(server: FakeApiServer, cluster: string, user: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'current-context: main',
    'contexts:',
    '  - name: other',
    '    context: {cluster: nowhere, user: nobody}',
    '  - name: main',
    '    context: {cluster: fake, user: agent}',
    'clusters:',
    '  - name: fake',
    '    cluster:',
    `      server: ${server.url}`,
    ...cluster.split('\n').filter((l) => l !== '').map((l) => `      ${l}`),
    'users:',
    '  - name: agent',
    '    user:',
    ...user.split('\n').filter((l) => l !== '').map((l) => `      ${l}`),
    '',
  ].join('\n');
}

const caData = (server: FakeApiServer): string => `certificate-authority-data: ${Buffer.from(server.cert.cert).toString('base64')}`;

test('kubeconfig (YAML): CA file relative to the kubeconfig, token: our own client lists', async (t) => {
  const { server, dir } = await setup(t);
  await mkdir(join(dir, 'pki'));
  await writeFile(join(dir, 'pki', 'ca.pem'), server.cert.cert);
  const file = join(dir, 'kubeconfig');
  await writeFile(file, kubeconfigYaml(server, 'certificate-authority: pki/ca.pem', 'token: nodewall-test-token'));
  const conn = await openConnection({ kubeconfig: file });
  t.is(conn.via, 'own');
  t.is(conn.server, server.url);
  t.deepEqual((await nodeNames(conn)).sort(), ['node-a', 'node-b', 'node-c']);
  // A wrong token is the API's 401, with its Status message.
  await writeFile(file, kubeconfigYaml(server, caData(server), 'token: wrong'));
  const bad = await openConnection({ kubeconfig: file });
  const err = await t.throwsAsync(nodeNames(bad), { instanceOf: KubeApiError });
  t.is(err?.code, 401);
});

test('tokenFile is re-read when it changes (a rotated token), and the CA is checked', async (t) => {
  const { server, dir } = await setup(t);
  const file = join(dir, 'kubeconfig');
  await writeFile(join(dir, 'token'), 'first-token\n');
  server.setToken('first-token');
  await writeFile(file, kubeconfigYaml(server, caData(server), 'tokenFile: token'));
  const conn = await openConnection({ kubeconfig: file });
  t.is(conn.via, 'own');
  t.is((await nodeNames(conn)).length, 3);
  server.setToken('second-token');
  await t.throwsAsync(nodeNames(conn), { instanceOf: KubeApiError, message: /HTTP 401/ });
  await writeFile(join(dir, 'token'), 'second-token-and-longer\n');
  server.setToken('second-token-and-longer');
  t.is((await nodeNames(conn)).length, 3);
  // Without the CA, the self-signed server is refused by TLS.
  await writeFile(file, kubeconfigYaml(server, '', 'tokenFile: token'));
  await t.throwsAsync(nodeNames(await openConnection({ kubeconfig: file })), { message: /self[- ]signed|certificate/i });
});

test('tls-server-name is the name checked against the certificate; insecure-skip-tls-verify skips the check', async (t) => {
  const { server, dir } = await setup(t);
  const file = join(dir, 'kubeconfig');
  // The certificate names IP:127.0.0.1 and DNS:localhost.
  await writeFile(file, kubeconfigYaml(server, `${caData(server)}\ntls-server-name: localhost`, 'token: nodewall-test-token'));
  t.is((await nodeNames(await openConnection({ kubeconfig: file }))).length, 3);
  await writeFile(file, kubeconfigYaml(server, `${caData(server)}\ntls-server-name: api.example.com`, 'token: nodewall-test-token'));
  await t.throwsAsync(nodeNames(await openConnection({ kubeconfig: file })), { message: /api\.example\.com|altnames/ });
  await writeFile(file, kubeconfigYaml(server, 'insecure-skip-tls-verify: true', 'token: nodewall-test-token'));
  t.is((await nodeNames(await openConnection({ kubeconfig: file }))).length, 3);
});

test('client certificate and key (data or files) are given to the TLS agent', async (t) => {
  const { server, dir } = await setup(t);
  const file = join(dir, 'kubeconfig');
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  await writeFile(file, kubeconfigYaml(server, caData(server), `client-certificate-data: ${b64(server.cert.cert)}\nclient-key-data: ${b64(server.cert.key)}`));
  const conn = await openConnection({ kubeconfig: file });
  const agent = (await conn.requestOptions()).agent as Agent;
  t.is(String(agent.options.cert), server.cert.cert);
  t.is(String(agent.options.key), server.cert.key);
  // The handshake works with them configured (the fake server asks for a token, not a certificate).
  await t.throwsAsync(nodeNames(conn), { instanceOf: KubeApiError, message: /HTTP 401/ });
  await writeFile(join(dir, 'c.pem'), server.cert.cert);
  await writeFile(join(dir, 'k.pem'), server.cert.key);
  await writeFile(file, kubeconfigYaml(server, caData(server), 'client-certificate: c.pem\nclient-key: k.pem'));
  const fromFiles = (await (await openConnection({ kubeconfig: file })).requestOptions()).agent as Agent;
  t.is(String(fromFiles.options.key), server.cert.key);
});

test('an exec plugin is left to the client library (fallback), which gets the token and lists', async (t) => {
  const { server, dir } = await setup(t);
  const file = join(dir, 'kubeconfig');
  const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'nodewall-test-token' } });
  const exec = ['exec:', '  apiVersion: client.authentication.k8s.io/v1beta1', '  command: /bin/sh', '  args:', '    - -c', `    - ${JSON.stringify(`echo '${credential}'`)}`].join('\n');
  await writeFile(file, kubeconfigYaml(server, caData(server), exec));
  const conn = await openConnection({ kubeconfig: file });
  t.is(conn.via, 'library');
  t.is(conn.server, server.url);
  t.deepEqual((await nodeNames(conn)).sort(), ['node-a', 'node-b', 'node-c']);
  // Basic auth too (the fake server refuses it: the library sent it, our client did not decide).
  await writeFile(file, kubeconfigYaml(server, caData(server), 'username: u\npassword: p'));
  const basic = await openConnection({ kubeconfig: file });
  t.is(basic.via, 'library');
  await t.throwsAsync(nodeNames(basic), { instanceOf: KubeApiError, message: /HTTP 401/ });
});

test('in-cluster: service host and port from the environment, token and CA from the ServiceAccount directory, token re-read', async (t) => {
  const { server, dir } = await setup(t);
  const sa = join(dir, 'sa');
  await mkdir(sa);
  await writeFile(join(sa, 'ca.crt'), server.cert.cert);
  await writeFile(join(sa, 'token'), 'nodewall-test-token');
  const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(server.port) };
  const conn = await openConnection({ inCluster: true, env, serviceAccountDir: sa });
  t.is(conn.via, 'own');
  t.is(conn.server, server.url);
  t.is((await nodeNames(conn)).length, 3);
  // The kubelet rotates the bound token: the next request uses the new one.
  server.setToken('rotated');
  await writeFile(join(sa, 'token'), 'rotated');
  t.is((await nodeNames(conn)).length, 3);
  // A token file gone after a good read: the last good token stays (as client-go).
  await rm(join(sa, 'token'));
  t.is((await nodeNames(conn)).length, 3);
  // Never read at all: an error naming the file.
  const fresh = await openConnection({ inCluster: true, env, serviceAccountDir: sa });
  await t.throwsAsync(fresh.requestOptions(), { instanceOf: KubeconfigError, message: /in-cluster: token: cannot read .*token/ });
  await t.throwsAsync(openConnection({ inCluster: true, env: {}, serviceAccountDir: sa }), { instanceOf: KubeconfigError, message: /KUBERNETES_SERVICE_HOST: not set/ });
  await t.throwsAsync(openConnection({ inCluster: true, env: { KUBERNETES_SERVICE_HOST: '::1', KUBERNETES_SERVICE_PORT: '99999' }, serviceAccountDir: sa }), { message: /KUBERNETES_SERVICE_PORT/ });
  t.is((await openConnection({ inCluster: true, env: { KUBERNETES_SERVICE_HOST: '2001:db8::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: sa })).server, 'https://[2001:db8::1]:443');
});

test('default lookup: $KUBECONFIG (one file ours, several merged by the library), then ~/.kube/config, then in-cluster', async (t) => {
  const { server, dir } = await setup(t);
  const a = join(dir, 'a.yaml');
  await writeFile(a, kubeconfigYaml(server, caData(server), 'token: nodewall-test-token'));
  const b = join(dir, 'b.yaml');
  await writeFile(b, 'apiVersion: v1\nkind: Config\nclusters: [{name: extra, cluster: {server: "https://192.0.2.1"}}]\nusers: []\ncontexts: []\n');
  const home = join(dir, 'home');
  const sa = join(dir, 'sa');
  await mkdir(sa);
  const none: ConnectionRequest = { env: { HOME: home }, serviceAccountDir: sa };
  const one = await openConnection({ ...none, env: { HOME: home, KUBECONFIG: a } });
  t.deepEqual([one.via, one.source], ['own', a]);
  const merged = await openConnection({ ...none, env: { HOME: home, KUBECONFIG: `${a}:${b}` } });
  t.is(merged.via, 'library');
  t.is((await nodeNames(merged)).length, 3);
  // One of several missing, or not a kubeconfig the library reads: an error naming that file.
  await t.throwsAsync(openConnection({ ...none, env: { HOME: home, KUBECONFIG: `${a}:${join(dir, 'gone.yaml')}` } }), { instanceOf: KubeconfigError, message: /gone\.yaml/ });
  await writeFile(join(dir, 'bad.yaml'), 'clusters: [{cluster: {server: "https://192.0.2.1"}}]\n');
  await t.throwsAsync(openConnection({ ...none, env: { HOME: home, KUBECONFIG: `${a}:${join(dir, 'bad.yaml')}` } }), { instanceOf: KubeconfigError, message: /bad\.yaml: clusters\[0\]\.name is missing/ });
  // Nothing anywhere: the library's last resort (http://localhost:8080).
  const last = await openConnection(none);
  t.deepEqual([last.via, last.server], ['library', 'http://localhost:8080']);
  await writeFile(join(sa, 'token'), 'x');
  await writeFile(join(sa, 'ca.crt'), server.cert.cert);
  t.is((await openConnection({ ...none, env: { HOME: home, KUBERNETES_SERVICE_HOST: '192.0.2.10', KUBERNETES_SERVICE_PORT: '6443' } })).source, 'in-cluster');
  await mkdir(join(home, '.kube'), { recursive: true });
  await writeFile(join(home, '.kube', 'config'), kubeconfigYaml(server, caData(server), 'token: nodewall-test-token'));
  const homeConn = await openConnection(none);
  t.deepEqual([homeConn.via, homeConn.source], ['own', join(home, '.kube', 'config')]);
  // An explicit context picks that context's cluster and user.
  await t.throwsAsync(openConnection({ ...none, context: 'other' }), { instanceOf: KubeconfigError, message: /clusters: no entry named "nowhere"/ });
});

test('bad kubeconfigs: errors name the file and the field', async (t) => {
  const { server, dir } = await setup(t);
  const file = join(dir, 'kubeconfig');
  const cases: [string, RegExp][] = [
    ['', /kubeconfig: must be a map/],
    ['a: [unclosed', /kubeconfig: not YAML/],
    ['current-context: x\ncontexts: {}', /kubeconfig: contexts: must be a list/],
    ['contexts: []', /kubeconfig: current-context: not set/],
    ['current-context: x\ncontexts: [{name: y, context: {cluster: c}}]', /contexts: no entry named "x"/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: 7}}]', /contexts\[0\]\.context\.cluster: must name a cluster/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {}}]', /clusters\[0\]\.cluster\.server: missing/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "not a url"}}]', /clusters\[0\]\.cluster\.server: not a URL/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "http://192.0.2.1"}}]', /clusters\[0\]\.cluster\.server: http:\/\/ needs insecure-skip-tls-verify/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "https://192.0.2.1", certificate-authority-data: "%%%"}}]', /clusters\[0\]\.cluster\.certificate-authority-data: must be base64/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "https://192.0.2.1", insecure-skip-tls-verify: "yes"}}]', /insecure-skip-tls-verify: must be true or false/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://192.0.2.1"}}]\nusers: [{name: u, user: {client-key: k.pem}}]', /users\[0\]\.user: client-certificate and client-key go together/],
    ['current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://192.0.2.1"}}]\nusers: [{name: u, user: {token: 5}}]', /users\[0\]\.user\.token: must be a non-empty string/],
  ];
  for (const [text, re] of cases) {
    await writeFile(file, text);
    const err = await t.throwsAsync(openConnection({ kubeconfig: file }), { instanceOf: KubeconfigError });
    t.true(err?.message.startsWith(file), err?.message);
    t.regex(err?.message ?? '', re, text);
  }
  await t.throwsAsync(openConnection({ kubeconfig: join(dir, 'missing') }), { instanceOf: KubeconfigError, message: /missing/ });
  // A missing CA file is found when the first request is made, and named.
  await writeFile(file, kubeconfigYaml(server, 'certificate-authority: nope.pem', 'token: t'));
  await t.throwsAsync((await openConnection({ kubeconfig: file })).requestOptions(), { instanceOf: KubeconfigError, message: /clusters\[0\]\.cluster\.certificate-authority: cannot read .*nope\.pem/ });
  // A FIFO in place of the kubeconfig does not hang (read bounded, regular files only).
  await t.throwsAsync(openConnection({ kubeconfig: '/dev/zero' }), { instanceOf: KubeconfigError });
});
