// Decodes the plain JSON of a CiliumClusterwideNetworkPolicy / CiliumNetworkPolicy
// into src/api/types.ts, keeping nil (undefined) and empty ([]) apart and
// reporting wrong types and unknown fields with their field paths.
import { createHash } from 'node:crypto';
import type { Problem, Severity } from './problem.js';
import type {
  CIDRRule, ICMPField, ICMPRule, LabelSelector, PeerRule, PolicyDocument, PortProtocol, PortRule,
  Requirement, Rule, RuleListName, SourcePos,
} from './types.js';
import { stageOf } from './stage-annotation.js';
import { childPath } from './field-path.js';
import { locateIn, type PositionLookup } from './yaml-positions.js';
import { isDenyList, otherRuleFields, peerFields, type PeerKey } from './peer-fields.js';

export type PolicyKind = PolicyDocument['kind'];

export interface DecodeInput {
  readonly kind: PolicyKind;
  /** The object as plain JSON (templates already expanded). */
  readonly json: Readonly<Record<string, unknown>>;
  readonly pos: SourcePos;
  /** Field path (relative to the object) → position (a Map, or a lookup that finds them when first asked). */
  readonly positions: PositionLookup;
}

type Json = Readonly<Record<string, unknown>>;

const TOP_LEVEL_KEYS = ['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status'];
const RULE_KEYS = [
  'endpointSelector', 'nodeSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny',
  'enableDefaultDeny', 'labels', 'description', 'log',
];
const RULE_LISTS: readonly RuleListName[] = ['ingress', 'ingressDeny', 'egress', 'egressDeny'];
const SELECTOR_KEYS = ['matchLabels', 'matchExpressions'];
const REQUIREMENT_KEYS = ['key', 'operator', 'values'];
const PORT_RULE_KEYS = ['ports', 'rules', 'terminatingTLS', 'originatingTLS', 'serverNames', 'listener'];
const PORT_DENY_RULE_KEYS = ['ports'];
const PORT_PROTOCOL_KEYS = ['port', 'endPort', 'protocol'];
const L7_RULES_KEYS = ['http', 'kafka', 'dns', 'l7proto', 'l7'];
const ICMP_RULE_KEYS = ['fields'];
const ICMP_FIELD_KEYS = ['family', 'type'];
const CIDR_RULE_KEYS = ['cidr', 'cidrGroupRef', 'cidrGroupSelector', 'except'];

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string': return `a string (${JSON.stringify(v)})`;
    case 'number': return `a number (${v})`;
    case 'boolean': return `a boolean (${v})`;
    case 'object': return 'a map';
    default: return typeof v;
  }
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** JSON with object keys sorted, so equal content gives an equal hash. */
export function canonicalJson(v: unknown): string {
  // One string built as it goes (no array of parts per level): every policy is hashed when it is read.
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) s += ',';
      // A hole gives '' (as map + join did); parsers never make one.
      if (i in v) s += canonicalJson(v[i]);
    }
    return `${s}]`;
  }
  if (isObject(v)) {
    const keys = Object.keys(v).sort();
    let s = '{';
    let first = true;
    for (const k of keys) {
      const x = v[k];
      if (x === undefined) continue;
      s += first ? `${JSON.stringify(k)}:` : `,${JSON.stringify(k)}:`;
      s += canonicalJson(x);
      first = false;
    }
    return `${s}}`;
  }
  return JSON.stringify(v ?? null);
}

export function contentHash(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex').slice(0, 16);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] ?? 0;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      row[j] = Math.min(up + 1, (row[j - 1] ?? 0) + 1, diag + cost);
      diag = up;
    }
  }
  return row[b.length] ?? 0;
}

function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const a of allowed) {
    const d = editDistance(key, a);
    if (d < bestD) { best = a; bestD = d; }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 4)) ? best : undefined;
}

class Decoder {
  readonly problems: Problem[] = [];
  policy: string | undefined;
  private readonly input: DecodeInput;

  constructor(input: DecodeInput) {
    this.input = input;
  }

  locate(path: string): SourcePos {
    return locateIn(this.input.positions, path, this.input.pos);
  }

  report(severity: Severity, field: string, message: string, code: string): void {
    const base = { severity, pos: this.locate(field), field, message, code };
    this.problems.push(this.policy === undefined ? base : { ...base, policy: this.policy });
  }

  typeError(path: string, expected: string, v: unknown): void {
    this.report('error', path, `must be ${expected}, got ${describeValue(v)}`, 'decode/type');
  }

  /** A map, or undefined for null/absent; anything else is a type error. */
  object(v: unknown, path: string, allowed: readonly string[] | undefined, what: string): Json | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) {
      this.typeError(path, 'a map', v);
      return undefined;
    }
    if (allowed !== undefined) this.unknownFields(v, path, allowed, what);
    return v;
  }

  unknownFields(v: Json, path: string, allowed: readonly string[], what: string): void {
    for (const key of Object.keys(v)) {
      if (allowed.includes(key)) continue;
      const hint = closest(key, allowed);
      this.report(
        'error', childPath(path, key),
        `unknown field ${key} in ${what}${hint === undefined ? '' : ` (did you mean ${hint}?)`}: ` +
          "kubectl --validate=strict rejects it and the API server would prune it, changing the rule's meaning",
        'decode/unknown-field',
      );
    }
  }

  list<T>(v: unknown, path: string, item: (v: unknown, path: string) => T | undefined): T[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.typeError(path, 'a list', v);
      return undefined;
    }
    const out: T[] = [];
    v.forEach((x, i) => {
      const p = childPath(path, i);
      if (x === null || x === undefined) {
        this.report('error', p, 'list entries must not be null', 'decode/type');
        return;
      }
      const d = item(x, p);
      if (d !== undefined) out.push(d);
    });
    return out;
  }

  string(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.typeError(path, 'a string', v);
      return undefined;
    }
    return v;
  }

  boolean(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.typeError(path, 'a boolean (true or false)', v);
      return undefined;
    }
    return v;
  }

  stringMap(v: unknown, path: string): Record<string, string> | undefined {
    const o = this.object(v, path, undefined, '');
    if (o === undefined) return undefined;
    const out: [string, string][] = [];
    for (const [k, x] of Object.entries(o)) {
      const s = typeof x === 'string' ? x : undefined;
      if (s === undefined) this.typeError(childPath(path, k), 'a string (quote it)', x);
      else out.push([k, s]);
    }
    // fromEntries defines own properties: `out[k] = s` would drop a key named __proto__
    // (turning `matchLabels: {__proto__: x}` into a wildcard) instead of letting validation see it.
    return Object.fromEntries(out);
  }

  selector(v: unknown, path: string): LabelSelector | undefined {
    const o = this.object(v, path, SELECTOR_KEYS, 'a label selector');
    if (o === undefined) return undefined;
    const matchLabels = this.stringMap(o['matchLabels'], childPath(path, 'matchLabels'));
    const matchExpressions = this.list(o['matchExpressions'], childPath(path, 'matchExpressions'), (x, p) =>
      this.requirement(x, p));
    return {
      ...(matchLabels === undefined ? {} : { matchLabels }),
      ...(matchExpressions === undefined ? {} : { matchExpressions }),
    };
  }

  requirement(v: unknown, path: string): Requirement | undefined {
    const o = this.object(v, path, REQUIREMENT_KEYS, 'a selector requirement');
    if (o === undefined) return undefined;
    const key = this.string(o['key'], childPath(path, 'key'));
    const operator = this.string(o['operator'], childPath(path, 'operator'));
    if (key === undefined) this.report('error', path, 'key is required', 'decode/required');
    if (operator === undefined) this.report('error', path, 'operator is required', 'decode/required');
    const values = this.list(o['values'], childPath(path, 'values'), (x, p) => this.string(x, p));
    return { key: key ?? '', operator: operator ?? '', ...(values === undefined ? {} : { values }) };
  }

  portProtocol(v: unknown, path: string): PortProtocol | undefined {
    const o = this.object(v, path, PORT_PROTOCOL_KEYS, 'a port (port, endPort, protocol)');
    if (o === undefined) return undefined;
    const portPath = childPath(path, 'port');
    const rawPort = o['port'];
    let port: string | undefined;
    if (typeof rawPort === 'number') {
      this.report('error', portPath,
        `port must be a string (quote it: "${rawPort}"); the CRD rejects integers`, 'decode/port-not-string');
      port = String(rawPort);
    } else {
      port = this.string(rawPort, portPath);
    }
    const endPortPath = childPath(path, 'endPort');
    const rawEnd = o['endPort'];
    let endPort: number | undefined;
    if (rawEnd !== undefined && rawEnd !== null) {
      if (typeof rawEnd === 'number' && Number.isInteger(rawEnd)) endPort = rawEnd;
      else this.typeError(endPortPath, 'an integer (endPort is not quoted)', rawEnd);
    }
    const protocol = this.string(o['protocol'], childPath(path, 'protocol'));
    return {
      ...(port === undefined ? {} : { port }),
      ...(endPort === undefined ? {} : { endPort }),
      ...(protocol === undefined ? {} : { protocol }),
    };
  }

  portRule(v: unknown, path: string, deny: boolean): PortRule | undefined {
    const o = this.object(v, path, deny ? PORT_DENY_RULE_KEYS : PORT_RULE_KEYS,
      deny ? 'a deny port rule (only ports is allowed)' : 'a port rule');
    if (o === undefined) return undefined;
    const ports = this.list(o['ports'], childPath(path, 'ports'), (x, p) => this.portProtocol(x, p));
    const l7 = deny ? undefined : this.l7(o, path);
    return {
      ...(ports === undefined ? {} : { ports }),
      ...(l7 === undefined ? {} : { l7 }),
    };
  }

  l7(o: Json, path: string): PortRule['l7'] {
    const other: string[] = [];
    let http = false;
    let dns = false;
    let kafka = false;
    const dnsPatterns: string[] = [];
    const rulesPath = childPath(path, 'rules');
    const rules = this.object(o['rules'], rulesPath, L7_RULES_KEYS, 'L7 rules');
    if (rules !== undefined) {
      http = (this.list(rules['http'], childPath(rulesPath, 'http'), (x) => x)?.length ?? 0) > 0;
      kafka = (this.list(rules['kafka'], childPath(rulesPath, 'kafka'), (x) => x)?.length ?? 0) > 0;
      const dnsRules = this.list(rules['dns'], childPath(rulesPath, 'dns'), (x, p) => {
        const d = this.object(x, p, undefined, '');
        for (const k of ['matchName', 'matchPattern']) {
          const s = d === undefined ? undefined : this.string(d[k], childPath(p, k));
          if (s !== undefined) dnsPatterns.push(s);
        }
        return x;
      });
      dns = (dnsRules?.length ?? 0) > 0;
      if (rules['l7proto'] !== undefined && rules['l7proto'] !== null) other.push('l7proto');
      if (rules['l7'] !== undefined && rules['l7'] !== null) other.push('l7');
    }
    for (const k of ['terminatingTLS', 'originatingTLS', 'listener']) {
      if (o[k] !== undefined && o[k] !== null) {
        this.object(o[k], childPath(path, k), undefined, '');
        other.push(k);
      }
    }
    const serverNames = this.list(o['serverNames'], childPath(path, 'serverNames'), (x, p) => this.string(x, p));
    if (serverNames !== undefined) other.push('serverNames');
    if (rules === undefined && other.length === 0) return undefined;
    return {
      http, dns, kafka, other,
      ...(dnsPatterns.length === 0 ? {} : { dnsPatterns }),
      ...(serverNames === undefined ? {} : { serverNames }),
    };
  }

  icmpField(v: unknown, path: string): ICMPField | undefined {
    const o = this.object(v, path, ICMP_FIELD_KEYS, 'an ICMP field (type, family)');
    if (o === undefined) return undefined;
    const rawType = o['type'];
    const typePath = childPath(path, 'type');
    let type: number | string | undefined;
    if (rawType === undefined || rawType === null) {
      this.report('error', path, 'type is required', 'decode/required');
    } else if (typeof rawType === 'string' || (typeof rawType === 'number' && Number.isInteger(rawType))) {
      type = rawType;
    } else {
      this.typeError(typePath, 'an integer or a type name', rawType);
    }
    const family = this.string(o['family'], childPath(path, 'family'));
    if (type === undefined) return undefined;
    return { type, ...(family === undefined ? {} : { family }) };
  }

  icmpRule(v: unknown, path: string): ICMPRule | undefined {
    const o = this.object(v, path, ICMP_RULE_KEYS, 'an ICMP rule');
    if (o === undefined) return undefined;
    const fields = this.list(o['fields'], childPath(path, 'fields'), (x, p) => this.icmpField(x, p));
    return fields === undefined ? {} : { fields };
  }

  cidrRule(v: unknown, path: string): CIDRRule | undefined {
    const o = this.object(v, path, CIDR_RULE_KEYS, 'a CIDR rule');
    if (o === undefined) return undefined;
    const cidr = this.string(o['cidr'], childPath(path, 'cidr'));
    const cidrGroupRef = this.string(o['cidrGroupRef'], childPath(path, 'cidrGroupRef'));
    const cidrGroupSelector = this.selector(o['cidrGroupSelector'], childPath(path, 'cidrGroupSelector'));
    const except = this.list(o['except'], childPath(path, 'except'), (x, p) => this.string(x, p));
    return {
      ...(cidr === undefined ? {} : { cidr }),
      ...(cidrGroupRef === undefined ? {} : { cidrGroupRef }),
      ...(cidrGroupSelector === undefined ? {} : { cidrGroupSelector }),
      ...(except === undefined ? {} : { except }),
    };
  }

  peerRule(v: unknown, path: string, list: RuleListName): PeerRule | undefined {
    const fields = peerFields(list);
    const allowed = [...fields.map(([, name]) => name), ...otherRuleFields(list)];
    const o = this.object(v, path, allowed, `an ${list} rule`);
    if (o === undefined) return undefined;
    const out: { -readonly [K in keyof PeerRule]: PeerRule[K] } = {};
    const nullPeers: string[] = [];
    for (const [key, name] of fields) {
      const p = childPath(path, name);
      const raw = o[name];
      if (raw === null && Object.hasOwn(o, name)) nullPeers.push(name);
      this.peerField(out, key, raw, p);
    }
    if (nullPeers.length > 0) out.nullPeers = nullPeers;
    const deny = isDenyList(list);
    const toPorts = this.list(o['toPorts'], childPath(path, 'toPorts'), (x, p) => this.portRule(x, p, deny));
    if (toPorts !== undefined) out.toPorts = toPorts;
    const icmps = this.list(o['icmps'], childPath(path, 'icmps'), (x, p) => this.icmpRule(x, p));
    if (icmps !== undefined) out.icmps = icmps;
    if (o['authentication'] !== undefined && o['authentication'] !== null) {
      this.object(o['authentication'], childPath(path, 'authentication'), undefined, '');
      out.authentication = true;
    }
    return out;
  }

  peerField(out: { -readonly [K in keyof PeerRule]: PeerRule[K] }, key: PeerKey, raw: unknown, p: string): void {
    switch (key) {
      case 'endpoints': case 'nodes': case 'requires': {
        const l = this.list(raw, p, (x, q) => this.selector(x, q));
        if (l !== undefined) out[key] = l;
        return;
      }
      case 'cidr': case 'entities': {
        const l = this.list(raw, p, (x, q) => this.string(x, q));
        if (l !== undefined) out[key] = l;
        return;
      }
      case 'cidrSet': {
        const l = this.list(raw, p, (x, q) => this.cidrRule(x, q));
        if (l !== undefined) out.cidrSet = l;
        return;
      }
      case 'groups': case 'services': case 'fqdns': {
        const l = this.list(raw, p, (x, q) => this.object(x, q, undefined, '') ?? undefined);
        if (l !== undefined) out[key] = l;
        return;
      }
    }
  }

  rule(v: unknown, path: string): Rule | undefined {
    const o = this.object(v, path, RULE_KEYS, 'a rule');
    if (o === undefined) {
      if (v !== null && v !== undefined) return undefined;
      return { path };
    }
    const out: { -readonly [K in keyof Rule]: Rule[K] } = { path };
    const es = this.selector(o['endpointSelector'], childPath(path, 'endpointSelector'));
    if (es !== undefined) out.endpointSelector = es;
    const ns = this.selector(o['nodeSelector'], childPath(path, 'nodeSelector'));
    if (ns !== undefined) out.nodeSelector = ns;
    for (const list of RULE_LISTS) {
      const l = this.list(o[list], childPath(path, list), (x, p) => this.peerRule(x, p, list));
      if (l !== undefined) out[list] = l;
    }
    const eddPath = childPath(path, 'enableDefaultDeny');
    const edd = this.object(o['enableDefaultDeny'], eddPath, ['ingress', 'egress'], 'enableDefaultDeny');
    if (edd !== undefined) {
      const ingress = this.boolean(edd['ingress'], childPath(eddPath, 'ingress'));
      const egress = this.boolean(edd['egress'], childPath(eddPath, 'egress'));
      out.enableDefaultDeny = {
        ...(ingress === undefined ? {} : { ingress }),
        ...(egress === undefined ? {} : { egress }),
      };
    }
    const description = this.string(o['description'], childPath(path, 'description'));
    if (description !== undefined) out.description = description;
    this.list(o['labels'], childPath(path, 'labels'), (x) => x);
    const log = this.object(o['log'], childPath(path, 'log'), ['value'], 'log');
    const logValuePath = childPath(childPath(path, 'log'), 'value');
    const logValue = log === undefined ? undefined : this.string(log['value'], logValuePath);
    if (logValue !== undefined && (logValue.length > 32 || !/^[\x20-\x7e]*$/.test(logValue))) {
      this.report('error', logValuePath, 'log.value must be at most 32 printable characters (CRD)', 'log-value');
    }
    return out;
  }

  document(): PolicyDocument {
    const { json, kind } = this.input;
    const metadata = this.object(json['metadata'], 'metadata', undefined, '');
    const name = this.string(metadata?.['name'], 'metadata.name');
    if (name !== undefined && name !== '') this.policy = name;
    else this.report('error', 'metadata', 'metadata.name is required', 'decode/required');
    const namespace = kind === 'CiliumNetworkPolicy' ? this.string(metadata?.['namespace'], 'metadata.namespace') : undefined;
    const staged = stageOf(metadata);
    if (staged.problem !== undefined) this.report('error', staged.problem.field, staged.problem.message, 'stage/unknown');

    for (const key of Object.keys(json)) {
      if (TOP_LEVEL_KEYS.includes(key)) continue;
      this.report('warning', key,
        `ignored: ${key} is not part of the ${kind} schema (the API server prunes it), so it has no effect`,
        'lint/ignored-field');
    }

    const rules: Rule[] = [];
    const spec = this.rule(json['spec'], 'spec');
    if (spec !== undefined && json['spec'] !== undefined && json['spec'] !== null) rules.push(spec);
    const specs = this.list(json['specs'], 'specs', (x, p) => this.rule(x, p));
    if (specs !== undefined) rules.push(...specs);
    if ((json['spec'] === undefined || json['spec'] === null) && specs === undefined) {
      this.report('error', '', `Invalid ${kind} spec(s): empty policy (neither spec nor specs is set)`, 'empty-policy');
    }

    const positions = this.input.positions;
    const pos = this.input.pos;
    return {
      kind,
      name: name ?? '',
      ...(namespace === undefined ? {} : { namespace }),
      ...(staged.stage === undefined ? {} : { stage: staged.stage }),
      rules,
      pos,
      locate: (fieldPath: string) => locateIn(positions, fieldPath, pos),
      hash: contentHash(json),
      decodeProblems: this.problems.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col),
    };
  }
}

/** Decodes one policy object. Its decode problems travel on `doc.decodeProblems`. */
export function decodePolicy(input: DecodeInput): PolicyDocument {
  return new Decoder(input).document();
}
