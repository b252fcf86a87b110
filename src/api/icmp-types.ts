// ICMP type names accepted by Cilium (reference §10). Names are case-sensitive
// and looked up in the table of the rule's family; numbers are used as-is.

export type ICMPFamily = 'IPv4' | 'IPv6';

export const ICMPV4_TYPES: Readonly<Record<string, number>> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

export const ICMPV6_TYPES: Readonly<Record<string, number>> = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MulticastListenerQuery: 130,
  MulticastListenerReport: 131,
  MulticastListenerDone: 132,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  RedirectMessage: 137,
  RouterRenumbering: 138,
  ICMPNodeInformationQuery: 139,
  ICMPNodeInformationResponse: 140,
  InverseNeighborDiscoverySolicitation: 141,
  InverseNeighborDiscoveryAdvertisement: 142,
  HomeAgentAddressDiscoveryRequest: 144,
  HomeAgentAddressDiscoveryReply: 145,
  MobilePrefixSolicitation: 146,
  MobilePrefixAdvertisement: 147,
  DuplicateAddressRequestCodeSuffix: 157,
  DuplicateAddressConfirmationCodeSuffix: 158,
  ExtendedEchoRequest: 160,
  ExtendedEchoReply: 161,
};

/** The CRD's `type` pattern misspells this name, so the API server rejects it (use the number). */
export const CRD_REJECTED_ICMP_NAME = 'ExtendedEchoReply';

export function icmpTypeTable(family: ICMPFamily): Readonly<Record<string, number>> {
  return family === 'IPv6' ? ICMPV6_TYPES : ICMPV4_TYPES;
}

/**
 * The numeric type for a name (in `family`'s table), an integer, or a decimal
 * string; undefined when Cilium would fail to decode it. Integers are returned
 * unchecked (Cilium does not range-check them; above 255 they never match).
 */
export function icmpTypeNumber(nameOrNumber: number | string, family: ICMPFamily): number | undefined {
  if (typeof nameOrNumber === 'number') return Number.isInteger(nameOrNumber) ? nameOrNumber : undefined;
  if (/^[0-9]+$/.test(nameOrNumber)) return Number.parseInt(nameOrNumber, 10);
  const table = icmpTypeTable(family);
  return Object.hasOwn(table, nameOrNumber) ? table[nameOrNumber] : undefined;
}
