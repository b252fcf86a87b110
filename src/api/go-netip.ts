// Strict address/prefix parsing with the acceptance rules and error texts of
// Go's net/netip (ParseAddr / ParsePrefix), which Cilium uses to check CIDRs.

export interface ParsedPrefix {
  readonly family: 4 | 6;
  /** Address as written (host bits not masked). */
  readonly addr: bigint;
  readonly bits: number;
}

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

interface ParsedAddr {
  readonly family: 4 | 6;
  readonly addr: bigint;
  readonly zone: boolean;
}

const q = (s: string): string => JSON.stringify(s);

function addrError(input: string, msg: string, at?: string): ParseResult<never> {
  return { ok: false, error: `ParseAddr(${q(input)}): ${msg}${at === undefined ? '' : ` (at ${q(at)})`}` };
}

function parseIPv4Fields(s: string, input: string): ParseResult<bigint> {
  const parts = s.split('.');
  let value = 0n;
  let fields = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? '';
    if (p === '') return addrError(input, i === parts.length - 1 && fields === 3 ? 'IPv4 address too short' : 'IPv4 field must have at least one digit', s.slice(s.indexOf(p)));
    if (!/^[0-9]+$/.test(p)) return addrError(input, 'unexpected character', p.replace(/^[0-9]*/, ''));
    if (p.length > 1 && p.startsWith('0')) return addrError(input, 'IPv4 field has octet with leading zero');
    const n = Number.parseInt(p, 10);
    if (n > 255) return addrError(input, 'IPv4 field has value >255');
    fields++;
    if (fields > 4) return addrError(input, 'IPv4 address too long');
    value = (value << 8n) | BigInt(n);
  }
  if (fields < 4) return addrError(input, 'IPv4 address too short');
  return { ok: true, value };
}

function parseIPv6(s: string, input: string): ParseResult<ParsedAddr> {
  let body = s;
  let zone = false;
  const pct = s.indexOf('%');
  if (pct >= 0) {
    if (pct === s.length - 1) return addrError(input, 'zone must be a non-empty string');
    body = s.slice(0, pct);
    zone = true;
  }
  const groups: number[] = [];
  let ellipsis = -1;
  let rest = body;
  if (rest.startsWith('::')) {
    ellipsis = 0;
    rest = rest.slice(2);
    if (rest === '') return { ok: true, value: { family: 6, addr: 0n, zone } };
  }
  while (rest !== '') {
    const m = /^[0-9a-fA-F]{1,4}/.exec(rest);
    // An embedded IPv4 address may end the address.
    if (rest.includes('.') && !rest.includes(':')) {
      if (groups.length > 6) return addrError(input, 'not enough room for IPv4-mapped address', rest);
      const v4 = parseIPv4Fields(rest, input);
      if (!v4.ok) return v4;
      groups.push(Number(v4.value >> 16n), Number(v4.value & 0xffffn));
      rest = '';
      break;
    }
    if (m === null) return addrError(input, 'each colon-separated field must have at least one digit', rest);
    if (m[0].length === 4 && /^[0-9a-fA-F]/.test(rest.charAt(4))) return addrError(input, 'IPv6 field has value >=2^16', rest);
    groups.push(Number.parseInt(m[0], 16));
    rest = rest.slice(m[0].length);
    if (rest === '') break;
    if (!rest.startsWith(':')) return addrError(input, 'unexpected character, want colon', rest);
    if (rest.startsWith('::')) {
      if (ellipsis >= 0) return addrError(input, 'multiple :: in address', rest);
      ellipsis = groups.length;
      rest = rest.slice(2);
      continue;
    }
    rest = rest.slice(1);
    if (rest === '') return addrError(input, 'colon must be followed by more characters', s);
    if (groups.length >= 8) return addrError(input, 'trailing garbage after address', rest);
  }
  if (ellipsis < 0 && groups.length !== 8) return addrError(input, 'address string too short');
  if (ellipsis >= 0 && groups.length > 7) return addrError(input, 'the :: must expand to at least one field of zeros');
  const full = ellipsis < 0 ? groups
    : [...groups.slice(0, ellipsis), ...Array<number>(8 - groups.length).fill(0), ...groups.slice(ellipsis)];
  let addr = 0n;
  for (const g of full) addr = (addr << 16n) | BigInt(g);
  return { ok: true, value: { family: 6, addr, zone } };
}

export function parseAddr(s: string): ParseResult<ParsedAddr> {
  for (const ch of s) {
    if (ch === '.') {
      const v4 = parseIPv4Fields(s, s);
      return v4.ok ? { ok: true, value: { family: 4, addr: v4.value, zone: false } } : v4;
    }
    if (ch === ':') return parseIPv6(s, s);
    if (ch === '%') return addrError(s, 'missing IPv6 address');
  }
  return addrError(s, 'unable to parse IP');
}

export function parsePrefix(s: string): ParseResult<ParsedPrefix> {
  const fail = (msg: string): ParseResult<never> => ({ ok: false, error: `netip.ParsePrefix(${q(s)}): ${msg}` });
  const slash = s.lastIndexOf('/');
  if (slash < 0) return fail("no '/'");
  const a = parseAddr(s.slice(0, slash));
  if (!a.ok) return fail(a.error);
  if (a.value.zone) return fail('IPv6 zones cannot be present in a prefix');
  const bitsStr = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]*)$/.test(bitsStr)) return fail(`bad bits after slash: ${q(bitsStr)}`);
  const bits = Number.parseInt(bitsStr, 10);
  if (bits > (a.value.family === 4 ? 32 : 128)) return fail('prefix length out of range');
  return { ok: true, value: { family: a.value.family, addr: a.value.addr, bits } };
}

function masked(p: ParsedPrefix, bits: number): bigint {
  const width = p.family === 4 ? 32 : 128;
  return p.addr >> BigInt(width - bits);
}

/** True when `inner` lies inside `outer` (same family, not shorter). */
export function prefixContains(outer: ParsedPrefix, inner: ParsedPrefix): boolean {
  return outer.family === inner.family && inner.bits >= outer.bits && masked(outer, outer.bits) === masked(inner, outer.bits);
}
