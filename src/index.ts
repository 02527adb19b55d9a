/**
 * outbound-pools: decide which outbound delivery pool an email leaves through — normal,
 * high-risk, relay, or not at all — and rewrite the envelope sender of verified forwards with SRS.
 *
 * @packageDocumentation
 */
export {
  createDecider,
  decidePool,
  decideFromVerdicts,
  resolveContext,
  type Decider,
  type DecideOptions,
  type VerdictsInput,
} from './decide/gather.js';
export { applyRules, type RuleInput } from './decide/rules.js';
export { formatTrace, TRACE_HEADER } from './decide/trace.js';
export type {
  BlockDecision,
  DecideContext,
  Decision,
  DecisiveReasonCode,
  DeferDecision,
  DeliverDecision,
  Envelope,
  InformationalReasonCode,
  NdrVerdict,
  OutboundMessage,
  Reason,
  ReasonCode,
  SenderDomainVerdict,
  SmtpReply,
  SrsContext,
  SrsOutcome,
  Verdict,
  Verdicts,
} from './decide/types.js';
export {
  createPolicy,
  isAcceptedDomain,
  isPolicy,
  presets,
  DEFAULT_POOL_NAMES,
  type DnsErrorAction,
  type FailureMode,
  type LimitSetInput,
  type Policy,
  type PolicyInput,
  type Pool,
} from './policy.js';
export { OutboundPoolsError, type OutboundPoolsErrorCode } from './errors.js';
export { parseEnvelopeAddress, isNullSender, normaliseDomain, type EnvelopeAddress } from './address.js';
export { checkMailHost } from './dns/mail-host.js';
export { createStaticResolver, type StaticZone, type StaticZoneEntry } from './providers/static-dns.js';
export type * from './providers/types.js';
export { Srs, SrsError } from './srs/index.js';
export {
  createDnsResolver,
  type CachingDnsResolver,
  type DnsCacheOptions,
  type DnsResolverOptions,
  type DnsResolverStats,
} from './providers/dns.js';
export {
  createMailauthAuthenticator,
  firstUntrustedHop,
  receivedFrom,
  verdictFromMailauth,
  type MailauthAuthenticatorOptions,
} from './providers/mailauth.js';
export {
  authenticationFromHeaders,
  parseAuthenticationResults,
  type AuthenticationFromHeaders,
  type AuthenticationMethodResult,
  type AuthenticationResultsOptions,
  type IgnoredAuthenticationResults,
  type ParsedAuthenticationResults,
  type TrustedAuthenticationResults,
  type UntrustedAuthenticationResults,
} from './providers/authentication-results.js';
export {
  createRspamdClassifier,
  verdictFromRspamd,
  RspamdError,
  DEFAULT_RSPAMD_SPAM_ACTIONS,
  DEFAULT_RSPAMD_CATEGORIES,
  type RspamdAction,
  type RspamdClassifierOptions,
  type RspamdErrorCode,
} from './providers/rspamd.js';
export {
  createMemoryRateLimiter,
  type MemoryRateLimiter,
  type MemoryRateLimiterOptions,
  type MemoryRateLimiterStats,
} from './providers/memory-limiter.js';
export { createRedisRateLimiter, type RedisClient, type RedisRateLimiter, type RedisRateLimiterOptions } from './providers/redis-limiter.js';
export { LIMIT_WINDOWS, nextUtcMidnight } from './providers/limit-windows.js';
