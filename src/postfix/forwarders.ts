// The designated forwarders: the SMTP clients whose Authentication-Results fields the pool
// milter reads. The milter runs on the submission listener, where the submitting client writes
// the whole header block, and nothing on that path removes a field that claims the inbound MX's
// authserv-id: RFC 8601 §5's removal of forged fields happens at the inbound MX's border, not
// here. A field naming the inbound MX is therefore evidence only in a message resubmitted by a
// forwarder the operator designates (a mailbox server whose forwarding rule resubmits what the
// inbound MX received, with the fields that MX added after stripping forged ones). Forwarders are
// named by client address (a single address or a CIDR range, IPv4 or IPv6) or by SASL login.

import { BlockList, SocketAddress, isIP } from 'node:net';
import { caseFold } from '../address.js';
import { OutboundPoolsError, show } from '../errors.js';

/** The designated forwarders, validated once by {@link parseForwarders}. */
export interface Forwarders {
  /**
   * Whether a message whose SMTP client has this address and this SASL login (`{auth_authen}`)
   * comes from a designated forwarder: the address is in one of the ranges, or the login is one
   * of the logins (compared case-insensitively). Either may be unknown.
   */
  includes(address: string | undefined, login: string | undefined): boolean;
}

/** An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`). */
const MAPPED = /^::ffff:\d{1,3}(?:\.\d{1,3}){3}$/i;

/** Looks like an IPv4 or IPv6 address or range that did not parse (`192.0.2.300`, `2001:db8::/129`). */
const ADDRESS_LIKE = /^(?:\d*\.[\d.]*|[\da-f.]*:[\da-f:.]*|\d+(?=\/))(?:\/.*)?$/i;

/**
 * One spelling for one client address: an IPv4 address as it is, an IPv6 address in its
 * canonical form without a zone (`2001:0DB8:0::1` → `2001:db8::1`), and an IPv4-mapped IPv6
 * address as the IPv4 address it maps (`::ffff:c000:201` → `192.0.2.1`), as `BlockList` matches.
 */
function addressKey(address: string, family: number): string {
  if (family === 4) return address;
  const canonical = new SocketAddress({ address, family: 'ipv6' }).address;
  return MAPPED.test(canonical) ? canonical.slice(7) : canonical;
}

function invalid(name: string, entry: unknown, why: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-context', `${name}: ${show(entry)} ${why}.`);
}

/**
 * Validates the list of designated forwarders (`authResultsFrom` of the pool milter,
 * `--auth-results-from` of the CLI). Each entry is one of:
 * - an IPv4 or IPv6 address (`192.0.2.25`, `2001:db8::25`): that client address;
 * - a CIDR range (`192.0.2.0/24`, `2001:db8::/48`): any client address in it (an IPv4 range also
 *   covers the IPv4-mapped IPv6 form of its addresses);
 * - anything else: a SASL login as Postfix's `{auth_authen}` gives it, compared case-insensitively.
 *
 * Something that looks like an address or range but does not parse (`192.0.2.300`,
 * `192.0.2.0/33`) is refused rather than taken for a login.
 *
 * @param entries - the forwarders; at least one
 * @param name - the option's name, for error messages (`--auth-results-from` in the CLI)
 * @throws OutboundPoolsError `invalid-context` naming the bad entry
 */
export function parseForwarders(entries: readonly string[], name = 'authResultsFrom'): Forwarders {
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new OutboundPoolsError('invalid-context', `${name} must be a non-empty array of client addresses, CIDR ranges or SASL logins, got ${show(entries)}.`);
  }
  // Single addresses are kept in a Set: a BlockList checks its rules one by one, and adding to
  // one costs more per address as it grows (about 1 µs an address at 2,000, 3 µs at 32,000).
  const ranges = new BlockList();
  let hasRanges = false;
  const addresses = new Set<string>();
  const logins = new Set<string>();
  for (const entry of entries as readonly unknown[]) {
    if (typeof entry !== 'string' || entry === '' || entry.trim() !== entry || /[\u0000-\u001f\u007f]/.test(entry)) {
      throw invalid(name, entry, 'is not a client address, a CIDR range or a SASL login (a non-empty string without spaces around it or control characters)');
    }
    const slash = entry.lastIndexOf('/');
    const host = slash === -1 ? entry : entry.slice(0, slash);
    const family = isIP(host);
    if (family !== 0 && slash !== -1) {
      const bits = entry.slice(slash + 1);
      const max = family === 4 ? 32 : 128;
      if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) throw invalid(name, entry, `needs a prefix length from 0 to ${max} after the "/"`);
      // An IPv4 range written in the IPv4-mapped form: under /96 it would reach past ::ffff:0:0/96,
      // over every IPv4 client (`::ffff:192.0.2.0/24` is an IPv6 /24).
      if (family === 6 && MAPPED.test(host) && Number(bits) < 96) {
        throw invalid(name, entry, `is an IPv6 range wider than the IPv4-mapped block (/96): write the IPv4 range (${host.slice(7)}/${Math.max(0, Number(bits) - 96)} …) instead`);
      }
      ranges.addSubnet(host, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
      hasRanges = true;
    } else if (family !== 0) {
      addresses.add(addressKey(host, family));
    } else if (ADDRESS_LIKE.test(entry)) {
      throw invalid(name, entry, 'looks like an IP address or CIDR range but is not one');
    } else {
      logins.add(caseFold(entry));
    }
  }
  return Object.freeze({
    includes(address: string | undefined, login: string | undefined): boolean {
      if (login !== undefined && login !== '' && logins.has(caseFold(login))) return true;
      if (address === undefined) return false;
      const family = isIP(address);
      if (family === 0) return false;
      if (addresses.size > 0 && addresses.has(addressKey(address, family))) return true;
      return hasRanges && ranges.check(address, family === 4 ? 'ipv4' : 'ipv6');
    },
  });
}
