// Suggested SMTP replies for refused and deferred messages: basic codes of RFC 5321 §4.2,
// enhanced status codes of RFC 3463 (and 5.1.8, the code Microsoft 365 gives restricted senders).

import type { SmtpReply } from './types.js';

function reply(code: number, enhancedCode: string, text: string): SmtpReply {
  return Object.freeze({ code, enhancedCode, text, line: `${code} ${enhancedCode} ${text}` });
}

export const REPLIES = {
  senderRestricted: reply(550, '5.1.8', 'Sender is restricted from sending mail by outbound policy'),
  tooManyRecipients: (limit: number) => reply(550, '5.5.3', `Too many recipients: at most ${limit} per message`),
  // The service's hard limits refuse only this message: temporary, the client retries later.
  rateLimited: reply(451, '4.7.1', 'Sending rate limit exceeded, try again later'),
  limitRestricted: reply(550, '5.1.8', 'Sending limit exceeded: sender is restricted from sending mail'),
  spamBlocked: reply(550, '5.7.1', 'Message refused by outbound spam policy'),
  // 5.7.520 is the code Microsoft 365 gives when the outbound spam policy disables automatic forwarding.
  autoForwardingBlocked: reply(550, '5.7.520', 'Access denied: your organization does not allow automatic forwarding to external recipients'),
  // 5.7.233 is the code Microsoft 365 gives when a tenant passes its external recipient rate limit.
  tenantLimited: reply(550, '5.7.233', 'Your organization has reached its daily limit of external recipients; mail to external recipients is refused for now'),
  dnsDeferred: reply(451, '4.4.3', 'Cannot check the sender domain in DNS, try again later'),
  providerDeferred: (provider: string) => reply(451, '4.3.0', `Temporary failure checking the message (${provider}), try again later`),
} as const;
