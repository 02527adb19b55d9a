// Scoped policies, as Microsoft's outbound spam policies are scoped (Defender for Office 365,
// "Configure outbound spam policies"): each custom policy names the users, groups and domains it
// applies to and those it excepts; the custom policy with the lowest priority number that applies
// wins; the default policy applies to everyone else.
//
// Conditions: the values of one condition are OR'ed (any listed user), different conditions are
// AND'ed (a listed user AND in a listed group); any exception excludes. A scoped policy's settings
// replace the default's where given, the rest come from the default: top-level settings that are
// objects (`spam`, `tenantLimits`, `relay`, `dns`, `pools`, `deadlines`, `onProviderFailure`) merge
// key by key (so `spam.restrictAfter` replaces the default's whole); lists (`acceptedDomains`,
// `limits`) and plain values replace whole.

import { limitKeyOf, parseEnvelopeAddress, senderLimitKey } from './address.js';
import { OutboundPoolsError, show } from './errors.js';
import { createPolicy, isPolicy, type Policy, type PolicyInput } from './policy.js';
import { isRecord, settingsObject } from './settings.js';

/** One scoped policy as written. At least one of `users`, `groups`, `domains` is required. */
export interface ScopedPolicyInput {
  /** Shown as `decision.policyName`; unique in the set. */
  readonly name: string;
  /** Lower numbers win; unique in the set (0 is the highest priority). */
  readonly priority: number;
  /** Envelope senders (or submitters that are addresses) the policy applies to. */
  readonly users?: readonly string[];
  /** Groups (as in `message.groups`, from your directory) whose members it applies to. */
  readonly groups?: readonly string[];
  /** Sender domains it applies to (exact: `contoso.com` is not `sales.contoso.com`). */
  readonly domains?: readonly string[];
  readonly exceptUsers?: readonly string[];
  readonly exceptGroups?: readonly string[];
  readonly exceptDomains?: readonly string[];
  /** The settings that differ from the default policy's. */
  readonly policy: PolicyInput;
}

/** A policy set as written: the default policy and the scoped ones. */
export interface PolicySetInput {
  /** The policy for senders no scoped policy applies to: a plain policy object. */
  readonly default: PolicyInput;
  /** The default's name in `decision.policyName`. Default `'Default'` (Microsoft's name for it). */
  readonly defaultName?: string;
  readonly scoped?: readonly ScopedPolicyInput[];
}

/** One scoped policy, validated: its conditions normalised, its settings merged onto the default's. */
export interface ScopedPolicy {
  readonly name: string;
  readonly priority: number;
  readonly users: readonly string[];
  readonly groups: readonly string[];
  readonly domains: readonly string[];
  readonly exceptUsers: readonly string[];
  readonly exceptGroups: readonly string[];
  readonly exceptDomains: readonly string[];
  readonly policy: Policy;
}

/** A validated, frozen policy set; scoped policies in priority order. Make one with {@link createPolicySet}. */
export interface PolicySet {
  readonly defaultName: string;
  readonly default: Policy;
  readonly scoped: readonly ScopedPolicy[];
}

/** Who sent a message, as the scope conditions see it. */
export interface PolicySubject {
  /** The envelope sender, normalised (`''` for the null sender). */
  readonly mailFrom: string;
  /** The submitter, when given (it counts for users and domains when it is an address). */
  readonly submitter?: string | undefined;
  /** The sender's groups (`message.groups`). */
  readonly groups?: readonly string[] | undefined;
}

/** The policy that applies to a message, and its name. */
export interface SelectedPolicy {
  readonly name: string;
  readonly policy: Policy;
}

const SET_BRAND: unique symbol = Symbol('outbound-pools.policy-set');
const APPLIES: unique symbol = Symbol('outbound-pools.scope-matcher');
const SCOPED_KEYS = ['name', 'priority', 'users', 'groups', 'domains', 'exceptUsers', 'exceptGroups', 'exceptDomains', 'policy'] as const;
const MERGED_OBJECTS = new Set(['spam', 'tenantLimits', 'relay', 'dns', 'pools', 'deadlines', 'onProviderFailure']);
const MAX_PRIORITY = 1_000_000;
const NAME = /^[^\x00-\x1f\x7f]{1,128}$/;

function invalid(message: string): OutboundPoolsError {
  return new OutboundPoolsError('invalid-policy', message);
}

function policyName(value: unknown, path: string): string {
  if (typeof value !== 'string' || !NAME.test(value) || value.trim() !== value) {
    throw invalid(`${path} must be a name of 1–128 characters, no control characters and no surrounding spaces, got ${show(value)}.`);
  }
  return value;
}

function list(value: unknown, path: string, normalise: (entry: string, path: string) => string): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string' && entry.length > 0)) {
    throw invalid(`${path} must be an array of non-empty strings.`);
  }
  return Object.freeze([...new Set(value.map((entry: string, index) => normalise(entry, `${path}[${index}]`)))]);
}

/** Users are compared as addresses: the domain normalised, the whole address without case. */
function user(entry: string, path: string): string {
  try {
    // The key the decision knows the sender by (limitKeyOf): one spelling per mailbox.
    return senderLimitKey(parseEnvelopeAddress(entry, path, false));
  } catch (error) {
    throw invalid(`${path} ${show(entry)} is not an email address${error instanceof Error ? `: ${error.message}` : ''}`);
  }
}

function domain(entry: string, path: string): string {
  try {
    return parseEnvelopeAddress(`postmaster@${entry}`, path, false).domain;
  } catch {
    throw invalid(`${path} ${show(entry)} is not a domain name.`);
  }
}

function group(entry: string, path: string): string {
  if (!NAME.test(entry)) throw invalid(`${path} ${show(entry)} must have 1–128 characters and no control characters.`);
  return entry;
}

/** The default's settings with the scoped ones on top (see the file's comment for how). */
function merged(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    result[key] = MERGED_OBJECTS.has(key) && isRecord(value) && isRecord(base[key]) ? { ...base[key], ...value } : value;
  }
  return result;
}

function scopedPolicy(input: unknown, index: number, base: Record<string, unknown>): ScopedPolicy {
  const path = `scoped[${index}]`;
  const value = settingsObject(input, path, SCOPED_KEYS, invalid);
  const name = policyName(value.name, `${path}.name`);
  const priority = value.priority;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    throw invalid(`${path}.priority must be a whole number from 0 to ${MAX_PRIORITY}, got ${show(priority)}.`);
  }
  const users = list(value.users, `${path}.users`, user);
  const groups = list(value.groups, `${path}.groups`, group);
  const domains = list(value.domains, `${path}.domains`, domain);
  if (users.length + groups.length + domains.length === 0) {
    throw invalid(`${path} (${show(name)}) applies to nobody: give users, groups or domains (the default policy covers everyone else).`);
  }
  if (!isRecord(value.policy)) throw invalid(`${path}.policy must be an object with the settings that differ from the default's, got ${show(value.policy)}.`);
  let policy: Policy;
  try {
    policy = createPolicy(merged(base, value.policy) as PolicyInput);
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw invalid(`${path}.policy (${show(name)}): ${error.message}`);
    throw error;
  }
  const scoped: ScopedPolicy = {
    name,
    priority,
    users,
    groups,
    domains,
    exceptUsers: list(value.exceptUsers, `${path}.exceptUsers`, user),
    exceptGroups: list(value.exceptGroups, `${path}.exceptGroups`, group),
    exceptDomains: list(value.exceptDomains, `${path}.exceptDomains`, domain),
    policy,
  };
  // Checked for every message: worked out once, kept out of sight (as the policy's accepted domains are).
  Object.defineProperty(scoped, APPLIES, { value: Object.freeze(scopeMatcher(scoped)) });
  return Object.freeze(scoped);
}

/**
 * Validates a policy set once and returns it frozen, scoped policies sorted by priority, each
 * with its lists made into sets for {@link selectPolicy}. Use it wherever a policy goes
 * (`context.policy`); `decision.policyName` then names the policy applied.
 *
 * @throws {OutboundPoolsError} `invalid-policy`: unknown keys, duplicate names or priorities, a
 *   scoped policy with no condition, or any setting its merged policy would refuse.
 */
export function createPolicySet(input: PolicySetInput | PolicySet): PolicySet {
  if (isPolicySet(input)) return input;
  const value = settingsObject(input, 'policy set', ['default', 'defaultName', 'scoped'], invalid);
  if (isPolicy(value.default)) {
    throw invalid('policy set default must be a policy as written (a plain object), not the result of createPolicy(): scoped policies are merged onto it.');
  }
  if (!isRecord(value.default)) throw invalid(`policy set default must be a policy object, got ${show(value.default)}.`);
  const base = value.default;
  const defaultName = value.defaultName === undefined ? 'Default' : policyName(value.defaultName, 'defaultName');
  if (value.scoped !== undefined && !Array.isArray(value.scoped)) throw invalid(`scoped must be an array of scoped policies, got ${show(value.scoped)}.`);
  const scoped = ((value.scoped ?? []) as unknown[]).map((entry, index) => scopedPolicy(entry, index, base));
  const names = new Set([defaultName]);
  const priorities = new Map<number, string>();
  for (const policy of scoped) {
    if (names.has(policy.name)) throw invalid(`Two policies are named ${show(policy.name)}; names must differ (the default is ${show(defaultName)}).`);
    names.add(policy.name);
    const other = priorities.get(policy.priority);
    if (other !== undefined) throw invalid(`${show(other)} and ${show(policy.name)} both have priority ${policy.priority}; priorities must differ.`);
    priorities.set(policy.priority, policy.name);
  }
  const set: PolicySet = {
    defaultName,
    default: createPolicy(base as PolicyInput),
    scoped: Object.freeze([...scoped].sort((a, b) => a.priority - b.priority)),
  };
  Object.defineProperty(set, SET_BRAND, { value: true });
  Object.defineProperty(set, GROUP_HITS, { value: Object.freeze(groupHitsOf(set.scoped)) });
  return Object.freeze(set);
}

/** Whether `value` came from {@link createPolicySet}. */
export function isPolicySet(value: unknown): value is PolicySet {
  return typeof value === 'object' && value !== null && (value as { [SET_BRAND]?: boolean })[SET_BRAND] === true;
}

/** The lowercase address and domain of `candidate`, or null when it is not an address. */
/**
 * A sender or submitter as the lists know it: its limit key (limitKeyOf — lowercase, the local
 * part unquoted when it can be, the domain in A-labels), so that no spelling of a listed mailbox
 * or domain (`"intern"@contoso.com`, `intern@Contoso.COM.`) misses its policy; null when it is
 * not an address.
 */
function addressOf(candidate: string | undefined): { address: string; domain: string } | null {
  if (candidate === undefined || candidate === '') return null;
  const address = limitKeyOf(candidate);
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || address.startsWith('<')) return null;
  return { address, domain: address.slice(at + 1) };
}

/**
 * Whether a scoped policy applies to a sender's addresses, domains and groups (normalised as its
 * lists are). `groupHits`, when given, says already which of the sender's groups the policy lists
 * ({@link GROUP_LISTED}, {@link GROUP_EXCEPTED}), from the set's {@link GroupIndex}.
 */
type ScopeMatcher = (addresses: readonly string[], domains: readonly string[], groups: readonly string[], groupHits?: number) => boolean;

/** A bit of `groupHits`: one of the sender's groups is in the policy's `groups`. */
const GROUP_LISTED = 1;
/** A bit of `groupHits`: one of the sender's groups is in the policy's `exceptGroups`. */
const GROUP_EXCEPTED = 2;

/**
 * Every group a set's scoped policies name, with where: `position · 2` for a policy (by its
 * position in `set.scoped`) that lists it in `groups`, `position · 2 + 1` in `exceptGroups`. A
 * message's groups (up to 1,000) then cost one lookup each for the whole set, not one for each
 * scoped policy and list: 20 policies of thousands of groups each made a message of 1,000 groups
 * 40,000 lookups into tables too large for the processor's caches. A group named once (the
 * usual case) keeps its code as a number, not a list: an array a group would cost ~60 bytes more.
 */
type GroupIndex = ReadonlyMap<string, number | readonly number[]>;

/**
 * For each scoped policy of a set (by position), which of a sender's groups it names:
 * {@link GROUP_LISTED} | {@link GROUP_EXCEPTED}; undefined when `scoped` is not the list it
 * indexed (an object that inherits the set's index and has scoped policies of its own).
 */
type GroupHits = (scoped: readonly ScopedPolicy[], groups: readonly string[]) => Uint8Array | undefined;

const GROUP_HITS: unique symbol = Symbol('outbound-pools.group-hits');

function groupIndexOf(scoped: readonly ScopedPolicy[]): GroupIndex {
  const index = new Map<string, number | number[]>();
  const add = (group: string, code: number): void => {
    const codes = index.get(group);
    if (codes === undefined) index.set(group, code);
    else if (typeof codes === 'number') index.set(group, [codes, code]);
    else codes.push(code);
  };
  scoped.forEach((policy, position) => {
    for (const group of policy.groups) add(group, position * 2);
    for (const group of policy.exceptGroups) add(group, position * 2 + 1);
  });
  return index;
}

/** A set's {@link GroupHits}: a closure, so that its index cannot be reached, let alone changed, from the set. */
function groupHitsOf(scoped: readonly ScopedPolicy[]): GroupHits {
  const index = groupIndexOf(scoped);
  return (list, groups) => (list === scoped ? groupHitsIn(index, groups, scoped.length) : undefined);
}

function groupHitsIn(index: GroupIndex, groups: readonly string[], policies: number): Uint8Array {
  const hits = new Uint8Array(policies);
  const mark = (code: number): void => {
    hits[code >> 1]! |= (code & 1) === 0 ? GROUP_LISTED : GROUP_EXCEPTED;
  };
  for (let i = 0; i < groups.length; i++) {
    const codes = index.get(groups[i]!);
    if (codes === undefined) continue;
    if (typeof codes === 'number') mark(codes);
    else for (let c = 0; c < codes.length; c++) mark(codes[c]!);
  }
  return hits;
}

function intersects(listed: ReadonlySet<string>, values: readonly string[]): boolean {
  for (let i = 0; i < values.length; i++) if (listed.has(values[i]!)) return true;
  return false;
}

/**
 * A scoped policy's conditions and exceptions as sets, so that a decision costs one lookup per
 * value of the message (up to 1,000 groups) whatever the lists' lengths: with arrays, thousands
 * of listed groups times a message's thousand groups took most of a second per decision. The
 * values compare exactly as before (`===`): users and domains were normalised when the set was
 * made and are normalised the same way from the message, groups are exact.
 */
function scopeMatcher(scoped: ScopedPolicy): ScopeMatcher {
  const users = new Set(scoped.users);
  const groups = new Set(scoped.groups);
  const domains = new Set(scoped.domains);
  const exceptUsers = new Set(scoped.exceptUsers);
  const exceptGroups = new Set(scoped.exceptGroups);
  const exceptDomains = new Set(scoped.exceptDomains);
  // A closure: what it matches against cannot be reached, let alone changed, from the set.
  return (addresses, senderDomains, senderGroups, groupHits) =>
    (users.size === 0 || intersects(users, addresses)) &&
    (groups.size === 0 || (groupHits === undefined ? intersects(groups, senderGroups) : (groupHits & GROUP_LISTED) !== 0)) &&
    (domains.size === 0 || intersects(domains, senderDomains)) &&
    (exceptUsers.size === 0 || !intersects(exceptUsers, addresses)) &&
    (exceptGroups.size === 0 || (groupHits === undefined ? !intersects(exceptGroups, senderGroups) : (groupHits & GROUP_EXCEPTED) === 0)) &&
    (exceptDomains.size === 0 || !intersects(exceptDomains, senderDomains));
}

/**
 * The policy that applies to a sender: the scoped policy with the lowest priority number whose
 * conditions all hold and none of whose exceptions does; the default otherwise. Costs a lookup
 * per group of the subject for the whole set (a set made by {@link createPolicySet}), and a set
 * lookup per address and domain for each scoped policy, whatever the lengths of the lists.
 */
export function selectPolicy(set: PolicySet, subject: PolicySubject): SelectedPolicy {
  if (set.scoped.length === 0) return { name: set.defaultName, policy: set.default };
  const identities = [addressOf(subject.mailFrom), addressOf(subject.submitter)].filter((identity) => identity !== null);
  const addresses = identities.map((identity) => identity.address);
  const domains = identities.map((identity) => identity.domain);
  const groups = subject.groups ?? [];
  // A set not made by createPolicySet (a copy) has no index, nor its scoped policies a matcher:
  // each policy's lists are then made into sets here, and the groups looked up in each.
  const groupHits = (set as { [GROUP_HITS]?: GroupHits })[GROUP_HITS];
  const hits = groupHits === undefined || groups.length === 0 ? undefined : groupHits(set.scoped, groups);
  for (let position = 0; position < set.scoped.length; position++) {
    const scoped = set.scoped[position]!;
    const applies = (scoped as { [APPLIES]?: ScopeMatcher })[APPLIES] ?? scopeMatcher(scoped);
    if (applies(addresses, domains, groups, hits?.[position])) return { name: scoped.name, policy: scoped.policy };
  }
  return { name: set.defaultName, policy: set.default };
}
