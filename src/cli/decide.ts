// `outbound-pools decide`, `demo` and `explain`: decisions for messages and JSON-lines batches
// from the shell, with DNS answered by a zone file (the bundled one by default, so it runs
// offline) or by a real DNS server, and optionally rspamd and a Redis rate limiter — loaded only
// when their flags are given, so that `demo` loads neither adapter.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDecider } from '../decide/gather.js';
import type { Decision, OutboundMessage } from '../decide/types.js';
import { OutboundPoolsError } from '../errors.js';
import { createPolicy, type Policy } from '../policy.js';
import { createPolicySet, type PolicySet, type PolicySetInput } from '../policy-set.js';
import { createDnsResolver } from '../providers/dns.js';
import { isLimiterTime } from '../providers/limit-windows.js';
import { createMemoryRateLimiter } from '../providers/memory-limiter.js';
import { createStaticResolver, type StaticZone } from '../providers/static-dns.js';
import type { AsyncSpamClassifier, ManagedRateLimiter } from '../providers/types.js';
import { Srs, SrsError } from '../srs/index.js';
import { parseCommandLine } from './args.js';
import { explain, explainDecision } from './explain.js';
import { MessageError, planInputs, type EnvelopeFlags, type Input, type Job } from './inputs.js';
import { UsageError, type CliIo } from './io.js';
import { Progress } from './progress.js';
import { Summary } from './summary.js';

export const DECIDE_USAGE = `Usage:
  outbound-pools decide <message | directory | batch | ->... [options]
  outbound-pools decide --batch <batch.jsonl> [options]
  outbound-pools demo [--json]

decide: the pool each message leaves through, with the reasons, then a summary table (messages
per outcome and per deciding reason). Inputs are read as they are decided: a batch line by line,
a directory entry by entry, so memory stays bounded however many messages there are.

Inputs (recognised by extension; a file with another name, by its first bytes):
  x.eml, x.msg   an RFC 5322 message. Its envelope is in x.json beside it ({ "mailFrom": "...",
                 "rcptTo": [...], optional "submitter", "queueId", "ingress", "authentication",
                 "spam", "groups", "autoForwarded", "tenant" }), and/or given by --mail-from and --rcpt, which replace the fields they
                 name and keep the others (the precomputed spam and authentication verdicts).
  x.json         one message as JSON: the envelope fields above plus at most one of "file" or
                 "raw" (see below), or the envelope alone; the sidecar of x.eml when that exists;
                 a batch when it holds one JSON object a line.
  x.jsonl, x.ndjson
                 a JSON-lines batch (also --batch <file>, whatever its name): one message per
                 line, an object with the envelope fields above plus at most one of
                   "file": "x.eml"   the message, relative to the batch file's directory
                   "raw":  "..."     the message (or its header block) as text
                 and an optional "id" naming it in the output (default: "file", else
                 <batch>:<line>). Neither file nor raw: decided on the envelope alone. Blank
                 lines are skipped; a line that is not such an object is an invalid message.
                 e.g. {"file":"03-spam.eml","mailFrom":"a@contoso.com","rcptTo":["b@example.org"]}
  directory      every *.eml and *.msg in it (not its subdirectories), each with its x.json;
                 in name order (beyond 10,000 messages, in the order the directory lists them).
  -              standard input: a JSON-lines batch, one JSON message, or one RFC 5322 message
                 (its envelope then given by --mail-from and --rcpt).

A message named on the command line needs an envelope sender and recipients, from its x.json or
the flags: the sender is never assumed (a null sender would make it a bounce). Give
--mail-from '<>' for a bounce.

demo: decide over the bundled example messages (examples/messages) with the bundled policy
and DNS zone, counting sending limits in memory (rules 1, 3 and 11); no network.

Options:
  --mail-from <address>   envelope sender ('<>' or '' for the null sender); one message only
  --rcpt <address>        envelope recipient; repeat for several; one message only
  --batch <file.jsonl>    a JSON-lines batch (see above); repeat for several; - for stdin
  --policy <file.json>    a policy, or a policy set {"default": …, "scoped": […]} (default: the
                          bundled examples/policy-set.json)
  --zone <file.json>      DNS zone for the static resolver (default: examples/zone.json)
  --dns-server <host:port>  ask this DNS server instead of the static zone; repeat for several
  --rspamd-url <url>      classify spam with rspamd (its normal worker, e.g. http://127.0.0.1:11333)
                          when the message has no precomputed "spam" verdict
  --redis-url <url>       count sending limits (rules 1 and 3) in Redis (redis://host:port);
                          Redis is asked before the first message: if it does not answer within
                          3 s (or ioredis is not installed), nothing is decided (exit status 2)
  --srs-secret <s>        rewrite verified forwards with SRS using this secret
  --srs-domain <d>        SRS forwarding domain (default: the first accepted domain)
  --now <time>            clock: Unix seconds or ISO 8601 (default: now)
  --concurrency <n>       messages decided at once (default 8; output stays in input order)
  --json                  one JSON decision per line ({ "file", ...decision }, or { "file",
                          "error" } for an invalid message), then { "summary": { "messages",
                          "outcomes", "reasons" } } as the last line
  --progress              show progress on stderr: count, rate and time left (default: only
                          when stderr is a terminal and there are more than 20 messages or
                          they come from stdin; redrawn at most 10 times a second)

Exit status:
  0  every message was decided (whatever the decision: block and defer count as decided)
  1  some message could not be read or was invalid (the others are still decided)
  2  usage error: bad flags, a missing or unrecognised file, a message on the command line
     without envelope, an invalid policy or zone, a Redis that does not answer`;

/** Progress is shown automatically on a terminal for batches longer than this. */
const PROGRESS_AUTO_MIN = 20;
/** Messages decided at once by default: enough to overlap DNS, rspamd and Redis round trips. */
const DEFAULT_CONCURRENCY = 8;
const MAX_CONCURRENCY = 1024;

/** Flags shared by decide and explain: the message's envelope and the providers. */
export const COMMON_OPTIONS = {
  'mail-from': { type: 'string' },
  rcpt: { type: 'string', multiple: true },
  policy: { type: 'string' },
  zone: { type: 'string' },
  'dns-server': { type: 'string', multiple: true },
  'rspamd-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'srs-secret': { type: 'string' },
  'srs-domain': { type: 'string' },
  now: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const EXPLAIN_OPTIONS = { ...COMMON_OPTIONS, json: { type: 'boolean' } } as const;

const OPTIONS = {
  ...COMMON_OPTIONS,
  json: { type: 'boolean' },
  batch: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  progress: { type: 'boolean' },
} as const;

/** The bundled examples, next to dist/ in the package. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));
/** The clock of the demo, so its SRS addresses are the same on every run. */
const DEMO_NOW = '2026-11-23T09:00:00Z';
/** The sender key of the Redis check before the first message: a key no sender has. */
const REDIS_PROBE_KEY = 'outbound-pools-cli-probe';
/**
 * How long the Redis check may keep asking. Each ask times out after the limiter's command
 * timeout (500 ms), which the first one spends partly on loading ioredis and connecting: on a
 * busy machine that alone can take longer, so a timed-out ask is repeated until this has passed.
 */
const REDIS_PROBE_MS = 3000;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read the ${what} ${path}: ${errorText(error)}`);
  }
}

function parseNow(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = /^-?\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--now must be Unix seconds or an ISO 8601 date, got "${value}".`);
  // The limiters' range (limit-windows.ts limiterTime): outside it every decision would fail open
  // on its rate limiter, which a wrong flag should not cause silently.
  if (!isLimiterTime(date.getTime())) throw new UsageError(`--now must be from 1970-01-01 to 2286-11-20 (the rate limiters' range), got "${value}".`);
  return date;
}

function describe(file: string, decision: Decision): string {
  const head =
    decision.action === 'deliver'
      ? `${file}: deliver through the ${decision.pool} pool (${decision.poolName})`
      : `${file}: ${decision.action} — ${decision.reply.line}`;
  const lines = [head];
  if (decision.srs?.applied) lines.push(`  envelope sender ${decision.srs.original} → ${decision.mailFrom}`);
  for (const reason of decision.reasons) lines.push(`  ${reason.code.padEnd(34)} ${reason.message}`);
  return lines.join('\n');
}

/** The policy, providers and clock of a run, and how to release them. */
export interface Setup {
  /** The policy; with a policy set (`{ "default": …, "scoped": […] }`), its default. */
  readonly policy: Policy;
  /** The policy a decision was made under (`decision.policyName`: a scoped one, or the default). */
  policyFor(decision: Decision): Policy;
  readonly decide: (message: OutboundMessage) => Promise<Decision>;
  close(): Promise<void>;
}

/** The flags {@link setUp} reads (those of {@link COMMON_OPTIONS}; others are ignored). */
export type CommonValues = {
  readonly policy?: string | undefined;
  readonly zone?: string | undefined;
  readonly 'dns-server'?: string[] | undefined;
  readonly 'rspamd-url'?: string | undefined;
  readonly 'redis-url'?: string | undefined;
  readonly 'srs-secret'?: string | undefined;
  readonly 'srs-domain'?: string | undefined;
  readonly now?: string | undefined;
};

/** Options checked by a provider's constructor come back as usage errors naming the flag. */
function providerOption<T>(flag: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof OutboundPoolsError || error instanceof TypeError || (error instanceof Error && error.name === 'RspamdError')) {
      throw new UsageError(`${flag}: ${error.message}`);
    }
    throw error;
  }
}

/** A URL as it may be printed: without its password. */
function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** The rspamd classifier, its adapter loaded only now. */
async function rspamdClassifier(url: string): Promise<AsyncSpamClassifier> {
  const { createRspamdClassifier } = await import('../rspamd/classifier.js');
  return providerOption('--rspamd-url', () => createRspamdClassifier({ url }));
}

/**
 * The Redis rate limiter, its adapter loaded only now and Redis asked (a restriction lookup)
 * before the first message: without ioredis or without an answer within REDIS_PROBE_MS, every
 * decision would carry `provider-failed`, so the run stops at once instead.
 */
export async function redisRateLimiter(url: string, prefix?: string): Promise<ManagedRateLimiter & { close(): Promise<void> }> {
  const { createRedisRateLimiter } = await import('../redis/limiter.js');
  const limiter = providerOption('--redis-url', () => createRedisRateLimiter(prefix === undefined ? { url } : { url, prefix }));
  // A duration: the monotonic clock, which a wall-clock step cannot stretch.
  const start = performance.now();
  try {
    for (;;) {
      try {
        await limiter.restriction(REDIS_PROBE_KEY, new Date());
        break;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'ETIMEDOUT' || performance.now() - start >= REDIS_PROBE_MS) throw error;
      }
    }
  } catch (error) {
    await limiter.close();
    const why = errorText(error);
    const hint = /ioredis/.test(why) ? '' : ' (is a Redis server listening there?)';
    throw new UsageError(`--redis-url ${withoutPassword(url)}: ${why}${hint}`);
  }
  return limiter;
}

/**
 * Builds the policy, the providers (static zone by default; DNS, rspamd, Redis when given) and
 * the decider. Async: the rspamd and Redis adapters are imported only when their flags are
 * given, and Redis is asked once before this resolves. Throws {@link UsageError} for bad flags, a
 * bad policy or zone, or a Redis that does not answer.
 */
export async function setUp(values: CommonValues, demo = false): Promise<Setup> {
  let policy: Policy;
  let policySet: PolicySet | undefined;
  try {
    // A file with "default" (and "scoped") is a policy set; anything else, one policy.
    const json = readJson(values.policy ?? join(EXAMPLES_DIR, 'policy-set.json'), 'policy') as object;
    policySet = json !== null && typeof json === 'object' && Object.hasOwn(json, 'default') ? createPolicySet(json as PolicySetInput) : undefined;
    policy = policySet?.default ?? createPolicy(json);
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw new UsageError(`the policy is invalid: ${error.message}`);
    throw error;
  }
  const dnsServers = values['dns-server'];
  if (dnsServers !== undefined && values.zone !== undefined) throw new UsageError('give --zone (a static zone) or --dns-server (a real DNS server), not both.');
  const dns =
    dnsServers === undefined
      ? providerOption('--zone', () => createStaticResolver(readJson(values.zone ?? join(EXAMPLES_DIR, 'zone.json'), 'zone') as StaticZone))
      : providerOption('--dns-server', () => createDnsResolver({ servers: dnsServers }));
  const secret = values['srs-secret'] ?? (demo ? 'demo-secret-do-not-use' : undefined);
  const srsDomain = values['srs-domain'] ?? policy.acceptedDomains.find((domain) => !domain.startsWith('*.'));
  if (secret !== undefined && srsDomain === undefined) throw new UsageError('--srs-secret needs --srs-domain (the policy has no accepted domain to use).');
  const now = parseNow(values.now ?? (demo ? DEMO_NOW : undefined));
  let srs: { readonly rewriter: Srs; readonly domain: string } | undefined;
  if (secret !== undefined) {
    try {
      srs = { rewriter: new Srs({ secret }), domain: srsDomain! };
    } catch (error) {
      if (error instanceof SrsError) throw new UsageError(`--srs-secret: ${error.message}`);
      throw error;
    }
  }
  const rspamdUrl = values['rspamd-url'];
  const spam = rspamdUrl === undefined ? undefined : await rspamdClassifier(rspamdUrl);
  // Last: the one provider that holds a connection open, so that nothing above can leave it open.
  const redisUrl = values['redis-url'];
  const redis = redisUrl === undefined ? undefined : await redisRateLimiter(redisUrl);
  // The demo counts in memory (from its fixed clock, so the same every run): the tenant of
  // 11-tenant-over-cap passes its cap because 01 and 09 counted for it first.
  const rateLimiter = redis ?? (demo ? createMemoryRateLimiter() : undefined);
  let decider: ReturnType<typeof createDecider>;
  try {
    decider = createDecider({
      policy: policySet ?? policy,
      providers: { dns, ...(spam === undefined ? {} : { spam }), ...(rateLimiter === undefined ? {} : { rateLimiter }) },
      ...(srs === undefined ? {} : { srs }),
    });
  } catch (error) {
    // The Redis connection is open by now: closed, or the process would never exit.
    await redis?.close();
    if (error instanceof OutboundPoolsError) throw new UsageError(srs !== undefined && error.message.startsWith('srs ') ? `--srs-domain: ${error.message}` : error.message);
    throw error;
  }
  return {
    policy,
    policyFor: (decision) => policySet?.scoped.find((scoped) => scoped.name === decision.policyName)?.policy ?? policy,
    decide: (message) => (now === undefined ? decider(message) : decider(message, { now })),
    close: async () => {
      await redis?.close();
    },
  };
}

function envelopeFlags(values: { readonly 'mail-from'?: string | undefined; readonly rcpt?: string[] | undefined }): EnvelopeFlags {
  return {
    ...(values['mail-from'] === undefined ? {} : { mailFrom: values['mail-from'] }),
    ...(values.rcpt === undefined ? {} : { rcpt: values.rcpt }),
  };
}

function parseConcurrency(value: string | undefined): number {
  if (value === undefined) return DEFAULT_CONCURRENCY;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_CONCURRENCY)) throw new UsageError(`--concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}, got "${value}".`);
  return n;
}

/** Every input's message count, or null when one cannot be counted ahead (standard input). */
async function countAll(inputs: readonly Input[]): Promise<number | null> {
  let total = 0;
  for (const input of inputs) {
    const count = await input.count();
    if (count === null) return null;
    total += count;
  }
  return total;
}

/** A message decided, or why it could not be. */
type Settled = { readonly job: Job; readonly decision: Decision } | { readonly job: Job; readonly error: unknown };

/** Never rejects: an error is kept for its turn in the output, so that none goes unhandled. */
async function settle(job: Job, decide: Setup['decide']): Promise<Settled> {
  if (job.message instanceof MessageError) return { job, error: job.message };
  try {
    return { job, decision: await decide(job.message) };
  } catch (error) {
    return { job, error };
  }
}

/** Runs `decide` (or `demo` with the bundled examples); returns the exit status. */
export async function runDecide(args: readonly string[], io: CliIo, demo = false): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help) {
    io.stdout(`${DECIDE_USAGE}\n`);
    return 0;
  }
  if (demo && (positionals.length > 0 || values.batch !== undefined)) throw new UsageError('demo takes no files: it decides over the bundled examples.');
  const paths = demo ? [join(EXAMPLES_DIR, 'messages')] : positionals;
  const batches = values.batch ?? [];
  if (paths.length === 0 && batches.length === 0) throw new UsageError('give a message file, a directory of them, a .jsonl batch or - for standard input (or run: outbound-pools demo).');
  const concurrency = parseConcurrency(values.concurrency);
  const flags = envelopeFlags(values);

  const inputs = await planInputs({ paths, batches, flags, stdin: () => io.stdin() });
  const setup = await setUp(values, demo);
  const summary = new Summary();
  const tty = io.stderrIsTTY === true;
  let progress: Progress | null = null;
  let status = 0;
  try {
    if (values.progress === true || tty) {
      const total = await countAll(inputs);
      if (values.progress === true || total === null || total > PROGRESS_AUTO_MIN) progress = new Progress(io, total, tty);
    }
    // Decisions go to stdout; on a terminal shared with stderr the progress line is wiped first.
    const out = (text: string) => {
      if (io.stdoutIsTTY === true) progress?.clear();
      io.stdout(text);
    };
    let done = 0;
    const emit = async (settled: Settled): Promise<void> => {
      const { job } = settled;
      if ('decision' in settled) {
        summary.add(settled.decision);
        out(values.json ? `${JSON.stringify({ file: job.id, ...settled.decision })}\n` : `${describe(job.id, settled.decision)}\n\n`);
      } else {
        const { error } = settled;
        if (!(error instanceof OutboundPoolsError) && !(error instanceof MessageError)) throw error;
        summary.invalid();
        status = 1;
        if (values.json) out(`${JSON.stringify({ file: job.id, error: error.message })}\n`);
        else {
          progress?.clear();
          io.stderr(`${job.id}: invalid: ${error.message}\n`);
        }
      }
      progress?.update(++done);
      await io.drained?.();
    };
    // At most `concurrency` messages in flight, written in input order: the window holds them,
    // and the next message is read only when the oldest has been written.
    const window: Promise<Settled>[] = [];
    for (const input of inputs) {
      for await (const job of input.jobs(flags)) {
        window.push(settle(job, setup.decide));
        if (window.length >= concurrency) await emit(await window.shift()!);
      }
    }
    while (window.length > 0) await emit(await window.shift()!);
  } finally {
    progress?.clear();
    await setup.close();
  }
  io.stdout(values.json ? `${JSON.stringify({ summary: summary.toJSON() })}\n` : `${summary.table()}\n`);
  return status;
}

export const EXPLAIN_USAGE = `Usage: outbound-pools explain <message | -> [options]

Why the message gets its pool, rule by rule (docs/decision-rules.md): for each rule in the order applied (1, 10, 2, 3,
11, 4–9), the verdict it read and whether it applies, does not apply or was not reached; then the
decision and its trace line (OutboundIpPoolName=…). The message is an .eml or .msg (its envelope
in the .json beside it and/or --mail-from and --rcpt), a .json message, or - for standard input.

Options: the same as decide's (except --batch, --concurrency and --progress):
  --mail-from <address>, --rcpt <address>, --policy <file.json>, --zone <file.json>,
  --dns-server <host:port>, --rspamd-url <url>, --redis-url <url>, --srs-secret <s>,
  --srs-domain <d>, --now <time>       (see: outbound-pools decide --help)
  --json   one JSON object: { "file", "rules": [{ "rule", "name", "read", "outcome",
           "reason"?, "notes" }], "decision": {...}, "trace" } (or { "file", "error" })

Exit status: 0 explained, 1 the message could not be read or was invalid, 2 usage error.`;

/** Runs `explain`; returns the exit status. */
export async function runExplain(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(args, EXPLAIN_OPTIONS);
  if (values.help) {
    io.stdout(`${EXPLAIN_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('explain takes one message: an .eml file, a .json message, or - for standard input.');
  const flags = envelopeFlags(values);
  const [input] = await planInputs({ paths: positionals, batches: [], flags, stdin: () => io.stdin() });
  if (!input!.single) throw new UsageError(`${input!.name} is ${input!.batch ? 'a batch' : 'a directory'}: explain takes one message (decide takes many).`);
  const setup = await setUp(values);
  let job: Job | undefined;
  try {
    for await (const only of input!.jobs(flags)) job = only;
    if (job!.message instanceof MessageError) throw job!.message;
    const decision = await setup.decide(job!.message);
    const rcptTo = Array.isArray(job!.message.rcptTo) ? job!.message.rcptTo : undefined;
    const tenant = typeof job!.message.tenant === 'string' ? job!.message.tenant : undefined;
    const envelope = { ...(rcptTo === undefined ? {} : { rcptTo }), autoForwarded: job!.message.autoForwarded === true, ...(tenant === undefined ? {} : { tenant }) };
    const policy = setup.policyFor(decision);
    if (values.json) {
      const { rules, trace } = explain(decision, policy, envelope);
      io.stdout(`${JSON.stringify({ file: job!.id, rules, decision, trace })}\n`);
    } else {
      const lines = explainDecision(decision, policy, envelope);
      io.stdout(`${job!.id}\n${lines.map((line) => (line.startsWith('decision:') || line.startsWith('trace:') ? line : `  ${line}`)).join('\n')}\n`);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof OutboundPoolsError) && !(error instanceof MessageError)) throw error;
    const file = job?.id ?? input!.name;
    if (values.json) io.stdout(`${JSON.stringify({ file, error: error.message })}\n`);
    else io.stderr(`${file}: invalid: ${error.message}\n`);
    return 1;
  } finally {
    await setup.close();
  }
}
