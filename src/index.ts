/**
 * outbound-pools: decide which outbound delivery pool an email leaves through — normal,
 * high-risk, relay, or not at all — and rewrite the envelope sender of verified forwards with SRS.
 *
 * The root entry is the core: the decision, policies, addresses, the DNS resolvers, the in-memory
 * limiter and the Authentication-Results reader. Adapters that need another package or talk to
 * another server have entry points of their own: `outbound-pools/mailauth`, `outbound-pools/rspamd`,
 * `outbound-pools/redis`, `outbound-pools/haraka`; and `outbound-pools/srs` stands alone.
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
export { applyRules, DEFAULT_POLICY_NAME, type RuleInput } from './decide/rules.js';
export {
  createPolicySet,
  isPolicySet,
  selectPolicy,
  type PolicySet,
  type PolicySetInput,
  type PolicySubject,
  type ScopedPolicy,
  type ScopedPolicyInput,
  type SelectedPolicy,
} from './policy-set.js';
export { formatTrace, parseTrace, traceFields, TRACE_HEADER, type TraceField } from './decide/trace.js';
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
export { parseEnvelopeAddress, isNullSender, limitKeyOf, normaliseDomain, type EnvelopeAddress } from './address.js';
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
  authenticationFromHeaders,
  parseArcAuthenticationResults,
  parseAuthenticationResults,
  type ArcAuthenticationResults,
  type AuthenticationFromHeaders,
  type AuthenticationMethodResult,
  type AuthenticationResultsOptions,
  type IgnoredAuthenticationResults,
  type ParsedAuthenticationResults,
  type TrustedAuthenticationResults,
  type UntrustedAuthenticationResults,
} from './providers/authentication-results.js';
export {
  createMemoryRateLimiter,
  type MemoryRateLimiter,
  type MemoryRateLimiterOptions,
  type MemoryRateLimiterStats,
} from './providers/memory-limiter.js';
export { LIMIT_WINDOWS, nextUtcMidnight } from './providers/limit-windows.js';
