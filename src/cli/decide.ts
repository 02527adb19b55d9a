// `outbound-pools decide` and `outbound-pools demo`: decisions for .eml files from the shell,
// with DNS answered by a zone file (the bundled one by default, so it runs offline).

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decidePool } from '../decide/gather.js';
import type { DecideContext, Decision, OutboundMessage } from '../decide/types.js';
import { OutboundPoolsError } from '../errors.js';
import { createPolicy, type Policy, type Pool } from '../policy.js';
import { createStaticResolver, type StaticZone } from '../providers/static-dns.js';
import { Srs } from '../srs/index.js';
import { UsageError, type CliIo } from './io.js';

export const DECIDE_USAGE = `Usage:
  outbound-pools decide <file.eml | directory>... [options]
  outbound-pools demo [--json]

decide: the pool each message leaves through, with the reasons. A directory is read for *.eml
files, each with its envelope in a .json file of the same name ({ "mailFrom": "...",
"rcptTo": [...], optional "submitter", "ingress", "authentication", "spam" }). For a single
file, --mail-from and --rcpt give the envelope instead.

demo: decide over the bundled example messages (examples/messages) with the bundled policy
and DNS zone; no network.

Options:
  --mail-from <address>   envelope sender ('' or <> for the null sender)
  --rcpt <address>        envelope recipient; repeat for several
  --policy <file.json>    policy (default: the bundled examples/policy.json)
  --zone <file.json>      DNS zone for the static resolver (default: examples/zone.json)
  --srs-secret <s>        rewrite verified forwards with SRS using this secret
  --srs-domain <d>        SRS forwarding domain (default: the first accepted domain)
  --now <time>            clock: Unix seconds or ISO 8601 (default: now)
  --json                  one JSON decision per line instead of text

Exit status: 0 every message decided, 1 a message could not be read or was invalid, 2 usage error.`;

const OPTIONS = {
  'mail-from': { type: 'string' },
  rcpt: { type: 'string', multiple: true },
  policy: { type: 'string' },
  zone: { type: 'string' },
  'srs-secret': { type: 'string' },
  'srs-domain': { type: 'string' },
  now: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
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

function envelopeFor(emlPath: string, flags: { mailFrom?: string; rcpt?: readonly string[] }): OutboundMessage | MessageFileError {
  const headers = readFileSync(emlPath);
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

function jobsFor(paths: readonly string[], flags: { mailFrom?: string; rcpt?: readonly string[] }): Job[] {
  const jobs: Job[] = [];
  for (const path of paths) {
    if (!existsSync(path)) throw new UsageError(`no such file or directory: ${path}`);
    if (statSync(path).isDirectory()) {
      const files = readdirSync(path).filter((name) => name.toLowerCase().endsWith('.eml')).sort();
      if (files.length === 0) throw new UsageError(`no .eml files in ${path}`);
      for (const name of files) jobs.push({ file: name, message: envelopeFor(join(path, name), {}) });
    } else {
      jobs.push({ file: basename(path), message: envelopeFor(path, flags) });
    }
  }
  if (jobs.length > 1 && (flags.mailFrom !== undefined || flags.rcpt !== undefined)) {
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

type Tally = Record<Pool | 'block' | 'defer' | 'invalid', number>;

function summary(tally: Tally, reasons: Map<string, number>): string {
  const total = Object.values(tally).reduce((a, b) => a + b, 0);
  const pools = (Object.entries(tally) as [string, number][]).map(([name, count]) => `${name} ${count}`).join(', ');
  const byReason = [...reasons].sort((a, b) => b[1] - a[1]).map(([code, count]) => `${code} ${count}`).join(', ');
  return `${total} message(s): ${pools}\nby reason: ${byReason}`;
}

/** Runs `decide` (or `demo` with the bundled examples); returns the exit status. */
export async function runDecide(args: readonly string[], io: CliIo, demo = false): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${DECIDE_USAGE}\n`);
    return 0;
  }
  if (demo && positionals.length > 0) throw new UsageError('demo takes no files: it decides over the bundled examples.');
  const paths = demo ? [join(EXAMPLES_DIR, 'messages')] : positionals;
  if (paths.length === 0) throw new UsageError('give an .eml file or a directory of them (or run: outbound-pools demo).');

  let policy: Policy;
  try {
    policy = createPolicy(readJson(values.policy ?? join(EXAMPLES_DIR, 'policy.json'), 'policy') as object);
  } catch (error) {
    if (error instanceof OutboundPoolsError) throw new UsageError(`the policy is invalid: ${error.message}`);
    throw error;
  }
  const dns = createStaticResolver(readJson(values.zone ?? join(EXAMPLES_DIR, 'zone.json'), 'zone') as StaticZone);
  const secret = values['srs-secret'] ?? (demo ? 'demo-secret-do-not-use' : undefined);
  const srsDomain = values['srs-domain'] ?? policy.acceptedDomains.find((domain) => !domain.startsWith('*.'));
  if (secret !== undefined && srsDomain === undefined) throw new UsageError('--srs-secret needs --srs-domain (the policy has no accepted domain to use).');
  const now = parseNow(values.now ?? (demo ? DEMO_NOW : undefined));
  const context: DecideContext = {
    policy,
    providers: { dns },
    ...(secret === undefined ? {} : { srs: { rewriter: new Srs({ secret }), domain: srsDomain! } }),
    ...(now === undefined ? {} : { now }),
  };

  const flags = {
    ...(values['mail-from'] === undefined ? {} : { mailFrom: values['mail-from'] }),
    ...(values.rcpt === undefined ? {} : { rcpt: values.rcpt }),
  };
  const tally: Tally = { normal: 0, 'high-risk': 0, relay: 0, block: 0, defer: 0, invalid: 0 };
  const reasons = new Map<string, number>();
  let status = 0;
  for (const job of jobsFor(paths, flags)) {
    let decision: Decision;
    try {
      if (job.message instanceof MessageFileError) throw job.message;
      decision = await decidePool(job.message, context);
    } catch (error) {
      if (!(error instanceof OutboundPoolsError) && !(error instanceof MessageFileError)) throw error;
      tally.invalid++;
      status = 1;
      if (values.json) io.stdout(`${JSON.stringify({ file: job.file, error: (error as Error).message })}\n`);
      else io.stderr(`${job.file}: invalid: ${(error as Error).message}\n`);
      continue;
    }
    tally[decision.action === 'deliver' ? decision.pool : decision.action]++;
    const first = decision.reasons[0]!.code;
    reasons.set(first, (reasons.get(first) ?? 0) + 1);
    io.stdout(values.json ? `${JSON.stringify({ file: job.file, ...decision })}\n` : `${describe(job.file, decision)}\n\n`);
  }
  if (!values.json) io.stdout(`${summary(tally, reasons)}\n`);
  return status;
}
