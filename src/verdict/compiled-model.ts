// A HostModel compiled for evaluation, once per model object (WeakMap): the identity sets in name
// order with their address ranges, each direction's entry index and the entries' peers as set
// indexes, the local-address ranges and the fixed reason texts. What is costly to build is cached
// below the model, by the objects an incremental update keeps (address lists, DirectionPolicy), so a
// model that differs from the last by a few pods compiles in O(sets + entries).
//
// A later verdict path (a staged model, a failsafe) adds a field here and a step in evaluate().

import { formatPrefix, hostPrefix } from '../policy/cidr.js';
import type { DirectionPolicy, HostModel } from '../policy/model.js';
import { AddressRanges, rangesOf, type FlowAddress } from './address-ranges.js';
import { directionIndex, type DirectionIndex } from './entry-index.js';
import { IntervalMembership, scanMembership, type CompiledSet, type Membership } from './set-membership.js';

export interface CompiledDirection {
  readonly policy: DirectionPolicy;
  readonly index: DirectionIndex;
  /** Per entry: its peer's index in CompiledModel.sets, -1 for any peer, -2 for a set the model lacks (never matches). */
  readonly peers: Int32Array;
  readonly defaultAllowReason: string;
  readonly defaultDenyReason: string;
}

const loopbackNets = ['127.0.0.0/8', '::1/128'];

/**
 * Flows evaluated on one model before it gets an interval index of set membership, per range held:
 * scanning costs about one bisection per set and flow, the index about a few per range to build.
 */
const indexAfterFlowsPerRange = 4;

export class CompiledModel {
  readonly sets: readonly CompiledSet[];
  readonly ingress: CompiledDirection;
  readonly egress: CompiledDirection;
  readonly #model: HostModel;
  #local: AddressRanges | undefined;
  #flows = 0;
  #held: number | undefined;
  #index: IntervalMembership | undefined;
  /** Per set: the flow stamp of the last membership marked (no clearing between flows). */
  readonly #stamp: Int32Array;
  #gen = 0;

  constructor(model: HostModel) {
    this.#model = model;
    const names = Object.keys(model.sets).sort();
    this.sets = names.map((name): CompiledSet => {
      const s = model.sets[name]!;
      const ex = s.exclude;
      return {
        name,
        exclude: ex,
        ranges: () => rangesOf(s),
        // A missing exclusion excludes nothing.
        exclusion: ex === undefined ? undefined : () => (Object.hasOwn(model.exclusions, ex) ? rangesOf(model.exclusions[ex]) : emptyRanges),
      };
    });
    const position = new Map(names.map((n, i) => [n, i]));
    const direction = (policy: DirectionPolicy, name: 'ingress' | 'egress'): CompiledDirection => {
      const index = directionIndex(policy);
      return {
        policy,
        index,
        peers: Int32Array.from(index.entries.map((e) => (e.peer === null ? -1 : (position.get(e.peer) ?? -2)))),
        defaultAllowReason: `No entry matched and ${name} has no default deny. ${policy.reason}`,
        defaultDenyReason: `No allow entry matched; default deny. ${policy.reason}`,
      };
    };
    this.ingress = direction(model.ingress, 'ingress');
    this.egress = direction(model.egress, 'egress');
    this.#stamp = new Int32Array(names.length);
  }

  /** This node's own addresses and loopback: traffic over lo. */
  isLocal(a: FlowAddress): boolean {
    this.#local ??= new AddressRanges([...loopbackNets, ...this.#model.hostAddresses.map((h) => formatPrefix(hostPrefix(h)))]);
    return this.#local.has(a);
  }

  /** The identity sets `a` belongs to (exclusions honoured). */
  membership(a: FlowAddress): Membership {
    if (this.#index !== undefined) return this.#index.lookup(a);
    const m = scanMembership(this.sets, a);
    if (++this.#flows * this.sets.length >= indexAfterFlowsPerRange * this.#rangesHeld()) this.#index = new IntervalMembership(this.sets);
    return m;
  }

  /** Marks `m` for peerIn(); valid until the next call. */
  mark(m: Membership): void {
    if (++this.#gen === 0x7fffffff) {
      this.#stamp.fill(0);
      this.#gen = 1;
    }
    for (let k = 0; k < m.idx.length; k++) this.#stamp[m.idx[k]!] = this.#gen;
  }

  /** Does an entry with this peer index match the address last marked? */
  peerIn(peer: number): boolean {
    return peer === -1 || (peer >= 0 && this.#stamp[peer] === this.#gen);
  }

  /** Forces the interval index now (tests compare both ways). */
  buildIndex(): void {
    this.#index ??= new IntervalMembership(this.sets);
  }

  /**
   * Ranges the index would hold: the sets' (built by the scan anyway) and, as an upper bound, the
   * exclusions' prefix counts: their ranges are built only where a flow needs them, and a model
   * evaluated a few times (lint, the lockout guard) must not parse the whole cluster exclusion.
   */
  #rangesHeld(): number {
    if (this.#held === undefined) {
      let n = 0;
      for (const s of this.sets) n += s.ranges().size;
      for (const ex of new Set(this.sets.map((s) => s.exclude))) {
        if (ex !== undefined && Object.hasOwn(this.#model.exclusions, ex)) n += this.#model.exclusions[ex].v4.length + this.#model.exclusions[ex].v6.length;
      }
      this.#held = n;
    }
    return this.#held;
  }
}

const emptyRanges = new AddressRanges([]);

const compiled = new WeakMap<HostModel, CompiledModel>();

export function compiledModel(model: HostModel): CompiledModel {
  let c = compiled.get(model);
  if (c === undefined) {
    c = new CompiledModel(model);
    compiled.set(model, c);
  }
  return c;
}
