// `outbound-pools restricted list | release <key> | restrict <key>`: the administrator's list of
// restricted senders on the Redis rate limiter (the one `decide --redis-url` and the milter
// share), and their release or restriction by hand.

import type { RestrictedSender } from '../providers/types.js';
import { parseCommandLine } from './args.js';
import { UsageError, type CliIo } from './io.js';

export const RESTRICTED_USAGE = `Usage:
  outbound-pools restricted list --redis-url <url> [options]
  outbound-pools restricted release <key> --redis-url <url> [options]
  outbound-pools restricted restrict <key> --redis-url <url> [--until <time>] [--reason <text>] [options]

list: the senders restricted now, with since when, why (limit, spam, admin) and until when.
release: lifts a sender's restriction; it is not restricted again automatically (by a limit or
  spam) until the next UTC midnight. Exit status 1 when it was not restricted.
restrict: restricts a sender until --until (default: until released), with --reason.

Options:
  --redis-url <url>       the Redis of the rate limiter (redis:// or rediss://)
  --prefix <p>            its key prefix (default outbound-pools:)
  --until <time>          end of the restriction (ISO 8601 or Unix seconds)
  --reason <text>         why, shown by list
  --now <time>            clock: Unix seconds or an ISO 8601 date (default: now)
  --json                  print JSON instead of text

Exit status: 0 done, 1 nothing to release, 2 usage error or Redis not answering.`;

const OPTIONS = {
  'redis-url': { type: 'string' },
  prefix: { type: 'string' },
  until: { type: 'string' },
  reason: { type: 'string' },
  now: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A time flag: Unix seconds or an ISO 8601 date. */
function parseTime(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const ms = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`--${flag} must be Unix seconds or an ISO 8601 date, got "${value}".`);
  return new Date(ms);
}

/** A restriction's cause in words. */
function causeText(sender: RestrictedSender): string {
  const { cause } = sender;
  if (cause === undefined) return 'unknown';
  if (cause.kind === 'limit') return `limit ${cause.window} of ${JSON.stringify(cause.set)}`;
  if (cause.kind === 'spam') return `spam (${cause.count} in an ${cause.window === 'hour' ? 'hour' : 'day'})`;
  return 'admin';
}

function line(sender: RestrictedSender): string {
  return `${sender.key}\tsince ${sender.since ?? '?'}\tuntil ${sender.until ?? 'released'}\t${causeText(sender)}${sender.reason === undefined ? '' : `\t${sender.reason}`}`;
}

/** Runs `restricted …`; returns the exit status. */
export async function runRestricted(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help === true) {
    io.stdout(`${RESTRICTED_USAGE}\n`);
    return 0;
  }
  const [action, key, ...extra] = positionals;
  if (action !== 'list' && action !== 'release' && action !== 'restrict') {
    throw new UsageError(action === undefined ? 'restricted needs list, release or restrict.' : `unknown action "${action}": list, release or restrict.`);
  }
  if (action === 'list' && key !== undefined) throw new UsageError('restricted list takes no key.');
  if (action !== 'list' && (key === undefined || key === '')) throw new UsageError(`restricted ${action} needs the sender key.`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}".`);
  if (action !== 'restrict' && (values.until !== undefined || values.reason !== undefined)) throw new UsageError('--until and --reason go with restrict.');
  const url = values['redis-url'];
  if (url === undefined) throw new UsageError('restricted needs --redis-url <url>.');
  const now = parseTime('now', values.now) ?? new Date();
  const until = parseTime('until', values.until);
  const json = values.json === true;

  const { createRedisRateLimiter } = await import('../redis/limiter.js');
  let limiter: ReturnType<typeof createRedisRateLimiter>;
  try {
    limiter = createRedisRateLimiter({ url, commandTimeoutMs: 3_000, ...(values.prefix === undefined ? {} : { prefix: values.prefix }) });
  } catch (error) {
    throw new UsageError(`--redis-url: ${(error as Error).message}`);
  }
  try {
    if (action === 'list') {
      const list = [...(await limiter.restricted(now))].sort((a, b) => a.key.localeCompare(b.key));
      if (json) io.stdout(`${JSON.stringify(list)}\n`);
      else if (list.length === 0) io.stdout('no sender is restricted\n');
      else io.stdout(`${list.map(line).join('\n')}\n`);
      return 0;
    }
    if (action === 'release') {
      const released = await limiter.release(key!, now);
      if (json) io.stdout(`${JSON.stringify({ key, released })}\n`);
      else io.stdout(released ? `released ${key}\n` : `${key} was not restricted\n`);
      return released ? 0 : 1;
    }
    const restricted = await limiter.restrict(key!, { until: until ?? null, ...(values.reason === undefined ? {} : { reason: values.reason }), now });
    io.stdout(json ? `${JSON.stringify(restricted)}\n` : `restricted ${line(restricted)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`--redis-url ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${why}`);
  } finally {
    await limiter.close();
  }
}
