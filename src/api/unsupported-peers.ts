// nodewall's warnings for peers Cilium resolves from objects or services that
// nodewall does not have (reference §4.5, §7): toFQDNs, toServices, groups,
// mutual authentication. Each names the traffic that ends up differing from Cilium.
import type { PeerRule, RuleListName } from './types.js';
import { childPath } from './field-path.js';
import { isDenyList, peerFieldName } from './peer-fields.js';
import { unsupportedText, warn, type Ctx } from './validate-context.js';

function portsText(pr: PeerRule): string {
  const ports = (pr.toPorts ?? []).flatMap((r) => r.ports ?? []).map((p) => `${p.port ?? '0'}/${p.protocol ?? 'ANY'}`);
  return ports.length > 0 ? ` on ${ports.join(', ')}` : '';
}

function names(items: readonly unknown[] | undefined, keys: readonly string[]): string {
  const out: string[] = [];
  for (const item of items ?? []) {
    if (item === null || typeof item !== 'object') continue;
    for (const k of keys) {
      const v = (item as Record<string, unknown>)[k];
      if (typeof v === 'string') out.push(v);
      else if (v !== null && typeof v === 'object') out.push(JSON.stringify(v));
    }
  }
  return out.join(', ');
}

export function unsupportedPeers(ctx: Ctx, pr: PeerRule, path: string, list: RuleListName): void {
  const ingress = list === 'ingress' || list === 'ingressDeny';
  const deny = isDenyList(list);
  const ports = portsText(pr);
  if ((pr.fqdns?.length ?? 0) > 0) {
    const n = names(pr.fqdns, ['matchName', 'matchPattern']);
    warn(ctx, childPath(path, 'toFQDNs'),
      unsupportedText(deny, ingress, 'toFQDNs (needs a DNS proxy)', `the addresses of ${n || 'the FQDNs'}`, ports),
      'unsupported/fqdns');
  }
  if ((pr.services?.length ?? 0) > 0) {
    const n = names(pr.services, ['k8sService', 'k8sServiceSelector']);
    warn(ctx, childPath(path, 'toServices'),
      unsupportedText(deny, ingress, 'toServices (Services are not watched)', `the backends of ${n || 'the services'}`, ports),
      'unsupported/services');
  }
  if ((pr.groups?.length ?? 0) > 0) {
    const field = peerFieldName(list, 'groups');
    warn(ctx, childPath(path, field),
      unsupportedText(deny, ingress, `${field} (cloud security groups are not looked up)`,
        `the addresses of the groups ${names(pr.groups, ['aws']) || ''}`.trim(), ports),
      'unsupported/groups');
  }
  if (pr.authentication === true && !deny) {
    warn(ctx, childPath(path, 'authentication'),
      'authentication (mutual auth) is not enforced by nodewall: unauthenticated traffic that Cilium would drop ' +
        'for this entry will be ALLOWED', 'unsupported/authentication');
  }
}

