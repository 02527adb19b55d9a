/**
 * `outbound-pools/metrics`: counters of decisions per action, pool and deciding reason, of every
 * reason given, of provider failures per provider, and of the rate limiter's events, in
 * Prometheus' text exposition format (version 0.0.4), for a `/metrics` endpoint. `decidePool`
 * stays pure: your MTA calls {@link DecisionMetrics.observe} with each decision it acts on, and
 * {@link DecisionMetrics.observeLimiter} once with its limiter.
 *
 * No dependency: label values come from closed sets (actions, pools, reason codes, provider
 * names), so the number of series is bounded; a value outside them counts under `other`.
 *
 * @packageDocumentation
 */
import type { Decision } from '../decide/types.js';
import type { LimiterEvent, LimiterEventListener } from '../providers/types.js';

/** Counters of decisions, ready to be scraped. Make one with {@link createDecisionMetrics}. */
export interface DecisionMetrics {
  /** Counts one decision (its action, pool, deciding reason, every reason and failed provider). */
  observe(decision: Decision): void;
  /**
   * Counts one event of a managed rate limiter (`limiter_events_total{type}`; a `restricted`
   * event also in `limiter_restrictions_total{cause}`). Use it as the listener of
   * `limiter.subscribe`, or let {@link DecisionMetrics.observeLimiter} subscribe it.
   */
  observeLimiterEvent(event: LimiterEvent): void;
  /**
   * Subscribes {@link DecisionMetrics.observeLimiterEvent} to a managed rate limiter's events
   * (the in-memory or the Redis limiter); returns the function that stops counting them. On
   * Redis, every node's events reach every node's subscribers: observe one limiter per cluster
   * in one place, or sum per node knowing each counts every node's events.
   */
  observeLimiter(limiter: { subscribe(listener: LimiterEventListener): () => void }): () => void;
  /** The counters in Prometheus' text format, for the body of a `/metrics` response. */
  text(): string;
  /** The `Content-Type` of {@link DecisionMetrics.text}'s output. */
  readonly contentType: string;
  /** Sets every counter back to zero (Prometheus sees a counter reset). */
  reset(): void;
}

/** Options of {@link createDecisionMetrics}. */
export interface DecisionMetricsOptions {
  /** Prepended to every metric name. Default `outbound_pools_`. */
  readonly prefix?: string;
}

const ACTIONS = new Set(['deliver', 'block', 'defer']);
const POOLS = new Set(['normal', 'high-risk', 'relay']);
const REASONS = new Set([
  'sender-restricted', 'recipients-per-message-exceeded', 'sending-limit-exceeded', 'ndr', 'sender-domain-unresolvable',
  'spam', 'relay-unverified', 'spf-pass', 'dkim-pass', 'arc-pass', 'accepted-domain',
  'srs-rewritten', 'srs-skipped', 'limit-alert', 'dns-error', 'provider-failed',
  // SPEC §7: the outbound-spam model's codes, counted by name as soon as decisions carry them.
  'tenant-limit-exceeded', 'auto-forwarding-blocked', 'spam-restriction',
]);
const PROVIDERS = new Set(['dns', 'rateLimiter', 'spam', 'authenticator']);
const LIMITER_EVENTS = new Set(['restricted', 'released', 'limit-alert', 'tenant-cap']);
const RESTRICTION_CAUSES = new Set(['limit', 'spam', 'admin']);
const METRIC_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** A label value from a closed set, or `other` (so a stray value cannot add series). */
function known(value: unknown, allowed: ReadonlySet<string>): string {
  return typeof value === 'string' && allowed.has(value) ? value : 'other';
}

/** One counter family: a fixed label list, series keyed by their label values. */
class Family {
  readonly #series = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labels: readonly string[],
  ) {}

  add(values: readonly string[]): void {
    const key = values.join('\u0000');
    this.#series.set(key, (this.#series.get(key) ?? 0) + 1);
  }

  reset(): void {
    this.#series.clear();
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const key of [...this.#series.keys()].sort()) {
      const values = key.split('\u0000');
      // Label values here are from closed sets of plain words: nothing to escape (the format's
      // escapes are for \, " and newline).
      const labels = this.labels.map((label, i) => `${label}="${values[i]}"`).join(',');
      lines.push(`${this.name}{${labels}} ${this.#series.get(key)}`);
    }
  }
}

/**
 * Counters of decisions in Prometheus' text format:
 *
 * - `outbound_pools_decisions_total{action, pool, reason}`: each decision once, by its action, its
 *   pool (`none` when not delivered) and its deciding (first) reason;
 * - `outbound_pools_reasons_total{reason}`: every reason of every decision, informational ones too;
 * - `outbound_pools_provider_failures_total{provider}`: `provider-failed` and `dns-error` reasons
 *   by provider;
 * - `outbound_pools_limiter_events_total{type}`: the rate limiter's events observed
 *   (`restricted`, `released`, `limit-alert`, `tenant-cap`);
 * - `outbound_pools_limiter_restrictions_total{cause}`: `restricted` events by cause (`limit`,
 *   `spam`, `admin`).
 */
export function createDecisionMetrics(options: DecisionMetricsOptions = {}): DecisionMetrics {
  if (typeof options !== 'object' || options === null) throw new TypeError('createDecisionMetrics takes an options object.');
  for (const key of Object.keys(options)) if (key !== 'prefix') throw new TypeError(`Unknown metrics option "${key}"; known: prefix.`);
  const prefix = options.prefix ?? 'outbound_pools_';
  if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_PREFIX.test(prefix))) {
    throw new TypeError(`prefix must be a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${JSON.stringify(prefix)}.`);
  }
  const decisions = new Family(`${prefix}decisions_total`, 'Decisions by action, pool and deciding reason.', ['action', 'pool', 'reason']);
  const reasons = new Family(`${prefix}reasons_total`, 'Reasons given, informational ones included.', ['reason']);
  const failures = new Family(`${prefix}provider_failures_total`, 'Provider failures (provider-failed, dns-error) by provider.', ['provider']);
  const events = new Family(`${prefix}limiter_events_total`, 'Rate limiter events by type.', ['type']);
  const restrictions = new Family(`${prefix}limiter_restrictions_total`, 'Senders restricted by the rate limiter, by cause.', ['cause']);
  const families = [decisions, reasons, failures, events, restrictions];
  const observeLimiterEvent = (event: LimiterEvent): void => {
    if (typeof event !== 'object' || event === null) return;
    events.add([known(event.type, LIMITER_EVENTS)]);
    if (event.type === 'restricted') restrictions.add([known(event.restriction?.cause?.kind, RESTRICTION_CAUSES)]);
  };
  return {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    observe(decision) {
      const first = decision.reasons[0];
      decisions.add([known(decision.action, ACTIONS), decision.pool === null ? 'none' : known(decision.pool, POOLS), known(first?.code, REASONS)]);
      for (const reason of decision.reasons) {
        reasons.add([known(reason.code, REASONS)]);
        if (reason.code === 'provider-failed' || reason.code === 'dns-error') failures.add([known(reason.provider ?? (reason.code === 'dns-error' ? 'dns' : undefined), PROVIDERS)]);
      }
    },
    observeLimiterEvent,
    observeLimiter(limiter) {
      if (typeof limiter !== 'object' || limiter === null || typeof limiter.subscribe !== 'function') {
        throw new TypeError('observeLimiter takes a managed rate limiter (an object with subscribe()).');
      }
      return limiter.subscribe(observeLimiterEvent);
    },
    text() {
      const lines: string[] = [];
      for (const family of families) family.render(lines);
      return `${lines.join('\n')}\n`;
    },
    reset() {
      for (const family of families) family.reset();
    },
  };
}
