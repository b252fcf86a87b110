// Hand-built models and sockets for the agent's unit tests.

import type { PolicyDocument } from '../../src/api/types.js';
import type { GoodEntry } from '../../src/agent/last-good.js';
import type { DirectionPolicy, HostModel, IdentitySet } from '../../src/policy/model.js';
import type { ProcSocket } from '../../src/agent/proc-net.js';
import { noFailsafes } from '../../src/policy/failsafe.js';

const open: DirectionPolicy = { enforced: false, defaultDeny: false, entries: [], reason: 'no policy' };

export function model(over: Partial<HostModel> = {}): HostModel {
  return {
    node: 'node-a',
    enforcementMode: 'default',
    runMode: 'enforce',
    selectedPolicies: [],
    ingress: open,
    egress: open,
    sets: {},
    exclusions: { cluster: { v4: [], v6: [] }, cluster_non_node: { v4: [], v6: [] } },
    hostAddresses: ['192.0.2.1', '2001:db8::1'],
    datapath: { allowICMPFragNeeded: true, icmpv6AlwaysAllow: [], icmpv6IngressPolicyTypes: [128, 129], extendedProtocols: false },
    failsafe: noFailsafes,
    ...over,
  };
}

export function set(name: string, v4: string[], v6: string[] = [], over: Partial<IdentitySet> = {}): IdentitySet {
  return { name, label: `test:${name}`, kind: 'cidr', v4, v6, ...over };
}

export function sock(over: Partial<ProcSocket>): ProcSocket {
  return {
    proto: 'tcp',
    family: 4,
    localAddress: '192.0.2.1',
    localPort: 22,
    remoteAddress: '0.0.0.0',
    remotePort: 0,
    state: 'listen',
    uid: 0,
    inode: 1,
    ...over,
  };
}

/** A rule-less CCNP with a given hash (its version), located at line 1 of `/p/<name>.yaml` unless told. */
export function policyDoc(name: string, hash: string, file = `/p/${name}.yaml`): PolicyDocument {
  const pos = { file, line: 1, col: 1 };
  return { kind: 'CiliumClusterwideNetworkPolicy', name, rules: [], pos, locate: () => pos, hash };
}

/** The last good entry of a document (text hash "t"). */
export const goodEntry = (d: PolicyDocument): GoodEntry => ({ key: d.name, file: d.pos.file, textHash: 't', doc: d });
