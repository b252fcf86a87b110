// Where the Kubernetes source connects and with which credentials, without the
// client library for the cases a node agent meets:
//
// - in-cluster: KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount token and CA
//   files. The token is a bound token that the kubelet rotates: every file is
//   re-read when it changes (checked with stat on every request).
// - a kubeconfig file (YAML, read bounded): clusters/contexts/users with server,
//   certificate-authority(-data), insecure-skip-tls-verify, tls-server-name;
//   token, tokenFile, client-certificate(-data), client-key(-data).
//
// Anything else in the chosen cluster or user (exec plugins, auth-provider,
// username/password, impersonation, proxy-url) is left to the client library:
// its KubeConfig is loaded and produces the request options
// (applyToHTTPSOptions), as before. The default lookup is the library's:
// $KUBECONFIG, else ~/.kube/config, else in-cluster when the token file exists.

import { stat } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readBounded } from '../read-bounded.js';
import type { KubeEndpoint } from './kube-http.js';

export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Kubeconfig files and everything they point to (CA, certificates, tokens) are small. */
const maxKubeconfigBytes = 1024 * 1024;
const maxCredentialBytes = 1024 * 1024;

/** A kubeconfig or in-cluster setting that cannot be used; names the file and the field. */
export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError';
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, message: string, options?: { cause?: unknown }) {
    super(`${file}${field === '' ? '' : `: ${field}`}: ${message}`, options);
    this.file = file;
    this.field = field;
  }
}

export interface ConnectionRequest {
  readonly kubeconfig?: string;
  readonly inCluster?: boolean;
  readonly context?: string;
  /** Environment and home directory for the default lookup and in-cluster (tests); default the process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** ServiceAccount directory for in-cluster (tests); default /var/run/secrets/kubernetes.io/serviceaccount. */
  readonly serviceAccountDir?: string;
}

export interface Connection extends KubeEndpoint {
  /** How it was made: our own client, or the client library's KubeConfig (fallback). */
  readonly via: 'own' | 'library';
  /** What was loaded, for messages ("in-cluster", the kubeconfig path). */
  readonly source: string;
}

/** A file re-read whenever stat shows it changed (rotated tokens, renewed certificates). */
class WatchedFile {
  private key = '';
  private value: Buffer | undefined;
  readonly path: string;
  readonly origin: string;
  readonly field: string;
  constructor(path: string, origin: string, field: string) {
    this.path = path;
    this.origin = origin;
    this.field = field;
  }

  /** The current content; a failed re-read keeps the last good content (client-go does the same for tokens). */
  async read(): Promise<{ bytes: Buffer; changed: boolean }> {
    let key: string;
    try {
      const st = await stat(this.path, { bigint: true });
      key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch (err) {
      if (this.value !== undefined) return { bytes: this.value, changed: false };
      throw new KubeconfigError(this.origin, this.field, `cannot read ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    if (key === this.key && this.value !== undefined) return { bytes: this.value, changed: false };
    try {
      const { bytes } = await readBounded(this.path, maxCredentialBytes);
      this.value = bytes;
      this.key = key;
      return { bytes, changed: true };
    } catch (err) {
      if (this.value !== undefined) return { bytes: this.value, changed: false };
      throw new KubeconfigError(this.origin, this.field, `cannot read ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }
}

type Material = { readonly data: Buffer } | { readonly file: WatchedFile } | undefined;

interface OwnSettings {
  readonly server: string;
  readonly source: string;
  readonly ca: Material;
  readonly cert: Material;
  readonly key: Material;
  readonly token: { readonly value: string } | { readonly file: WatchedFile } | undefined;
  readonly insecure: boolean;
  readonly serverName: string | undefined;
}

async function materialBytes(m: Material): Promise<{ bytes: Buffer | undefined; changed: boolean }> {
  if (m === undefined) return { bytes: undefined, changed: false };
  if ('data' in m) return { bytes: m.data, changed: false };
  return m.file.read();
}

/** Our own connection: one keep-alive agent (list pages reuse connections), rebuilt when TLS material changes. */
function ownConnection(s: OwnSettings): Connection {
  const plain = s.server.startsWith('http:');
  let agent: http.Agent | undefined;
  return {
    server: s.server,
    via: 'own',
    source: s.source,
    async requestOptions() {
      const [ca, cert, key] = await Promise.all([materialBytes(s.ca), materialBytes(s.cert), materialBytes(s.key)]);
      if (agent === undefined || ca.changed || cert.changed || key.changed) {
        agent?.destroy();
        agent = plain
          ? new http.Agent({ keepAlive: true })
          : new https.Agent({
            keepAlive: true,
            ...(ca.bytes === undefined ? {} : { ca: ca.bytes }),
            ...(cert.bytes === undefined ? {} : { cert: cert.bytes }),
            ...(key.bytes === undefined ? {} : { key: key.bytes }),
            ...(s.insecure ? { rejectUnauthorized: false } : {}),
            ...(s.serverName === undefined ? {} : { servername: s.serverName }),
          });
      }
      const headers: Record<string, string> = {};
      if (s.token !== undefined) {
        const token = 'value' in s.token ? s.token.value : (await s.token.file.read()).bytes.toString('utf8').trim();
        if (token !== '') headers['Authorization'] = `Bearer ${token}`;
      }
      return { agent, headers };
    },
  };
}

/** The client library's KubeConfig, loaded by `load`, making the request options (exec plugins, proxies, ...). */
async function libraryConnection(source: string, context: string | undefined, load: (kc: import('@kubernetes/client-node').KubeConfig) => void): Promise<Connection> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    load(kc);
  } catch (err) {
    throw err instanceof KubeconfigError ? err : new KubeconfigError(source, '', (err as Error).message, { cause: err });
  }
  if (context !== undefined) kc.setCurrentContext(context);
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeconfigError(source, 'current-context', 'no current cluster');
  return {
    server: cluster.server.replace(/\/+$/, ''),
    via: 'library',
    source,
    async requestOptions() {
      const opts: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(opts);
      return opts;
    },
  };
}

/** In-cluster settings as the library reads them (scheme http for ports 80, 8080, 8001). */
export function inClusterConnection(env: NodeJS.ProcessEnv = process.env, dir: string = serviceAccountDir): Connection {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  const origin = 'in-cluster';
  if (host === undefined || host === '') throw new KubeconfigError(origin, 'KUBERNETES_SERVICE_HOST', 'not set (not running in a pod?)');
  if (port === undefined || !/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) throw new KubeconfigError(origin, 'KUBERNETES_SERVICE_PORT', `must be a port number (is ${JSON.stringify(port ?? null)})`);
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  try {
    new URL(server);
  } catch {
    throw new KubeconfigError(origin, 'KUBERNETES_SERVICE_HOST', `not a host name or address: ${JSON.stringify(host)}`);
  }
  return ownConnection({
    server,
    source: origin,
    ca: { file: new WatchedFile(join(dir, 'ca.crt'), origin, 'ca.crt') },
    cert: undefined,
    key: undefined,
    token: { file: new WatchedFile(join(dir, 'token'), origin, 'token') },
    insecure: false,
    serverName: undefined,
  });
}

type Json = Record<string, unknown>;
const isMap = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

// What our own client handles; anything else present in the chosen entry goes to the library.
const ownClusterKeys = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions', 'disable-compression']);
const ownUserKeys = new Set(['token', 'tokenFile', 'token-file', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'extensions']);

/** The named entry of a kubeconfig list (`clusters`, `users`, `contexts`), with its index for messages. */
function entry(doc: Json, file: string, list: 'clusters' | 'users' | 'contexts', name: string, inner: string): { body: Json; field: string } {
  const items = doc[list];
  if (items !== undefined && items !== null && !Array.isArray(items)) throw new KubeconfigError(file, list, 'must be a list');
  const arr = (items ?? []) as unknown[];
  for (let i = 0; i < arr.length; i++) {
    const it = arr[i];
    if (!isMap(it)) throw new KubeconfigError(file, `${list}[${i}]`, 'must be a map');
    if (it['name'] !== name) continue;
    const body = it[inner] ?? {};
    if (!isMap(body)) throw new KubeconfigError(file, `${list}[${i}].${inner}`, 'must be a map');
    return { body, field: `${list}[${i}].${inner}` };
  }
  throw new KubeconfigError(file, list, `no entry named ${JSON.stringify(name)}`);
}

function optString(body: Json, key: string, file: string, field: string): string | undefined {
  if (!Object.hasOwn(body, key) || body[key] === null || body[key] === undefined) return undefined;
  const v = body[key];
  if (typeof v !== 'string' || v === '') throw new KubeconfigError(file, `${field}.${key}`, 'must be a non-empty string');
  return v;
}

function base64(body: Json, key: string, file: string, field: string): Buffer | undefined {
  const v = optString(body, key, file, field);
  if (v === undefined) return undefined;
  if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(v)) throw new KubeconfigError(file, `${field}.${key}`, 'must be base64');
  return Buffer.from(v, 'base64');
}

function material(body: Json, dataKey: string, fileKey: string, file: string, field: string): Material {
  const data = base64(body, dataKey, file, field);
  if (data !== undefined) return { data };
  const path = optString(body, fileKey, file, field);
  if (path === undefined) return undefined;
  return { file: new WatchedFile(isAbsolute(path) ? path : join(dirname(file), path), file, `${field}.${fileKey}`) };
}

/**
 * A kubeconfig file: our own connection when the chosen cluster and user use only what we handle,
 * else the client library's (same file, same context). Errors name the file and the field.
 */
export async function kubeconfigConnection(file: string, context?: string): Promise<Connection> {
  let text: string;
  try {
    text = (await readBounded(file, maxKubeconfigBytes)).bytes.toString('utf8');
  } catch (err) {
    throw new KubeconfigError(file, '', (err as Error).message, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new KubeconfigError(file, '', `not YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (!isMap(doc)) throw new KubeconfigError(file, '', 'must be a map (apiVersion, clusters, contexts, users, current-context)');
  const ctxName = context ?? doc['current-context'];
  if (typeof ctxName !== 'string' || ctxName === '') throw new KubeconfigError(file, 'current-context', 'not set (and no context given)');
  const ctx = entry(doc, file, 'contexts', ctxName, 'context');
  const clusterName = ctx.body['cluster'];
  if (typeof clusterName !== 'string' || clusterName === '') throw new KubeconfigError(file, `${ctx.field}.cluster`, 'must name a cluster');
  const cluster = entry(doc, file, 'clusters', clusterName, 'cluster');
  const userName = ctx.body['user'];
  if (userName !== undefined && userName !== null && (typeof userName !== 'string')) throw new KubeconfigError(file, `${ctx.field}.user`, 'must name a user');
  const user = typeof userName === 'string' && userName !== '' ? entry(doc, file, 'users', userName, 'user') : undefined;
  const foreign = [...Object.keys(cluster.body).filter((k) => !ownClusterKeys.has(k)).map((k) => `${cluster.field}.${k}`),
    ...Object.keys(user?.body ?? {}).filter((k) => !ownUserKeys.has(k)).map((k) => `${user?.field}.${k}`)];
  if (foreign.length > 0) {
    // exec plugins, auth providers, basic auth, impersonation, proxies: the library does these.
    return libraryConnection(file, context, (kc) => {
      kc.loadFromString(text);
      kc.makePathsAbsolute(dirname(file));
    });
  }
  const server = optString(cluster.body, 'server', file, cluster.field);
  if (server === undefined) throw new KubeconfigError(file, `${cluster.field}.server`, 'missing');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeconfigError(file, `${cluster.field}.server`, `not a URL: ${JSON.stringify(server)}`);
  }
  const insecure = cluster.body['insecure-skip-tls-verify'] ?? false;
  if (typeof insecure !== 'boolean') throw new KubeconfigError(file, `${cluster.field}.insecure-skip-tls-verify`, 'must be true or false');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new KubeconfigError(file, `${cluster.field}.server`, 'must be an https:// URL');
  // As the library: plain http only where TLS checks were explicitly given up.
  if (url.protocol === 'http:' && !insecure) throw new KubeconfigError(file, `${cluster.field}.server`, 'http:// needs insecure-skip-tls-verify: true');
  const u = user?.body ?? {};
  const uf = user?.field ?? 'users';
  const tokenValue = optString(u, 'token', file, uf);
  const tokenPath = optString(u, 'tokenFile', file, uf) ?? optString(u, 'token-file', file, uf);
  const tokenKey = Object.hasOwn(u, 'tokenFile') ? 'tokenFile' : 'token-file';
  const cert = material(u, 'client-certificate-data', 'client-certificate', file, uf);
  const key = material(u, 'client-key-data', 'client-key', file, uf);
  if ((cert === undefined) !== (key === undefined)) throw new KubeconfigError(file, uf, 'client-certificate and client-key go together');
  return ownConnection({
    server: server.replace(/\/+$/, ''),
    source: file,
    ca: material(cluster.body, 'certificate-authority-data', 'certificate-authority', file, cluster.field),
    cert,
    key,
    // A token in the file wins over tokenFile (as in kubectl and the library).
    token: tokenValue !== undefined
      ? { value: tokenValue }
      : tokenPath === undefined ? undefined : { file: new WatchedFile(isAbsolute(tokenPath) ? tokenPath : join(dirname(file), tokenPath), file, `${uf}.${tokenKey}`) },
    insecure,
    serverName: optString(cluster.body, 'tls-server-name', file, cluster.field),
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The connection the options ask for; neither kubeconfig nor inCluster: the library's default lookup order. */
export async function openConnection(req: ConnectionRequest): Promise<Connection> {
  const env = req.env ?? process.env;
  const saDir = req.serviceAccountDir ?? serviceAccountDir;
  if (req.inCluster === true) {
    if (req.context !== undefined) throw new KubeconfigError('in-cluster', 'context', 'in-cluster credentials have no contexts');
    return inClusterConnection(env, saDir);
  }
  if (req.kubeconfig !== undefined) return kubeconfigConnection(req.kubeconfig, req.context);
  const list = (env['KUBECONFIG'] ?? '').split(delimiter).filter((f) => f !== '');
  if (list.length === 1) return kubeconfigConnection(list[0]!, req.context);
  if (list.length > 1) {
    // Several files are merged: the library's merge rules (as its loadFromDefault applies them), not ours;
    // each file read bounded (the library's readFileSync would hang on a FIFO).
    const k8s = await import('@kubernetes/client-node');
    const texts: string[] = [];
    for (const f of list) {
      try {
        texts.push((await readBounded(f, maxKubeconfigBytes)).bytes.toString('utf8'));
      } catch (err) {
        throw new KubeconfigError(f, '', (err as Error).message, { cause: err });
      }
    }
    return libraryConnection(`$KUBECONFIG (${list.join(delimiter)})`, req.context, (kc) => {
      list.forEach((f, i) => {
        const one = i === 0 ? kc : new k8s.KubeConfig();
        try {
          one.loadFromString(texts[i]!);
        } catch (err) {
          throw new KubeconfigError(f, '', (err as Error).message, { cause: err });
        }
        one.makePathsAbsolute(dirname(f));
        if (one !== kc) kc.mergeConfig(one);
      });
    });
  }
  const home = env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir();
  const config = join(home, '.kube', 'config');
  if (await exists(config)) return kubeconfigConnection(config, req.context);
  if (await exists(join(saDir, 'token'))) {
    if (req.context !== undefined) throw new KubeconfigError('in-cluster', 'context', 'in-cluster credentials have no contexts');
    return inClusterConnection(env, saDir);
  }
  // Nothing found: what the library's lookup ends with (http://localhost:8080, refused by its agent at every request).
  return libraryConnection('the default kubeconfig', req.context, (kc) => kc.loadFromClusterAndUser({ name: 'cluster', server: 'http://localhost:8080', skipTLSVerify: false }, { name: 'user' }));
}
