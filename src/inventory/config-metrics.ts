// The `metrics:` block of nodewall.yaml (issue 11):
//
//   metrics:
//     listen: "127.0.0.1:9964"   # IPv4:port, [IPv6]:port, localhost:port, or off
//
// Only literal addresses (and localhost): a listen address that needs DNS
// would make the agent's start depend on a resolver. Port 1-65535. Errors
// point at the value (file:line:col) like every other key.

import { isIPv4, isIPv6 } from 'node:net';
import { isMap, isScalar, type Node as YamlNode } from 'yaml';
import type { SourcePos } from '../api/types.js';
import type { MetricsConfig, MetricsListen } from './types.js';

export const defaultMetricsListen: MetricsListen = { host: '127.0.0.1', port: 9964 };

/** What config.ts hands every key handler (structural: no import cycle with config.ts). */
interface Ctx {
  readonly node: YamlNode | null;
  readonly key: string;
  readonly at: (n: YamlNode | null | undefined) => SourcePos;
  readonly fail: (n: YamlNode | null | undefined, field: string, message: string) => undefined;
}

/** "host:port" / "[v6]:port" / "off" -> MetricsListen, or an error message. Pure. */
export function parseListen(text: string): MetricsListen | { error: string } {
  if (text === 'off') return 'off';
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (m === null) return { error: `"${text.slice(0, 80)}" is not host:port, [IPv6]:port or off (example: 127.0.0.1:9964)` };
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: `port ${m[3]} is out of range (1-65535)` };
  const v6 = m[1];
  if (v6 !== undefined) {
    if (!isIPv6(v6)) return { error: `"${v6}" in brackets is not an IPv6 address` };
    return { host: v6, port };
  }
  const host = m[2] ?? '';
  if (host === 'localhost' || isIPv4(host)) return { host, port };
  return { error: `"${host}" is not an IPv4 address or localhost (write IPv6 as [addr]:port; host names are not resolved)` };
}

export function metricsSettings(ctx: Ctx): MetricsConfig | undefined {
  const n = ctx.node;
  if (!isMap(n)) return ctx.fail(n, ctx.key, 'must be a map, e.g. {listen: "127.0.0.1:9964"}');
  let listen: MetricsListen = defaultMetricsListen;
  let ok = true;
  for (const pair of n.items) {
    const k = pair.key as YamlNode;
    const v = (pair.value as YamlNode | null) ?? null;
    const name = isScalar(k) ? String(k.value) : '';
    const field = `${ctx.key}.${name}`;
    if (name !== 'listen') {
      ok = ctx.fail(k, field, 'unknown key (known: listen)') ?? false;
      continue;
    }
    // `listen: false` reads as off too (YAML 1.1 habits).
    if (isScalar(v) && v.value === false) {
      listen = 'off';
      continue;
    }
    if (!isScalar(v) || typeof v.value !== 'string') {
      ok = ctx.fail(v, field, 'must be a string: host:port, [IPv6]:port or off') ?? false;
      continue;
    }
    const r = parseListen(v.value);
    if (typeof r === 'object' && 'error' in r) ok = ctx.fail(v, field, r.error) ?? false;
    else listen = r;
  }
  return ok ? { listen } : undefined;
}
