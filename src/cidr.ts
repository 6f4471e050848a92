/**
 * CIDR blocks (IPv4 and IPv6) for network subnets: parsing with a reason a
 * user can act on, and overlap between two blocks. Parsing is ip-address's.
 */
import { Address4, Address6 } from "ip-address";

export interface Cidr {
  /** The block as given, which is also its canonical form. */
  readonly text: string;
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
}

/** Parses `10.1.0.0/16` or `fd00:1::/64`; returns the reason it is not a CIDR block. */
export function parseCidr(text: string): Cidr | { error: string } {
  if (typeof text !== "string" || !/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(text)) {
    return { error: `must be a CIDR block like 10.10.0.0/24, but ${JSON.stringify(text)} was provided` };
  }
  const v4 = text.includes(":") ? undefined : Address4.isValid(text) ? new Address4(text) : undefined;
  const v6 = v4 || !text.includes(":") ? undefined : Address6.isValid(text) ? new Address6(text) : undefined;
  const addr = v4 ?? v6;
  if (!addr) return { error: `must be a CIDR block like 10.10.0.0/24, but ${JSON.stringify(text)} was provided` };
  const bits = v4 ? 32 : 128;
  if (addr.subnetMask > bits) return { error: `has a prefix length of ${addr.subnetMask}, but an IPv${v4 ? 4 : 6} prefix is at most ${bits}` };
  const start = addr.startAddress();
  const network = `${start.correctForm()}/${addr.subnetMask}`;
  if (start.bigInt() !== addr.bigInt()) return { error: `${text} has host bits set: write it as ${network}` };
  return { text, family: v4 ? 4 : 6, first: start.bigInt(), last: addr.endAddress().bigInt() };
}

export function isCidr(x: Cidr | { error: string }): x is Cidr {
  return !("error" in x);
}

/** True when the two blocks share an address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}
