/**
 * Why an SRS operation was refused. Each code names one failure a mail admin can act on.
 *
 * - `invalid-option`: a constructor or call option is wrong (the message names it).
 * - `invalid-address`: the address is not a usable envelope address (not a string, empty,
 *   control characters, a lone UTF-16 surrogate, longer than {@link MAX_ADDRESS_LENGTH}, empty
 *   local part).
 * - `invalid-domain`: the forwarding domain, or the domain of the sender given to
 *   {@link Srs.forward}, is not a domain name.
 * - `no-domain`: the address has no `@domain` part.
 * - `not-srs`: {@link Srs.reverse} was given an address that is not SRS0, SRS1 or our fallback.
 * - `malformed`: it looks like SRS (tag and separator) but a field is missing or invalid, or it
 *   holds what no genuine forward produces (a host that is not a domain name, an original local
 *   part over 64 octets or itself SRS, an SRS1 part without its separator).
 * - `bad-hash`: the hash does not match under any configured secret, or is shorter than `hashMin`.
 * - `expired`: the timestamp is older than `maxAge` days.
 * - `future`: the timestamp lies in the future.
 * - `local-part-too-long`: the rewritten local part would exceed 64 octets (RFC 5321
 *   §4.5.3.1.1) and `longLocalPart` is `'refuse'`.
 */
export type SrsErrorCode =
  | 'invalid-option'
  | 'invalid-address'
  | 'invalid-domain'
  | 'no-domain'
  | 'not-srs'
  | 'malformed'
  | 'bad-hash'
  | 'expired'
  | 'future'
  | 'local-part-too-long';

/** The one error class of `outbound-pools/srs`; `code` is machine-readable, `message` is for people. */
export class SrsError extends Error {
  override readonly name = 'SrsError';
  readonly code: SrsErrorCode;

  constructor(code: SrsErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The longest input accepted, in UTF-16 code units. RFC 5321 caps a path at 256 octets; postsrsd
 * 1.x caps its table lines at 1024 bytes. Anything longer is refused before any parsing, so no
 * input can make the parser do more than a bounded amount of work.
 */
export const MAX_ADDRESS_LENGTH = 1024;
