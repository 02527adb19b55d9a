// The Guarded SRS scheme of Mail::SRS (its default), byte for byte: SRS0 for the first hop,
// SRS1 for later hops so that addresses never grow past one level of wrapping.

import {
  asLocalPart,
  checkAddressText,
  equalsIgnoringAsciiCase,
  isDomainName,
  isSrs as hasSrsTag,
  isWrappedSrs0,
  MAX_LOCAL_PART_OCTETS,
  octets,
  parseSrsLocal,
  quoteLocalPart,
  scanSrsFields,
  splitAddress,
  srsKind,
  startsWithIgnoringAsciiCase,
  viewAddress,
  type AddressParts,
  type SrsAddress,
} from './address.js';
import { SrsError } from './errors.js';
import { SrsHasher } from './hash.js';
import { normaliseSrsOptions, type SrsOptions, type SrsSettings } from './options.js';
import { dayOfCycle, decodeStamp, encodeStamp, stampAge, STAMP_CYCLE } from './timestamp.js';

/** Per-call options of {@link Srs.forward} and {@link Srs.reverse}. */
export interface SrsCallOptions {
  /** The clock: a Date or milliseconds since the epoch. Default: now. */
  readonly now?: Date | number;
}

/** The Microsoft 365-style fallback for over-long local parts: `bounces+SRS=HASH=TT@domain`. */
export interface BouncesAddress {
  readonly type: 'bounces';
  /** The mailbox that receives bounces, `bounces` by default. */
  readonly mailbox: string;
  readonly hash: string;
  readonly timestamp: string;
  readonly domain: string;
}

/** Stamps more than this many days ahead are reported as expired rather than future. */
const FUTURE_HORIZON = STAMP_CYCLE / 2;

function nowMs(options: SrsCallOptions | undefined): number {
  const now = options?.now;
  if (now === undefined) return Date.now();
  const ms = now instanceof Date ? now.getTime() : now;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new SrsError('invalid-option', `now must be a valid Date or milliseconds since the epoch, got ${String(now)}.`);
  }
  return ms;
}

function forwardingHost(forwardingDomain: unknown): string {
  // Like Mail::SRS, a full address is accepted and its domain used.
  const host = (forwardingDomain as string).slice(checkAddressText(forwardingDomain, 'forwarding domain') + 1);
  if (!isDomainName(host)) {
    throw new SrsError('invalid-domain', `The forwarding domain ${JSON.stringify(forwardingDomain)} is not a domain name.`);
  }
  return host;
}

/**
 * A Sender Rewriting Scheme rewriter, byte-compatible with Mail::SRS (Guarded), postsrsd and
 * pysrs. Construct it once; options are validated here and {@link SrsError} `invalid-option`
 * says what is wrong.
 *
 * @example
 * ```ts
 * const srs = new Srs({ secret: 'tops3cr3t' });
 * srs.forward('test@otherdomain.com', 'example.com', { now: 1577836860_000 });
 * // 'SRS0=vmyz=2W=otherdomain.com=test@example.com'
 * srs.reverse('SRS0=vmyz=2W=otherdomain.com=test@example.com', { now: 1577836860_000 });
 * // 'test@otherdomain.com'
 * ```
 */
export class Srs {
  /** The settings in force (frozen; secrets are not exposed). */
  readonly settings: SrsSettings;
  readonly #hasher: SrsHasher;
  readonly #bouncesPrefix: string;
  // The forwarding domain checked last: an MTA forwards through the same few domains.
  #lastForwardingDomain = '';
  #lastForwardingHost = '';
  // The stamp of the day last signed: it changes once a day.
  #stampDay = -1;
  #stamp = '';
  // Octets of the local part #rewriteLocal last built.
  #rewrittenOctets = 0;

  constructor(options: SrsOptions) {
    const { settings, secrets } = normaliseSrsOptions(options);
    this.settings = settings;
    this.#hasher = new SrsHasher(secrets, settings.alphabet, settings.hashInput);
    this.#bouncesPrefix = `${settings.bouncesLocalPart}+SRS=`.toLowerCase();
  }

  /**
   * Rewrites an envelope sender for forwarding through `forwardingDomain`:
   * `user@host` → `SRS0=HASH=TT=host=user@forwardingDomain`; an SRS0 address from another
   * forwarder → SRS1; an SRS1 address → SRS1 re-signed for this hop. A sender already in the
   * forwarding domain comes back unchanged unless `alwaysRewrite`.
   *
   * @throws {SrsError} `invalid-address`, `no-domain`, `invalid-domain` (the forwarding domain
   * or the sender's domain is not a domain name: `reverse` would refuse the result),
   * `malformed` (an SRS1 input without its fields), `local-part-too-long` (when
   * `longLocalPart` is `'refuse'`).
   */
  forward(address: string, forwardingDomain: string, options?: SrsCallOptions): string {
    const host = this.#forwardingHost(forwardingDomain);
    const { text, end, at, quoted } = viewAddress(address);
    const domain = address.slice(at + 1);
    if (!isDomainName(domain)) {
      throw new SrsError('invalid-domain', `The sender's domain in ${JSON.stringify(address)} is not a domain name, so SRS cannot carry it.`);
    }
    if (!this.settings.alwaysRewrite && equalsIgnoringAsciiCase(domain, host)) return address;
    const now = nowMs(options);
    let local = this.#rewriteLocal(quoted ? text : text.slice(0, end), domain, address, now);
    let size = this.#rewrittenOctets;
    if (quoted) {
      local = quoteLocalPart(local);
      size = octets(local);
    }
    if (size > MAX_LOCAL_PART_OCTETS) return this.#tooLong(address, host, size, now);
    return `${local}@${host}`;
  }

  #forwardingHost(forwardingDomain: string): string {
    if (forwardingDomain !== this.#lastForwardingDomain || this.#lastForwardingDomain === '') {
      this.#lastForwardingHost = forwardingHost(forwardingDomain);
      this.#lastForwardingDomain = forwardingDomain;
    }
    return this.#lastForwardingHost;
  }

  #stampFor(now: number): string {
    const day = dayOfCycle(now);
    if (day !== this.#stampDay) {
      this.#stamp = encodeStamp(day);
      this.#stampDay = day;
    }
    return this.#stamp;
  }

  /**
   * The SRS local part for a sender's `local` part and `domain`; leaves its size in octets in
   * #rewrittenOctets, added up from the octets the hasher has just written rather than counted
   * on the result (the rest is ASCII).
   */
  #rewriteLocal(local: string, domain: string, address: string, now: number): string {
    const { separator, hashLength } = this.settings;
    const hasher = this.#hasher;
    const kind = srsKind(local);
    if (kind === 'SRS1') {
      // SRS1 → SRS1: keep the first forwarder's host and the wrapped SRS0, re-sign for this hop.
      // The old hash is not checked: it belongs to the previous forwarder, not to us.
      const hostStart = local.indexOf('=', 5) + 1;
      const hostEnd = hostStart === 0 ? -1 : local.indexOf('=', hostStart);
      if (hostEnd < 0 || !isDomainName(local, hostStart, hostEnd) || !isWrappedSrs0(local, hostEnd + 1)) {
        throw new SrsError(
          'malformed',
          `The SRS1 address ${JSON.stringify(address)} is malformed: SRS1 needs HASH=srs0host=<separator>srs0part with a domain name as srs0host.`,
        );
      }
      const srs0Host = local.slice(hostStart, hostEnd);
      const rest = local.slice(hostEnd + 1);
      const hash = hasher.sign(hashLength, srs0Host, rest);
      this.#rewrittenOctets = 7 + hash.length + hasher.signedOctets; // SRS1 s HASH = =
      return `SRS1${separator}${hash}=${srs0Host}=${rest}`;
    }
    if (kind === 'SRS0') {
      // SRS0 → SRS1: strip only the literal `SRS0` and keep its separator, hence `==`
      // (Mail::SRS Guarded). The SRS0 is opaque here: its own forwarder verifies it.
      const rest = local.slice(4);
      const hash = hasher.sign(hashLength, domain, rest);
      this.#rewrittenOctets = 7 + hash.length + hasher.signedOctets;
      return `SRS1${separator}${hash}=${domain}=${rest}`;
    }
    const stamp = this.#stampFor(now);
    const hash = hasher.sign(hashLength, stamp, domain, local);
    this.#rewrittenOctets = 8 + hash.length + hasher.signedOctets; // SRS0 s HASH = (TT) = =
    return `SRS0${separator}${hash}=${stamp}=${domain}=${local}`;
  }

  #tooLong(address: string, host: string, size: number, now: number): string {
    const { bouncesLocalPart, hashLength, longLocalPart } = this.settings;
    if (longLocalPart === 'refuse') {
      throw new SrsError(
        'local-part-too-long',
        `Rewriting ${JSON.stringify(address)} via ${host} gives a ${size}-octet local part; RFC 5321 allows 64. ` +
          "Deliver it unrewritten, reject it, or set longLocalPart: 'bounces'.",
      );
    }
    const stamp = this.#stampFor(now);
    const hash = this.#hasher.sign(hashLength, stamp, host, bouncesLocalPart);
    return `${bouncesLocalPart}+SRS=${hash}=${stamp}@${host}`;
  }

  /**
   * Undoes one hop: SRS0 → the original sender; SRS1 → the SRS0 address at the first
   * forwarder; the `bounces` fallback → the bounces mailbox of its domain. Verifies the hash
   * against every secret (case-insensitive, `+`≡`-`, `/`≡`_`, at least `hashMin` characters)
   * and the timestamp (SRS0 and fallback; at most `maxAge` days old, not in the future).
   * The domain after `@` is not checked: it is not covered by the hash (as in every peer).
   * What no genuine forward produces is refused as `malformed` (a host that is not a domain name,
   * an empty or over-64-octet original local part, one that is itself SRS). The local part comes
   * back bare when it is atext and dots, as it stands when it already is a quoted-string, and
   * quoted otherwise, whatever quoting the SRS address itself had: quotes are outside the hash,
   * so they must not change the result. With the default `hashInput` the host/local boundary is
   * not signed either (docs/srs.md, "Boundary shifts").
   *
   * @throws {SrsError} `not-srs`, `malformed`, `bad-hash`, `expired`, `future`,
   * `invalid-address`, `no-domain`.
   */
  reverse(address: string, options?: SrsCallOptions): string {
    const { text, end, at } = viewAddress(address);
    const now = nowMs(options);
    // The fallback first, as in parse(): its prefix is this rewriter's own, so it wins.
    if (startsWithIgnoringAsciiCase(text, this.#bouncesPrefix)) {
      return this.#reverseBounces(address, text.slice(0, end), address.slice(at + 1), now);
    }
    const { kind, hashEnd, stampEnd, hostEnd } = scanSrsFields(text, end, address);
    const hash = text.slice(5, hashEnd);
    if (kind === 'SRS0') {
      const stamp = text.slice(hashEnd + 1, stampEnd);
      const host = text.slice(stampEnd + 1, hostEnd);
      const local = text.slice(hostEnd + 1, end);
      this.#checkHash(address, hash, stamp, host, local);
      this.#checkStamp(stamp, now, address);
      return `${asLocalPart(local)}@${host}`;
    }
    const srs0Host = text.slice(hashEnd + 1, hostEnd);
    const rest = text.slice(hostEnd + 1, end);
    this.#checkHash(address, hash, srs0Host, rest);
    return `${asLocalPart(`SRS0${rest}`)}@${srs0Host}`;
  }

  #reverseBounces(address: string, local: string, domain: string, now: number): string {
    const parsed = this.#parseBounces({ local, domain, quoted: false }, address)!;
    this.#checkHash(address, parsed.hash, parsed.timestamp, parsed.domain, parsed.mailbox);
    this.#checkStamp(parsed.timestamp, now, address);
    return `${parsed.mailbox}@${parsed.domain}`;
  }

  /**
   * Whether an address is SRS0, SRS1 or this rewriter's `bounces` fallback, by its form only
   * (no hash or age check). Never throws.
   */
  isSrs(address: unknown): boolean {
    if (hasSrsTag(address)) return true;
    return typeof address === 'string' && startsWithIgnoringAsciiCase(address, this.#bouncesPrefix);
  }

  /**
   * The fields of an SRS0, SRS1 or `bounces` fallback address, unverified.
   * @throws {SrsError} `not-srs`, `malformed`, `invalid-address`, `no-domain`.
   */
  parse(address: string): SrsAddress | BouncesAddress {
    return this.#parseParts(splitAddress(address), address);
  }

  #parseParts(parts: AddressParts, address: string): SrsAddress | BouncesAddress {
    const fallback = this.#parseBounces(parts, address);
    return fallback ?? parseSrsLocal(parts, address);
  }

  #parseBounces(parts: AddressParts, address: string): BouncesAddress | null {
    const prefix = this.#bouncesPrefix;
    if (!startsWithIgnoringAsciiCase(parts.local, prefix)) return null;
    const fields = parts.local.slice(prefix.length).split('=');
    const [hash, timestamp] = fields;
    if (fields.length !== 2 || !hash || decodeStamp(timestamp ?? '') < 0 || !isDomainName(parts.domain)) {
      throw new SrsError('malformed', `The bounce address ${JSON.stringify(address)} is malformed: expected ${prefix}HASH=TT@domain.`);
    }
    return { type: 'bounces', mailbox: this.settings.bouncesLocalPart, hash, timestamp: timestamp!, domain: parts.domain };
  }

  #checkHash(address: string, hash: string, a: string, b: string, c?: string): void {
    if (hash.length < this.settings.hashMin) {
      throw new SrsError(
        'bad-hash',
        `The SRS address ${JSON.stringify(address)} has a ${hash.length}-character hash; at least ${this.settings.hashMin} are required.`,
      );
    }
    if (!this.#hasher.verify(hash, a, b, c)) {
      throw new SrsError(
        'bad-hash',
        `The SRS address ${JSON.stringify(address)} has a hash that no configured secret produced: forged, damaged, or signed with a retired secret.`,
      );
    }
  }

  #checkStamp(stamp: string, now: number, address: string): void {
    const age = stampAge(dayOfCycle(now), decodeStamp(stamp));
    if (age <= this.settings.maxAge) return;
    if (age > FUTURE_HORIZON) {
      throw new SrsError('future', `The SRS address ${JSON.stringify(address)} has a timestamp ${STAMP_CYCLE - age} day(s) in the future.`);
    }
    throw new SrsError(
      'expired',
      `The SRS address ${JSON.stringify(address)} expired: it is ${age} days old and maxAge is ${this.settings.maxAge}.`,
    );
  }
}
