// The name a DNS query is asked for, as the resolvers of outbound-pools take it: host names
// normalised as everywhere else (case, a trailing dot, U-labels to A-labels), and the other names
// DNS carries (`_dmarc.example.org`, `s1._domainkey.example.org`, single labels) label by label.

import { domainToASCII } from 'node:url';
import { labelOnlyCaseMapped, normaliseDomain } from '../address.js';

/** Printable ASCII: what a label may hold once it is in A-labels (DNS itself is 8-bit clean; c-ares is not). */
const ASCII_LABEL = /^[\x21-\x7e]+$/;
/** RFC 1035 §2.3.4: 255 octets on the wire, so 253 characters written without the root dot. */
const MAX_NAME = 253;
/** RFC 1035 §2.3.4: a label is 1 to 63 octets. */
const MAX_LABEL = 63;

/**
 * A label outside printable ASCII as its A-label, or '' (refused) when UTS-46 would change it
 * beyond case, NFC and the A-label: a soft hyphen or zero-width space dropped, fullwidth letters
 * or an ideographic full stop mapped (`_dmarc.con\u00ADtoso.com` would otherwise be asked as
 * `_dmarc.contoso.com`), as normaliseDomain refuses such names.
 */
function idnaLabel(label: string): string {
  const ascii = domainToASCII(label);
  return labelOnlyCaseMapped(label, ascii) ? ascii : '';
}

/**
 * `name` as it is asked: lowercase, without a trailing dot, U-labels as A-labels. Null when it
 * cannot be a DNS name (an empty label, a label over 63 octets, over 253 octets, a space or a
 * control character, a label UTS-46 would map beyond case, such as one with a soft hyphen):
 * node:dns answers such a name with EBADNAME, without sending a query.
 */
export function dnsQueryName(name: string): string | null {
  const domain = normaliseDomain(name);
  if (domain !== null) return domain;
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0) return null;
  // Label by label, stopping at the first that cannot be one or once the name is too long:
  // a hostile name of thousands of labels is answered without an array of them all.
  let normalised = '';
  for (let start = 0; start <= bare.length; ) {
    const dot = bare.indexOf('.', start);
    const end = dot === -1 ? bare.length : dot;
    const label = bare.slice(start, end);
    const ascii = ASCII_LABEL.test(label) ? label.toLowerCase() : idnaLabel(label);
    if (ascii.length === 0 || ascii.length > MAX_LABEL || !ASCII_LABEL.test(ascii)) return null;
    normalised = normalised === '' ? ascii : `${normalised}.${ascii}`;
    if (normalised.length > MAX_NAME) return null;
    start = end + 1;
  }
  return normalised;
}
