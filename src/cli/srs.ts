// `outbound-pools srs forward|reverse`: the SRS module from the shell, with the options and the
// secrets file of postsrsd (one secret per line, the first signs).

import { readFileSync } from 'node:fs';
import { Srs, SrsError, type SrsOptions } from '../srs/index.js';
import { parseCommandLine } from './args.js';
import { UsageError, type CliIo } from './io.js';

export const SRS_USAGE = `Usage:
  outbound-pools srs forward <address>... --domain <domain> (--secret <s> | --secrets-file <f>) [options]
  outbound-pools srs reverse <address>... (--secret <s> | --secrets-file <f>) [options]

An <address> of - reads addresses from standard input, one a line.

Options:
  --domain <d>            forwarding domain (forward only)
  --secret <s>            secret; repeat for rotation (the first signs, all verify)
  --secrets-file <f>      file with one secret a line, first line signs (like postsrsd)
  --separator <c>         = (default), + or -
  --hash-length <n>       hash characters emitted (default 4)
  --hash-min <n>          fewest hash characters accepted (default: hash length)
  --max-age <days>        days an address stays valid (default 21)
  --alphabet <a>          base64 (default) or base64url (postsrsd >= 2.2.6)
  --always-rewrite        rewrite even senders in the forwarding domain
  --long-local-part <a>   refuse (default) or bounces, when a local part would pass 64 octets
  --now <time>            clock: Unix seconds or an ISO 8601 date (default: now)

Exit status: 0 all rewritten, 1 an address was refused (reason on stderr), 2 usage error.`;

const OPTIONS = {
  domain: { type: 'string' },
  secret: { type: 'string', multiple: true },
  'secrets-file': { type: 'string' },
  separator: { type: 'string' },
  'hash-length': { type: 'string' },
  'hash-min': { type: 'string' },
  'max-age': { type: 'string' },
  alphabet: { type: 'string' },
  'always-rewrite': { type: 'boolean' },
  'long-local-part': { type: 'string' },
  now: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got "${value}".`);
  return Number(value);
}

/** `--now`: Unix seconds (as `date +%s` prints) or anything `Date` parses as ISO 8601. */
function parseNow(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`--now must be Unix seconds or an ISO 8601 date, got "${value}".`);
  return ms;
}

function readSecrets(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the secrets file ${file}: ${(error as Error).message}`);
  }
  const secrets = text.split(/\r?\n/).filter((line) => line.length > 0);
  if (secrets.length === 0) throw new UsageError(`the secrets file ${file} has no secret in it.`);
  return secrets;
}

function srsOptions(values: ReturnType<typeof parseSrsArgs>['values']): SrsOptions {
  const fromFile = values['secrets-file'] === undefined ? [] : readSecrets(values['secrets-file']);
  const secrets = [...(values.secret ?? []), ...fromFile];
  if (secrets.length === 0) throw new UsageError('give --secret or --secrets-file.');
  const options: Record<string, unknown> = { secrets };
  const set = (key: string, value: unknown) => {
    if (value !== undefined) options[key] = value;
  };
  set('separator', values.separator);
  set('hashLength', integer('hash-length', values['hash-length']));
  set('hashMin', integer('hash-min', values['hash-min']));
  set('maxAge', integer('max-age', values['max-age']));
  set('alphabet', values.alphabet);
  set('alwaysRewrite', values['always-rewrite']);
  set('longLocalPart', values['long-local-part']);
  return options as SrsOptions;
}

function parseSrsArgs(args: readonly string[]) {
  return parseCommandLine(args, OPTIONS);
}

async function addressesFrom(positionals: readonly string[], io: CliIo): Promise<string[]> {
  if (positionals.length === 1 && positionals[0] === '-') {
    return (await io.readStdin()).split(/\r?\n/).filter((line) => line.length > 0);
  }
  if (positionals.length === 0) throw new UsageError('give at least one address, or - to read them from standard input.');
  return [...positionals];
}

/** Runs `srs <forward|reverse> …`; returns the exit status. */
export async function runSrs(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals: [operation, ...positionals] } = parseSrsArgs(args);
  if (values.help || operation === undefined || operation === 'help') {
    io.stdout(`${SRS_USAGE}\n`);
    return values.help || operation === 'help' ? 0 : 2;
  }
  if (operation !== 'forward' && operation !== 'reverse') {
    throw new UsageError(`unknown srs operation "${operation}": use forward or reverse.`);
  }
  if (operation === 'forward' && values.domain === undefined) throw new UsageError('srs forward needs --domain.');
  if (operation === 'reverse' && values.domain !== undefined) throw new UsageError('srs reverse takes no --domain: the domain of an SRS address is not signed.');
  const now = parseNow(values.now);
  let srs: Srs;
  try {
    srs = new Srs(srsOptions(values));
  } catch (error) {
    if (error instanceof SrsError) throw new UsageError(error.message);
    throw error;
  }
  const clock = now === undefined ? undefined : { now };
  let status = 0;
  for (const address of await addressesFrom(positionals, io)) {
    try {
      io.stdout(`${operation === 'forward' ? srs.forward(address, values.domain!, clock) : srs.reverse(address, clock)}\n`);
    } catch (error) {
      if (!(error instanceof SrsError)) throw error;
      io.stderr(`outbound-pools srs ${operation}: ${error.code}: ${error.message}\n`);
      status = 1;
    }
  }
  return status;
}
