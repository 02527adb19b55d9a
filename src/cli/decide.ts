// `outbound-pools decide`, `demo` and `explain`: decisions for .eml files and JSON-lines batches
// from the shell, with DNS answered by a zone file (the bundled one by default, so it runs
// offline) or by a real DNS server, and optionally rspamd and a Redis rate limiter.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createDecider } from '../decide/gather.js';
import type { Decision, OutboundMessage } from '../decide/types.js';
import { OutboundPoolsError } from '../errors.js';
import { createPolicy, type Policy } from '../policy.js';
import { createDnsResolver } from '../providers/dns.js';
import { createRedisRateLimiter } from '../redis/limiter.js';
import { createRspamdClassifier, RspamdError } from '../rspamd/classifier.js';
import { createStaticResolver, type StaticZone } from '../providers/static-dns.js';
import { Srs } from '../srs/index.js';
import { explainDecision } from './explain.js';
import { UsageError, type CliIo } from './io.js';

export const DECIDE_USAGE = `Usage:
  outbound-pools decide <file.eml | directory | batch.jsonl>... [options]
  outbound-pools decide --batch <batch.jsonl> [options]
  outbound-pools demo [--json]

decide: the pool each message leaves through, with the reasons, then a summary table (messages
per outcome and per deciding reason).

Inputs:
  file.eml     its envelope in a .json file of the same name ({ "mailFrom": "...", "rcptTo":
               [...], optional "submitter", "queueId", "ingress", "authentication", "spam" }),
               or, for a single file, --mail-from and --rcpt.
  directory    every *.eml in it, each with its envelope .json.
  batch.jsonl  JSON lines (also --batch <file>; a path ending in .jsonl is read as one): one
               message per line, an object with the envelope fields above plus at most one of
                 "file": "x.eml"   the message, relative to the .jsonl file's directory
                 "raw":  "..."     the message (or its header block) as text
               and an optional "id" naming it in the output (default: "file", else
               <batch.jsonl>:<line>). Neither file nor raw: decided on the envelope alone.
               Blank lines are skipped; a line that is not such an object is an invalid message.
               e.g. {"file":"03-spam.eml","mailFrom":"a@contoso.com","rcptTo":["b@example.org"]}

demo: decide over the bundled example messages (examples/messages) with the bundled policy
and DNS zone; no network.

Options:
  --mail-from <address>   envelope sender ('' or <> for the null sender); one .eml only
  --rcpt <address>        envelope recipient; repeat for several; one .eml only
  --batch <file.jsonl>    a JSON-lines batch (see above); repeat for several
  --policy <file.json>    policy (default: the bundled examples/policy.json)
  --zone <file.json>      DNS zone for the static resolver (default: examples/zone.json)
  --dns-server <host:port>  ask this DNS server instead of the static zone; repeat for several
  --rspamd-url <url>      classify spam with rspamd (its normal worker, e.g. http://127.0.0.1:11333)
                          when the message has no precomputed "spam" verdict
  --redis-url <url>       count sending limits (rules 1 and 3) in Redis (redis://host:port)
  --srs-secret <s>        rewrite verified forwards with SRS using this secret
  --srs-domain <d>        SRS forwarding domain (default: the first accepted domain)
  --now <time>            clock: Unix seconds or ISO 8601 (default: now)
  --json                  one JSON decision per line ({ "file", ...decision }, or { "file",
                          "error" } for an invalid message), then { "summary": { "messages",
                          "outcomes", "reasons" } } as the last line
  --progress              show progress on stderr (default: only when stderr is a terminal
                          and there are more than 20 messages)

Exit status:
  0  every message was decided (whatever the decision: block and defer count as decided)
  1  some message could not be read or was invalid (the others are still decided)
  2  usage error: bad flags, a missing file, an invalid policy or zone`;

/** Progress is shown automatically on a terminal for batches longer than this. */
const PROGRESS_AUTO_MIN = 20;

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

const OPTIONS = {
  ...COMMON_OPTIONS,
  batch: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  progress: { type: 'boolean' },
} as const;

/** The bundled examples, next to dist/ in the package. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));
/** The clock of the demo, so its SRS addresses are the same on every run. */
const DEMO_NOW = '2026-11-23T09:00:00Z';

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

/** A message file that cannot be decided (no envelope, unreadable JSON): reported, the run goes on. */
class MessageFileError extends Error {
  override readonly name = 'MessageFileError';
}

interface Job {
  readonly file: string;
  readonly message: OutboundMessage | MessageFileError;
}

interface EnvelopeFlags {
  readonly mailFrom?: string;
  readonly rcpt?: readonly string[];
}

function envelopeFor(emlPath: string, flags: EnvelopeFlags): OutboundMessage | MessageFileError {
  let headers: Buffer;
  try {
    headers = readFileSync(emlPath);
  } catch (error) {
    return new MessageFileError(`cannot read ${emlPath}: ${(error as Error).message}`);
  }
  if (flags.mailFrom !== undefined || flags.rcpt !== undefined) {
    const mailFrom = flags.mailFrom === '<>' ? '' : (flags.mailFrom ?? '');
    return { mailFrom, rcptTo: flags.rcpt ?? [], headers };
  }
  const envelopePath = emlPath.replace(/\.eml$/i, '.json');
  if (!existsSync(envelopePath)) return new MessageFileError(`no envelope: give --mail-from and --rcpt, or write ${basename(envelopePath)}`);
  try {
    const envelope = JSON.parse(readFileSync(envelopePath, 'utf8')) as Record<string, unknown>;
    return { ...envelope, headers } as unknown as OutboundMessage;
  } catch (error) {
    return new MessageFileError(`${basename(envelopePath)}: ${(error as Error).message}`);
  }
}

/** The fields a JSON-lines batch line may have. */
const BATCH_FIELDS = ['id', 'file', 'raw', 'mailFrom', 'rcptTo', 'submitter', 'queueId', 'ingress', 'authentication', 'spam'];

/** One line of a JSON-lines batch: a message, or why it is not one. */
function batchLine(text: string, dir: string): { id: string | undefined; message: OutboundMessage | MessageFileError } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { id: undefined, message: new MessageFileError(`not JSON: ${(error as Error).message}`) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { id: undefined, message: new MessageFileError('a line must be a JSON object') };
  const line = value as Record<string, unknown>;
  const id = typeof line.id === 'string' ? line.id : typeof line.file === 'string' ? line.file : undefined;
  const unknown = Object.keys(line).filter((key) => !BATCH_FIELDS.includes(key));
  if (unknown.length > 0) return { id, message: new MessageFileError(`unknown field ${unknown.map((key) => JSON.stringify(key)).join(', ')}; known: ${BATCH_FIELDS.join(', ')}`) };
  if (line.id !== undefined && typeof line.id !== 'string') return { id, message: new MessageFileError('"id" must be a string') };
  if (line.file !== undefined && line.raw !== undefined) return { id, message: new MessageFileError('give "file" or "raw", not both') };
  const { id: _id, file, raw, ...envelope } = line;
  let headers: string | Buffer | undefined;
  if (file !== undefined) {
    if (typeof file !== 'string' || file === '') return { id, message: new MessageFileError('"file" must be a non-empty string') };
    try {
      headers = readFileSync(resolve(dir, file));
    } catch (error) {
      return { id, message: new MessageFileError(`cannot read ${file}: ${(error as Error).message}`) };
    }
  } else if (raw !== undefined) {
    if (typeof raw !== 'string') return { id, message: new MessageFileError('"raw" must be a string') };
    headers = raw;
  }
  return { id, message: { ...envelope, ...(headers === undefined ? {} : { headers }) } as unknown as OutboundMessage };
}

function batchJobs(path: string): Job[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the batch ${path}: ${(error as Error).message}`);
  }
  const jobs: Job[] = [];
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const { id, message } = batchLine(line, dirname(path));
    jobs.push({ file: id ?? `${basename(path)}:${index + 1}`, message });
  }
  if (jobs.length === 0) throw new UsageError(`no messages in the batch ${path}`);
  return jobs;
}

function jobsFor(paths: readonly string[], batches: readonly string[], flags: EnvelopeFlags): Job[] {
  const jobs: Job[] = [];
  const hasFlags = flags.mailFrom !== undefined || flags.rcpt !== undefined;
  for (const path of paths) {
    if (!existsSync(path)) throw new UsageError(`no such file or directory: ${path}`);
    if (statSync(path).isDirectory()) {
      const files = readdirSync(path).filter((name) => name.toLowerCase().endsWith('.eml')).sort();
      if (files.length === 0) throw new UsageError(`no .eml files in ${path}`);
      for (const name of files) jobs.push({ file: name, message: envelopeFor(join(path, name), {}) });
    } else if (path.toLowerCase().endsWith('.jsonl')) {
      if (hasFlags) throw new UsageError('--mail-from and --rcpt describe one .eml; a batch gives each envelope on its line.');
      jobs.push(...batchJobs(path));
    } else {
      jobs.push({ file: basename(path), message: envelopeFor(path, flags) });
    }
  }
  for (const batch of batches) {
    if (hasFlags) throw new UsageError('--mail-from and --rcpt describe one .eml; a batch gives each envelope on its line.');
    if (!existsSync(batch)) throw new UsageError(`no such file: ${batch}`);
    jobs.push(...batchJobs(batch));
  }
  if (jobs.length > 1 && hasFlags) {
    throw new UsageError('--mail-from and --rcpt describe one message; for several, put an envelope .json next to each .eml.');
  }
  return jobs;
}

function parseNow(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = /^-?\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--now must be Unix seconds or an ISO 8601 date, got "${value}".`);
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

/** What a decision run can end in, in the order the summary lists them. */
export const OUTCOMES = ['normal', 'high-risk', 'relay', 'block', 'defer', 'invalid'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Counts of a run: per outcome, and per deciding reason and outcome. */
export class Summary {
  readonly outcomes: Record<Outcome, number> = { normal: 0, 'high-risk': 0, relay: 0, block: 0, defer: 0, invalid: 0 };
  readonly reasons = new Map<string, Partial<Record<Outcome, number>>>();

  add(decision: Decision): void {
    const outcome: Outcome = decision.action === 'deliver' ? decision.pool : decision.action;
    this.outcomes[outcome]++;
    const code = decision.reasons[0]!.code;
    const row = this.reasons.get(code) ?? {};
    row[outcome] = (row[outcome] ?? 0) + 1;
    this.reasons.set(code, row);
  }

  invalid(): void {
    this.outcomes.invalid++;
  }

  get messages(): number {
    return OUTCOMES.reduce((sum, outcome) => sum + this.outcomes[outcome], 0);
  }

  /** Reasons by count, most frequent first, then by name. */
  private sortedReasons(): [string, Partial<Record<Outcome, number>>, number][] {
    return [...this.reasons]
      .map(([code, row]): [string, Partial<Record<Outcome, number>>, number] => [code, row, Object.values(row).reduce((a, b) => a + b, 0)])
      .sort((a, b) => b[2] - a[2] || a[0].localeCompare(b[0]));
  }

  /** The summary line and the table: one row per deciding reason, one column per outcome. */
  table(): string {
    const head = `${this.messages} message(s): ${OUTCOMES.map((outcome) => `${outcome} ${this.outcomes[outcome]}`).join(', ')}`;
    const columns = OUTCOMES.filter((outcome) => outcome !== 'invalid');
    const rows: string[][] = [['deciding reason', ...columns, 'total']];
    for (const [code, row, total] of this.sortedReasons()) rows.push([code, ...columns.map((outcome) => String(row[outcome] ?? 0)), String(total)]);
    if (this.outcomes.invalid > 0) rows.push(['(invalid message)', ...columns.map(() => '0'), String(this.outcomes.invalid)]);
    rows.push(['total', ...columns.map((outcome) => String(this.outcomes[outcome])), String(this.messages)]);
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    const format = (row: string[]) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
    const rule = widths.map((width) => '-'.repeat(width)).join('  ');
    const lines = rows.map(format);
    lines.splice(1, 0, rule);
    lines.splice(lines.length - 1, 0, rule);
    return `${head}\n\n${lines.join('\n')}`;
  }

  toJSON(): { messages: number; outcomes: Record<Outcome, number>; reasons: Record<string, Partial<Record<Outcome, number>> & { total: number }> } {
    return {
      messages: this.messages,
      outcomes: { ...this.outcomes },
      reasons: Object.fromEntries(this.sortedReasons().map(([code, row, total]) => [code, { ...row, total }])),
    };
  }
}

/** Progress on stderr: redrawn in place on a terminal, else a line now and then. */
class Progress {
  private shown = false;
  private last = 0;
  constructor(
    private readonly io: CliIo,
    private readonly total: number,
    private readonly tty: boolean,
  ) {}

  update(done: number): void {
    const now = Date.now();
    if (this.tty) {
      this.io.stderr(`\r\x1b[Kdeciding: ${done}/${this.total}`);
      this.shown = true;
    } else if (done === this.total || done === 1 || now - this.last >= 1000) {
      this.io.stderr(`progress: ${done}/${this.total}\n`);
      this.last = now;
    }
  }

  /** Clears the terminal line before something else is written. */
  clear(): void {
    if (this.tty && this.shown) this.io.stderr('\r\x1b[K');
    this.shown = false;
  }
}

/** The policy, providers and clock of a run, and how to release them. */
export interface Setup {
  readonly policy: Policy;
  readonly decide: (message: OutboundMessage) => Promise<Decision>;
  close(): Promise<void>;
}

type CommonValues = {
  readonly policy?: string | undefined;
  readonly zone?: string | undefined;
  readonly 'dns-server'?: string[] | undefined;
  readonly 'rspamd-url'?: string | undefined;
  readonly 'redis-url'?: string | undefined;
  readonly 'srs-secret'?: string | undefined;
  readonly 'srs-domain'?: string | undefined;
  readonly now?: string | undefined;
};

function providerOption<T>(what: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof OutboundPoolsError || error instanceof RspamdError || error instanceof TypeError) throw new UsageError(`${what}: ${error.message}`);
    throw error;
  }
}

/** Builds the policy, the providers (static zone by default; DNS, rspamd, Redis when given) and the decider. */
export function setUp(values: CommonValues, demo = false): Setup {
  let policy: Policy;
  try {
    policy = createPolicy(readJson(values.policy ?? join(EXAMPLES_DIR, 'policy.json'), 'policy') as object);
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
  const rspamdUrl = values['rspamd-url'];
  const spam = rspamdUrl === undefined ? undefined : providerOption('--rspamd-url', () => createRspamdClassifier({ url: rspamdUrl }));
  const redisUrl = values['redis-url'];
  const rateLimiter = redisUrl === undefined ? undefined : providerOption('--redis-url', () => createRedisRateLimiter({ url: redisUrl }));
  const secret = values['srs-secret'] ?? (demo ? 'demo-secret-do-not-use' : undefined);
  const srsDomain = values['srs-domain'] ?? policy.acceptedDomains.find((domain) => !domain.startsWith('*.'));
  if (secret !== undefined && srsDomain === undefined) throw new UsageError('--srs-secret needs --srs-domain (the policy has no accepted domain to use).');
  const now = parseNow(values.now ?? (demo ? DEMO_NOW : undefined));
  const decider = createDecider({
    policy,
    providers: { dns, ...(spam === undefined ? {} : { spam }), ...(rateLimiter === undefined ? {} : { rateLimiter }) },
    ...(secret === undefined ? {} : { srs: { rewriter: new Srs({ secret }), domain: srsDomain! } }),
  });
  return {
    policy,
    decide: (message) => (now === undefined ? decider(message) : decider(message, { now })),
    close: async () => {
      await rateLimiter?.close();
    },
  };
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function envelopeFlags(values: { readonly 'mail-from'?: string | undefined; readonly rcpt?: string[] | undefined }): EnvelopeFlags {
  return {
    ...(values['mail-from'] === undefined ? {} : { mailFrom: values['mail-from'] }),
    ...(values.rcpt === undefined ? {} : { rcpt: values.rcpt }),
  };
}

/** Runs `decide` (or `demo` with the bundled examples); returns the exit status. */
export async function runDecide(args: readonly string[], io: CliIo, demo = false): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    io.stdout(`${DECIDE_USAGE}\n`);
    return 0;
  }
  if (demo && (positionals.length > 0 || values.batch !== undefined)) throw new UsageError('demo takes no files: it decides over the bundled examples.');
  const paths = demo ? [join(EXAMPLES_DIR, 'messages')] : positionals;
  const batches = values.batch ?? [];
  if (paths.length === 0 && batches.length === 0) throw new UsageError('give an .eml file, a directory of them or a .jsonl batch (or run: outbound-pools demo).');

  const jobs = jobsFor(paths, batches, envelopeFlags(values));
  const setup = setUp(values, demo);
  const summary = new Summary();
  const stderrTty = io.stderrIsTTY === true;
  const progress = values.progress === true || (stderrTty && jobs.length > PROGRESS_AUTO_MIN) ? new Progress(io, jobs.length, stderrTty) : null;
  const out = (text: string) => {
    progress?.clear();
    io.stdout(text);
  };
  let status = 0;
  try {
    for (const [index, job] of jobs.entries()) {
      let decision: Decision;
      try {
        if (job.message instanceof MessageFileError) throw job.message;
        decision = await setup.decide(job.message);
      } catch (error) {
        if (!(error instanceof OutboundPoolsError) && !(error instanceof MessageFileError)) throw error;
        summary.invalid();
        status = 1;
        if (values.json) out(`${JSON.stringify({ file: job.file, error: (error as Error).message })}\n`);
        else {
          progress?.clear();
          io.stderr(`${job.file}: invalid: ${(error as Error).message}\n`);
        }
        progress?.update(index + 1);
        continue;
      }
      summary.add(decision);
      out(values.json ? `${JSON.stringify({ file: job.file, ...decision })}\n` : `${describe(job.file, decision)}\n\n`);
      progress?.update(index + 1);
    }
  } finally {
    progress?.clear();
    await setup.close();
  }
  io.stdout(values.json ? `${JSON.stringify({ summary: summary.toJSON() })}\n` : `${summary.table()}\n`);
  return status;
}

export const EXPLAIN_USAGE = `Usage: outbound-pools explain <file.eml> [options]

Why the message gets its pool, rule by rule (docs/decision-rules.md): for each of rules 1–9 in
order, the verdict it read and whether it applies, does not apply or was not reached; then the
decision and its trace line (OutboundIpPoolName=…). The envelope comes from the .json next to
the .eml, or from --mail-from and --rcpt.

Options: the same as decide's (except --batch, --json and --progress):
  --mail-from <address>, --rcpt <address>, --policy <file.json>, --zone <file.json>,
  --dns-server <host:port>, --rspamd-url <url>, --redis-url <url>, --srs-secret <s>,
  --srs-domain <d>, --now <time>       (see: outbound-pools decide --help)

Exit status: 0 explained, 1 the message could not be read or was invalid, 2 usage error.`;

/** Runs `explain`; returns the exit status. */
export async function runExplain(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, COMMON_OPTIONS);
  if (values.help) {
    io.stdout(`${EXPLAIN_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('explain takes one .eml file.');
  const path = positionals[0]!;
  if (!existsSync(path)) throw new UsageError(`no such file: ${path}`);
  if (statSync(path).isDirectory()) throw new UsageError(`${path} is a directory: explain takes one .eml file.`);
  const flags = envelopeFlags(values);
  const message = envelopeFor(path, flags);
  const file = basename(path);
  const setup = setUp(values);
  try {
    if (message instanceof MessageFileError) throw message;
    const decision = await setup.decide(message);
    const rcptTo = Array.isArray(message.rcptTo) ? message.rcptTo : undefined;
    const lines = explainDecision(decision, setup.policy, rcptTo === undefined ? {} : { rcptTo });
    io.stdout(`${file}\n${lines.map((line) => (line.startsWith('decision:') || line.startsWith('trace:') ? line : `  ${line}`)).join('\n')}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof OutboundPoolsError) && !(error instanceof MessageFileError)) throw error;
    io.stderr(`${file}: invalid: ${error.message}\n`);
    return 1;
  } finally {
    await setup.close();
  }
}
