// Cilium's acceptance checks for a policy object (reference §2): errors mean
// Cilium (API server or agent) rejects the whole object. Warnings flag content
// Cilium accepts but nodewall enforces differently, naming the traffic affected.
// Rule, selector and peer (L3) checks live here; L4/L7 in validate-l4.ts.
import type { EngineConfig } from '../inventory/types.js';
import type { Problem } from './problem.js';
import type { CIDRRule, LabelSelector, PeerRule, PolicyDocument, Rule, RuleListName } from './types.js';
import { childPath } from './field-path.js';
import { isDenyList, peerFieldName, peerFields, type PeerKey } from './peer-fields.js';
import { parsePrefix, prefixContains, type ParsedPrefix } from './go-netip.js';
import { err, unsupportedText, warn, type Ctx } from './validate-context.js';
import { validateICMPRule, validatePortRule } from './validate-l4.js';
import { unsupportedPeers } from './unsupported-peers.js';
import { dns1123LabelProblems, dns1123SubdomainProblems, invalidValue, labelValueProblems, selectorKeyProblems } from './k8s-names.js';

export { CRD_PROTOCOLS, EXTENDED_PROTOCOLS, isServiceName, parseGoPort } from './validate-l4.js';

export const VALID_ENTITIES: readonly string[] = [
  'all', 'world', 'cluster', 'cluster-mesh', 'host', 'init', 'ingress', 'unmanaged', 'remote-node', 'health',
  'none', 'kube-apiserver',
];
const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
const RULE_LISTS: readonly RuleListName[] = ['ingress', 'ingressDeny', 'egress', 'egressDeny'];

/**
 * All problems of one policy object: its decode problems first, then Cilium's
 * validation. Any error means Cilium rejects the whole object.
 */
export function validatePolicy(doc: PolicyDocument, cfg: EngineConfig): Problem[] {
  const ctx: Ctx = { doc, cfg, out: [...(doc.decodeProblems ?? [])] };
  validateMetadata(ctx);
  for (const rule of doc.rules) validateRule(ctx, rule);
  return ctx.out;
}

// The API server's ValidateObjectMeta: a custom resource's name is a DNS-1123 subdomain, a namespace a
// DNS-1123 label. Among other things this keeps control characters out of set comments and logs.
function validateMetadata(ctx: Ctx): void {
  const { name, namespace } = ctx.doc;
  const nameProblems = name === '' ? [] : dns1123SubdomainProblems(name);
  if (nameProblems.length > 0) err(ctx, 'metadata.name', invalidValue(name, nameProblems), 'metadata-name');
  const nsProblems = namespace === undefined || namespace === '' ? [] : dns1123LabelProblems(namespace);
  if (nsProblems.length > 0) err(ctx, 'metadata.namespace', invalidValue(namespace ?? '', nsProblems), 'metadata-namespace');
}

function validateRule(ctx: Ctx, rule: Rule): void {
  const p = rule.path;
  const nonEmpty = RULE_LISTS.filter((l) => (rule[l]?.length ?? 0) > 0);
  if (nonEmpty.length === 0) {
    err(ctx, p, 'rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny', 'rule-empty');
  }
  if (rule.endpointSelector === undefined && rule.nodeSelector === undefined) {
    err(ctx, p, 'rule must have one of EndpointSelector or NodeSelector', 'rule-selector-missing');
  }
  if (rule.endpointSelector !== undefined && rule.nodeSelector !== undefined) {
    err(ctx, p, 'rule cannot have both EndpointSelector and NodeSelector', 'rule-selector-both');
  }
  if (ctx.doc.kind === 'CiliumNetworkPolicy' && rule.nodeSelector !== undefined) {
    err(ctx, childPath(p, 'nodeSelector'),
      'Invalid CiliumNetworkPolicy spec: rule cannot have NodeSelector (host policies must be CiliumClusterwideNetworkPolicy)',
      'cnp-node-selector');
  }
  if (rule.endpointSelector !== undefined) validateSelector(ctx, rule.endpointSelector, childPath(p, 'endpointSelector'));
  if (rule.nodeSelector !== undefined) validateSelector(ctx, rule.nodeSelector, childPath(p, 'nodeSelector'));
  // Pod rules of a CCNP are validated (they can reject the object) but get no nodewall warnings.
  const host = rule.nodeSelector !== undefined && rule.endpointSelector === undefined;
  for (const list of RULE_LISTS) {
    rule[list]?.forEach((pr, i) => validatePeerRule(ctx, pr, childPath(childPath(p, list), i), list, host));
  }
}

// Messages of Kubernetes' LabelSelectorAsSelector / labels.NewRequirement, which Cilium uses, and of
// Cilium's EndpointSelector.Sanitize: keys are `[source:]key` label keys, values label values.
function validateSelector(ctx: Ctx, sel: LabelSelector, path: string): void {
  const labelsPath = childPath(path, 'matchLabels');
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) {
    const kp = childPath(labelsPath, key);
    const keyProblems = selectorKeyProblems(key);
    if (keyProblems.length > 0) err(ctx, kp, `invalid label key: ${invalidValue(key, keyProblems)}`, 'selector-key');
    const valueProblems = labelValueProblems(value);
    if (valueProblems.length > 0) err(ctx, kp, `invalid label value: ${invalidValue(value, valueProblems)}`, 'selector-value');
  }
  sel.matchExpressions?.forEach((r, i) => {
    const rp = childPath(childPath(path, 'matchExpressions'), i);
    const keyProblems = r.key === '' ? [] : selectorKeyProblems(r.key);
    if (keyProblems.length > 0) err(ctx, childPath(rp, 'key'), `invalid label key: ${invalidValue(r.key, keyProblems)}`, 'selector-key');
    r.values?.forEach((v, j) => {
      const valueProblems = labelValueProblems(v);
      if (valueProblems.length > 0) {
        err(ctx, childPath(childPath(rp, 'values'), j), `invalid label value: ${invalidValue(v, valueProblems)}`, 'selector-value');
      }
    });
    const values = r.values === undefined ? '[]string(nil)' : `[]string{${r.values.map((v) => JSON.stringify(v)).join(', ')}}`;
    const hasValues = (r.values?.length ?? 0) > 0;
    if (!SELECTOR_OPERATORS.includes(r.operator)) {
      err(ctx, childPath(rp, 'operator'), `${JSON.stringify(r.operator)} is not a valid label selector operator`, 'selector-operator');
    } else if ((r.operator === 'In' || r.operator === 'NotIn') && !hasValues) {
      err(ctx, rp, `values: Invalid value: ${values}: for 'in', 'notin' operators, values set can't be empty`, 'selector-values');
    } else if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && hasValues) {
      err(ctx, childPath(rp, 'values'), `values: Invalid value: ${values}: values set must be empty for exists and does not exist`,
        'selector-values');
    }
  });
}

const PEER_KIND_GO_NAME: Record<PeerKey, string> = {
  endpoints: 'Endpoints', cidr: 'CIDR', cidrSet: 'CIDRSet', entities: 'Entities', nodes: 'Nodes', groups: 'Groups',
  services: 'Services', fqdns: 'FQDNs', requires: 'Requires',
};

function validatePeerRule(ctx: Ctx, pr: PeerRule, path: string, list: RuleListName, host: boolean): void {
  const ingress = list === 'ingress' || list === 'ingressDeny';
  const deny = isDenyList(list);
  const dir = ingress ? 'From' : 'To';
  const at = (key: PeerKey): string => childPath(path, peerFieldName(list, key));

  // At most one kind of peer per rule; only non-empty lists count.
  const used = peerFields(list).filter(([k]) => k !== 'requires' && (pr[k]?.length ?? 0) > 0);
  const [first, second] = used;
  if (first !== undefined && second !== undefined) {
    err(ctx, at(second[0]),
      `combining ${dir}${PEER_KIND_GO_NAME[first[0]]} and ${dir}${PEER_KIND_GO_NAME[second[0]]} is not supported yet`,
      'peer-combination');
  }
  if ((pr.requires?.length ?? 0) > 0) {
    err(ctx, at('requires'),
      `${peerFieldName(list, 'requires')} was removed in Cilium 1.19 (the CRD allows no items); ` +
        'express the requirement in the peer selectors instead', 'requires-removed');
  }
  pr.endpoints?.forEach((s, i) => validateSelector(ctx, s, childPath(at('endpoints'), i)));
  pr.nodes?.forEach((s, i) => validateSelector(ctx, s, childPath(at('nodes'), i)));
  if ((pr.nodes?.length ?? 0) > 0 && !ctx.cfg.enableNodeSelectorLabels) {
    err(ctx, at('nodes'),
      'FromNodes/ToNodes rules can only be applied when the "enable-node-selector-labels" flag is set', 'nodes-flag');
  }
  pr.entities?.forEach((e, i) => validateEntity(ctx, e, childPath(at('entities'), i)));
  pr.cidr?.forEach((c, i) => validateCIDR(ctx, c, childPath(at('cidr'), i)));
  pr.cidrSet?.forEach((c, i) => validateCIDRRule(ctx, c, childPath(at('cidrSet'), i), deny, host, ingress));
  for (const key of ['cidr', 'cidrSet'] as const) {
    const elements = key === 'cidr' ? (pr.cidr?.length ?? 0) : cidrSetElementBound(pr.cidrSet ?? []);
    if (elements > ctx.cfg.maxSetElements) {
      err(ctx, at(key),
        `${key === 'cidr' ? `${elements} CIDRs` : `these CIDRs with their excepts (up to ${elements} prefixes)`} would make one nft set ` +
          `larger than maxSetElements (${ctx.cfg.maxSetElements}); nodewall refuses the policy rather than load an unbounded set. ` +
          'Summarise the list into wider prefixes, or raise maxSetElements in the nodewall config', 'set-too-large');
    }
  }

  const hasPorts = (pr.toPorts?.length ?? 0) > 0;
  const hasICMPs = (pr.icmps?.length ?? 0) > 0;
  if (hasICMPs && !ctx.cfg.enableICMPRules) {
    err(ctx, childPath(path, 'icmps'), 'ICMP rules can only be applied when the "enable-icmp-rules" flag is set', 'icmp-flag');
  }
  if (hasICMPs && hasPorts) {
    err(ctx, childPath(path, 'icmps'),
      'the ICMPs block may only be present without ToPorts. Define a separate rule to use ToPorts', 'icmp-with-ports');
  }
  pr.toPorts?.forEach((r, i) => validatePortRule(ctx, r, childPath(childPath(path, 'toPorts'), i), list, host));
  pr.icmps?.forEach((r, i) => validateICMPRule(ctx, r, childPath(childPath(path, 'icmps'), i)));

  if (host) unsupportedPeers(ctx, pr, path, list);
}

function validateEntity(ctx: Ctx, e: string, path: string): void {
  if (e === 'world-ipv4' || e === 'world-ipv6') {
    const cidr = e === 'world-ipv4' ? '0.0.0.0/0' : '::/0';
    err(ctx, path,
      `entity ${e} is not in the CRD's entity enum, so the API server rejects the policy; ` +
        `write the CIDR ${cidr} (the ${e === 'world-ipv4' ? 'IPv4' : 'IPv6'} world) or the entity world instead`,
      'entity-crd');
  } else if (!VALID_ENTITIES.includes(e)) {
    err(ctx, path, `unsupported entity: ${e}`, 'entity-unknown');
  }
}

function validateCIDR(ctx: Ctx, c: string, path: string): ParsedPrefix | undefined {
  if (c === '') {
    err(ctx, path, 'IP must be specified', 'cidr-empty');
    return undefined;
  }
  const r = parsePrefix(c);
  if (!r.ok) {
    err(ctx, path, `unable to parse CIDR: ${r.error}`, 'cidr-parse');
    return undefined;
  }
  return r.value;
}

/**
 * Upper bound of the set elements a CIDRSet list makes: an entry is one prefix, and each except of
 * length L cut from a cidr of length B leaves at most L - B prefixes. Unparsable entries count 1
 * (they are reported elsewhere). Cheap: no prefix arithmetic, so a hostile list cannot stall it.
 */
function cidrSetElementBound(rules: readonly CIDRRule[]): number {
  let n = 0;
  for (const r of rules) {
    const base = r.cidr === undefined ? undefined : parsePrefix(r.cidr);
    if (base === undefined || !base.ok || (r.except?.length ?? 0) === 0) {
      n += 1;
      continue;
    }
    for (const x of r.except ?? []) {
      const e = parsePrefix(x);
      n += e.ok ? Math.max(1, e.value.bits - base.value.bits) : 1;
    }
  }
  return n;
}

function validateCIDRRule(ctx: Ctx, c: CIDRRule, path: string, deny: boolean, host: boolean, ingress: boolean): void {
  const set = [c.cidr !== undefined && c.cidr !== '', c.cidrGroupRef !== undefined && c.cidrGroupRef !== '',
    c.cidrGroupSelector !== undefined].filter(Boolean).length;
  if (set === 0) {
    err(ctx, path, 'one of cidr, cidrGroupRef, or cidrGroupSelector is required', 'cidrset-none');
    return;
  }
  if (c.cidrGroupSelector !== undefined) validateSelector(ctx, c.cidrGroupSelector, childPath(path, 'cidrGroupSelector'));
  if (set > 1) {
    err(ctx, path, 'more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set', 'cidrset-many');
    return;
  }
  if (c.cidr !== undefined && c.cidr !== '') {
    const r = parsePrefix(c.cidr);
    if (!r.ok) {
      err(ctx, childPath(path, 'cidr'), `unable to parse CIDRRule ${JSON.stringify(c.cidr)}: ${r.error}`, 'cidr-parse');
      return;
    }
    c.except?.forEach((x, i) => {
      const xp = childPath(childPath(path, 'except'), i);
      const e = parsePrefix(x);
      if (!e.ok) err(ctx, xp, e.error, 'cidr-parse');
      else if (!prefixContains(r.value, e.value)) {
        err(ctx, xp, `allow CIDR prefix ${c.cidr} does not contain exclude CIDR prefix ${x}`, 'cidr-except');
      }
    });
    return;
  }
  if (!host) return;
  const what = c.cidrGroupRef !== undefined ? `cidrGroupRef ${c.cidrGroupRef}` : 'cidrGroupSelector';
  const peer = `the CIDRs of the CiliumCIDRGroup${c.cidrGroupRef !== undefined ? ` ${c.cidrGroupRef}` : 's it selects'}`;
  warn(ctx, path, unsupportedText(deny, ingress, `${what} (CiliumCIDRGroup objects are not read)`, peer),
    'unsupported/cidr-group');
}

