// From the message as given to what the rules read: every field checked, addresses parsed,
// recipients split into internal and external, and NDR-ness settled (rule 4).

import { isIP } from '../ip.js';
import { isNullSender, limitKeyOf, localPartValue, normaliseDomain, parseEnvelopeAddress, senderLimitKey, withoutBrackets, type EnvelopeAddress } from '../address.js';
import { describeThrown, OutboundPoolsError, show } from '../errors.js';
import { contentTypeParameter, decisionFields, detach, fromDomain, parseContentType, type DecisionFields } from '../headers.js';
import { isAcceptedDomain, type Policy } from '../policy.js';
import { plainRecord } from '../records.js';
import type { Ingress } from '../providers/types.js';
import { srsKind } from '../srs/address.js';
import type { Envelope, NdrVerdict, OutboundMessage } from './types.js';

const MESSAGE_KEYS = new Set(['mailFrom', 'rcptTo', 'headers', 'submitter', 'queueId', 'ingress', 'authentication', 'spam', 'groups', 'autoForwarded', 'tenant']);
/** Groups a sender may be in, as far as one message says (a directory's nested groups, flattened). */
const MAX_GROUPS = 1_000;
const MAX_GROUP_LENGTH = 256;
const NO_GROUPS: readonly string[] = Object.freeze([]);
/** More recipients than this in one call is refused as input, whatever the policy says. */
export const MAX_RECIPIENTS = 100_000;
const MAX_SUBMITTER_LENGTH = 512;

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-message', message);
}

/**
 * RFC 3462/6522: a DSN is `multipart/report` with `report-type=delivery-status` (parameter
 * names and the value are case-insensitive, the value may be quoted).
 */
function isDeliveryStatusReport(value: string | undefined): boolean {
  if (value === undefined) return false;
  // Most messages are no report: a type other than multipart/report, with no comment that could
  // hide the real one (`multipart(x)/report`), needs no parsing.
  if (!MAYBE_REPORT.test(value) && value.indexOf('(') < 0) return false;
  const contentType = parseContentType(value);
  if (contentType?.type !== 'multipart/report') return false;
  // RFC 2231 forms too (`report-type*=''delivery-status`, sections): a bounce written so is one.
  // One that cannot be read: when in doubt, a bounce (high-risk pool).
  const reportType = contentTypeParameter(contentType.parameters, 'report-type');
  return reportType === null || reportType?.toLowerCase() === 'delivery-status';
}

const MAYBE_REPORT = /^\s*multipart\/report/i;

// The three possible NDR verdicts, shared (frozen) rather than made for every message.
const NULL_SENDER: NdrVerdict = Object.freeze({ isNdr: true, basis: 'null-sender' });
const DELIVERY_STATUS_REPORT: NdrVerdict = Object.freeze({ isNdr: true, basis: 'delivery-status-report' });
const NOT_AN_NDR: NdrVerdict = Object.freeze({ isNdr: false, basis: null });

function ndrVerdict(sender: EnvelopeAddress | null, fields: DecisionFields | null): NdrVerdict {
  if (sender === null) return NULL_SENDER;
  if (fields !== null && isDeliveryStatusReport(fields.contentType)) return DELIVERY_STATUS_REPORT;
  return NOT_AN_NDR;
}


const INGRESS_KEYS = new Set(['ip', 'helo', 'mailFrom']);
/** RFC 1035 §2.3.4: a name is at most 255 octets; a HELO argument is a name or an address literal. */
const MAX_HELO_LENGTH = 255;
const CONTROL = /[\x00-\x1f\x7f]/;
// A lone surrogate has no UTF-8 form: a key holding one would be another key on Redis (U+FFFD).
const LONE_SURROGATE = /[\ud800-\udfff]/u;
/** RFC 5321 §4.5.3.1.3: a reverse-path is at most 256 octets with its angle brackets; twice that, for UTF-8 and slack. */
const MAX_INGRESS_PATH = 512;

/**
 * `message.ingress`, checked and copied: `ip` an IPv4 or IPv6 address, `helo` a name without
 * spaces or control characters (RFC 5321 §4.1.1.1), `mailFrom` an envelope address or the null
 * sender. The authenticator evaluates SPF for them (rules 7 and 8): a guess would verify the wrong sender.
 */
function checkIngress(ingress: unknown): Ingress {
  let ip: unknown;
  let helo: unknown;
  let mailFrom: unknown;
  try {
    if (typeof ingress !== 'object' || ingress === null || Array.isArray(ingress)) {
      throw invalid(`ingress must be an object { ip?, helo?, mailFrom? }, got ${show(ingress)}.`);
    }
    for (const key in ingress) {
      if (!INGRESS_KEYS.has(key)) throw invalid(`Unknown ingress field ${show(key)}; known: ${[...INGRESS_KEYS].join(', ')}.`);
    }
    ({ ip, helo, mailFrom } = ingress as Record<string, unknown>);
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw error;
    throw invalid(`ingress cannot be read (${describeThrown(error)}).`);
  }
  const checked: { -readonly [K in keyof Ingress]: Ingress[K] } = {};
  if (ip !== undefined) {
    if (typeof ip !== 'string' || isIP(ip) === 0) throw invalid(`ingress.ip must be an IPv4 or IPv6 address, got ${show(ip)}.`);
    checked.ip = ip;
  }
  if (helo !== undefined) {
    // As ingress.mailFrom below: what the client said, judged by SPF (RFC 7208 §2.3: a HELO
    // that is not a domain name gives "none"), so only what no EHLO line can carry is refused.
    if (typeof helo !== 'string' || helo.length === 0 || helo.length > MAX_HELO_LENGTH || CONTROL.test(helo)) {
      throw invalid(`ingress.helo must be 1 to ${MAX_HELO_LENGTH} characters without control characters, got ${show(helo)}.`);
    }
    checked.helo = helo;
  }
  if (mailFrom !== undefined) {
    // What the client said at ingress, which the border accepted: its syntax is SPF's to judge
    // (RFC 7208 §4.3: a malformed domain gives "none", a missing local part means postmaster),
    // and SPF vouches only for the envelope sender's own domain anyway. Refused here is only what
    // cannot have been one MAIL FROM argument: control characters (CR LF would smuggle a command
    // into anything that logs or replays it) and more than RFC 5321 §4.5.3.1.3's path allows.
    if (typeof mailFrom !== 'string') throw invalid(`ingress.mailFrom must be a string ('' for the null sender), got ${show(mailFrom)}.`);
    if (mailFrom.length > MAX_INGRESS_PATH || CONTROL.test(mailFrom)) {
      throw invalid(`ingress.mailFrom must be at most ${MAX_INGRESS_PATH} characters without control characters, got ${show(mailFrom)}.`);
    }
    // Written as the MAIL FROM command carries it (`<alice@example.org>`, `<>`), as mailFrom may
    // be: the authenticator gets the path without its brackets (SPF would read `example.org>`).
    checked.mailFrom = withoutBrackets(mailFrom);
  }
  return checked;
}

/**
 * The message's fields, each read once into an object of our own (a getter may answer
 * differently each time, or throw), with unknown fields refused and `ingress` checked. What
 * follows reads only the copy.
 * @throws {OutboundPoolsError} `invalid-message`, `invalid-address`.
 */
export function readMessage(message: unknown): OutboundMessage {
  let fields: OutboundMessage;
  try {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw invalid(`The message must be an object with mailFrom and rcptTo, got ${show(message)}.`);
    }
    for (const key in message) {
      if (!MESSAGE_KEYS.has(key)) throw invalid(`Unknown message field ${show(key)}; known: ${[...MESSAGE_KEYS].join(', ')}.`);
    }
    const { mailFrom, rcptTo, headers, submitter, queueId, ingress, authentication, spam, groups, autoForwarded, tenant } = message as OutboundMessage;
    fields = { mailFrom, rcptTo, headers, submitter, queueId, ingress, authentication, spam, groups, autoForwarded, tenant } as OutboundMessage;
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw error;
    throw invalid(`The message cannot be read (${describeThrown(error)}).`);
  }
  if (fields.ingress === undefined) return fields;
  return { ...fields, ingress: checkIngress(fields.ingress) };
}

/**
 * Checks and parses a message for the rules.
 * @throws {OutboundPoolsError} `invalid-message`, `invalid-address`, `invalid-headers`.
 */
export function readEnvelope(message: OutboundMessage, policy: Policy): Envelope {
  return envelopeOf(readMessage(message), policy);
}

/**
 * An {@link Envelope} made by `new`, and its recipient list by Array.of rather than an array
 * literal or `new Array` (see records.ts: the envelope waits with its decision for the providers).
 */
const EnvelopeRecord = plainRecord<
  [
    sender: EnvelopeAddress | null,
    recipients: readonly EnvelopeAddress[],
    internalRecipients: number,
    headerFromDomain: string | null,
    messageId: string | null,
    limitKey: string,
    senderAccepted: boolean,
    ndr: NdrVerdict,
    groups: readonly string[],
    autoForwarded: boolean,
    tenant: string | null,
  ],
  Envelope
>(function (sender, recipients, internalRecipients, headerFromDomain, messageId, limitKey, senderAccepted, ndr, groups, autoForwarded, tenant) {
  this.sender = sender;
  this.recipients = recipients;
  this.internalRecipients = internalRecipients;
  this.externalRecipients = recipients.length - internalRecipients;
  this.headerFromDomain = headerFromDomain;
  this.messageId = messageId;
  this.limitKey = limitKey;
  this.senderAccepted = senderAccepted;
  this.ndr = ndr;
  this.groups = groups;
  this.autoForwarded = autoForwarded;
  this.tenant = tenant;
});

/** {@link readEnvelope} of a message {@link readMessage} has read. */
export function envelopeOf(message: OutboundMessage, policy: Policy): Envelope {
  const { mailFrom, rcptTo, submitter } = message;
  if (typeof mailFrom !== 'string') throw invalid(`mailFrom must be a string ('' for the null sender), got ${show(mailFrom)}.`);
  let count: number;
  try {
    count = Array.isArray(rcptTo) ? rcptTo.length : 0;
  } catch (error) {
    throw invalid(`rcptTo cannot be read (${describeThrown(error)}).`);
  }
  if (count === 0) throw invalid('rcptTo must be a non-empty array of addresses.');
  if (count > MAX_RECIPIENTS) throw invalid(`rcptTo has ${count} addresses; at most ${MAX_RECIPIENTS} are accepted in one call.`);
  if (submitter !== undefined && (typeof submitter !== 'string' || submitter.length === 0 || submitter.length > MAX_SUBMITTER_LENGTH || CONTROL.test(submitter) || LONE_SURROGATE.test(submitter))) {
    throw invalid(`submitter must be a non-empty string of at most ${MAX_SUBMITTER_LENGTH} printable characters (no lone surrogates), got ${show(submitter)}.`);
  }
  const { queueId } = message;
  if (queueId !== undefined && (typeof queueId !== 'string' || queueId.length === 0 || queueId.length > MAX_SUBMITTER_LENGTH || CONTROL.test(queueId))) {
    throw invalid(`queueId must be a non-empty string of at most ${MAX_SUBMITTER_LENGTH} printable characters, got ${show(queueId)}.`);
  }
  const { autoForwarded } = message;
  if (autoForwarded !== undefined && typeof autoForwarded !== 'boolean') throw invalid(`autoForwarded must be true or false, got ${show(autoForwarded)}.`);
  const groups = checkGroups(message.groups);
  const { tenant } = message;
  if (tenant !== undefined && (typeof tenant !== 'string' || tenant.length === 0 || tenant.length > MAX_SUBMITTER_LENGTH || CONTROL.test(tenant) || LONE_SURROGATE.test(tenant))) {
    throw invalid(`tenant must be a non-empty string of at most ${MAX_SUBMITTER_LENGTH} printable characters (no lone surrogates), got ${show(tenant)}.`);
  }
  const sender = isNullSender(mailFrom) ? null : parseEnvelopeAddress(mailFrom, 'mailFrom', false);
  // An index loop reads holes as undefined, refused like any non-string (map would skip them).
  const recipients: EnvelopeAddress[] = Array.of();
  let internalRecipients = 0;
  for (let index = 0; index < count; index++) {
    let address: unknown;
    try {
      address = rcptTo[index];
    } catch (error) {
      throw invalid(`rcptTo[${index}] cannot be read (${describeThrown(error)}).`);
    }
    const recipient = parseEnvelopeAddress(address, 'rcptTo', true, index);
    recipients.push(recipient);
    // An SRS address at an accepted domain leaves for the original sender's domain once the
    // reverse map has rewritten it (recipient_canonical_maps), quoted or not: external, not internal.
    if (!recipient.isAddressLiteral && isAcceptedDomain(policy, recipient.domain) && srsKind(localPartValue(recipient.local)) === null) internalRecipients++;
  }
  const fields = message.headers === undefined ? null : decisionFields(message.headers);
  const fromHost = fields?.from === undefined ? undefined : fromDomain(fields.from);
  // Usually the From domain is the sender's, already normalised (and normalising is idempotent).
  const fromIsSender = sender !== null && fromHost === sender.domain;
  const headerFromDomain = fromHost === undefined ? null : fromIsSender ? sender.domain : normaliseDomain(fromHost);
  return new EnvelopeRecord(
    sender,
    recipients,
    internalRecipients,
    // Both outlive the call (a limiter remembers Message-IDs): copies, not views of the caller's message.
    headerFromDomain === null || fromIsSender ? headerFromDomain : detach(headerFromDomain),
    fields?.messageId === undefined ? null : detach(fields.messageId),
    // A limiter that keeps the key or the tenant copies it (the memory limiter does, on storing).
    submitter !== undefined ? limitKeyOf(submitter) : sender !== null ? senderLimitKey(sender) : '<>',
    sender !== null && isAcceptedDomain(policy, sender.domain),
    ndrVerdict(sender, fields),
    groups,
    autoForwarded === true,
    tenant ?? null,
  );
}

/** `message.groups`: a copy (frozen) of at most {@link MAX_GROUPS} names without control characters. */
function checkGroups(groups: unknown): readonly string[] {
  if (groups === undefined) return NO_GROUPS;
  if (!Array.isArray(groups)) throw invalid(`groups must be an array of group names, got ${show(groups)}.`);
  if (groups.length > MAX_GROUPS) throw invalid(`groups has ${groups.length} names; at most ${MAX_GROUPS} are accepted.`);
  const copy: string[] = new Array(groups.length);
  for (let index = 0; index < groups.length; index++) {
    let group: unknown;
    try {
      group = groups[index];
    } catch (error) {
      throw invalid(`groups[${index}] cannot be read (${describeThrown(error)}).`);
    }
    if (typeof group !== 'string' || group.length === 0 || group.length > MAX_GROUP_LENGTH || CONTROL.test(group)) {
      throw invalid(`groups[${index}] must be a non-empty name of at most ${MAX_GROUP_LENGTH} characters without control characters, got ${show(group)}.`);
    }
    copy[index] = detach(group);
  }
  return Object.freeze(copy);
}
