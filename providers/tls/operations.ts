/**
 * Pure decisions for drove's certificate kinds: when a certificate must be
 * made anew. No SSH, no clock of its own (the caller passes `now`).
 */
import { certificateInfo } from "../../src/tls";

const DAY = 24 * 60 * 60 * 1000;

/** A certificate is renewed (replaced) within this many days of its expiry... */
export const RENEW_WITHIN_DAYS = 30;

/**
 * ...or within a third of its validity, when that is shorter (a 7-day
 * certificate is renewed 2.3 days before it expires, not every run).
 */
export function renewalWindowDays(validityDays: number): number {
  return Math.min(RENEW_WITHIN_DAYS, validityDays / 3);
}

/** Why `certPem` must be replaced now, or undefined while it is good. */
export function renewalReason(certPem: string | undefined, validityDays: number, now: Date): string | undefined {
  if (typeof certPem !== "string" || !certPem) return undefined;
  let notAfter: Date;
  try {
    notAfter = new Date(certificateInfo(certPem).notAfter);
  } catch {
    return "the certificate in state cannot be read";
  }
  const left = (notAfter.getTime() - now.getTime()) / DAY;
  const window = renewalWindowDays(validityDays);
  if (left <= 0) return `it expired on ${notAfter.toISOString()}`;
  if (left < window) return `it expires on ${notAfter.toISOString()}, within ${Math.round(window * 10) / 10} days`;
  return undefined;
}

/** An IP address in the one spelling certificates read back with (IPv6 lower case, compressed). */
export function canonicalIp(ip: string): string {
  if (!ip.includes(":")) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}
