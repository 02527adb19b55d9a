// From the message as given to what the rules read: every field checked, addresses parsed,
// recipients split into internal and external, and NDR-ness settled (rule 4).

import { isNullSender, normaliseDomain, parseEnvelopeAddress, type EnvelopeAddress } from '../address.js';
import { OutboundPoolsError, show } from '../errors.js';
import { decisionFields, detach, fromDomain, parseContentType, type DecisionFields } from '../headers.js';
import { isAcceptedDomain, type Policy } from '../policy.js';
import type { Envelope, NdrVerdict, OutboundMessage } from './types.js';

const MESSAGE_KEYS = new Set(['mailFrom', 'rcptTo', 'headers', 'submitter', 'queueId', 'ingress', 'authentication', 'spam']);
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
  return contentType?.type === 'multipart/report' && contentType.parameters.get('report-type')?.toLowerCase() === 'delivery-status';
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

/**
 * Checks and parses a message for the rules.
 * @throws {OutboundPoolsError} `invalid-message`, `invalid-address`, `invalid-headers`.
 */
export function readEnvelope(message: OutboundMessage, policy: Policy): Envelope {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw invalid(`The message must be an object with mailFrom and rcptTo, got ${show(message)}.`);
  }
  for (const key in message) {
    if (!MESSAGE_KEYS.has(key)) throw invalid(`Unknown message field ${show(key)}; known: ${[...MESSAGE_KEYS].join(', ')}.`);
  }
  const { mailFrom, rcptTo, submitter } = message;
  if (typeof mailFrom !== 'string') throw invalid(`mailFrom must be a string ('' for the null sender), got ${show(mailFrom)}.`);
  if (!Array.isArray(rcptTo) || rcptTo.length === 0) throw invalid('rcptTo must be a non-empty array of addresses.');
  if (rcptTo.length > MAX_RECIPIENTS) throw invalid(`rcptTo has ${rcptTo.length} addresses; at most ${MAX_RECIPIENTS} are accepted in one call.`);
  if (submitter !== undefined && (typeof submitter !== 'string' || submitter.length === 0 || submitter.length > MAX_SUBMITTER_LENGTH || /[\x00-\x1f\x7f]/.test(submitter))) {
    throw invalid(`submitter must be a non-empty string of at most ${MAX_SUBMITTER_LENGTH} printable characters, got ${show(submitter)}.`);
  }
  const { queueId } = message;
  if (queueId !== undefined && (typeof queueId !== 'string' || queueId.length === 0 || queueId.length > MAX_SUBMITTER_LENGTH || /[\x00-\x1f\x7f]/.test(queueId))) {
    throw invalid(`queueId must be a non-empty string of at most ${MAX_SUBMITTER_LENGTH} printable characters, got ${show(queueId)}.`);
  }
  const sender = isNullSender(mailFrom) ? null : parseEnvelopeAddress(mailFrom, 'mailFrom', false);
  // An index loop reads holes as undefined, refused like any non-string (map would skip them).
  const recipients: EnvelopeAddress[] = new Array(rcptTo.length);
  let internalRecipients = 0;
  for (let index = 0; index < rcptTo.length; index++) {
    const recipient = parseEnvelopeAddress(rcptTo[index], 'rcptTo', true, index);
    recipients[index] = recipient;
    if (!recipient.isAddressLiteral && isAcceptedDomain(policy, recipient.domain)) internalRecipients++;
  }
  const fields = message.headers === undefined ? null : decisionFields(message.headers);
  const fromHost = fields?.from === undefined ? undefined : fromDomain(fields.from);
  const headerFromDomain = fromHost === undefined ? null : normaliseDomain(fromHost);
  return {
    sender,
    recipients,
    internalRecipients,
    externalRecipients: recipients.length - internalRecipients,
    // Both outlive the call (a limiter remembers Message-IDs): copies, not views of the caller's message.
    headerFromDomain: headerFromDomain === null ? null : detach(headerFromDomain),
    messageId: fields?.messageId === undefined ? null : detach(fields.messageId),
    limitKey: submitter ?? sender?.address.toLowerCase() ?? '<>',
    senderAccepted: sender !== null && isAcceptedDomain(policy, sender.domain),
    ndr: ndrVerdict(sender, fields),
  };
}
