// `outbound-pools restricted`: the restricted senders of a fleet's Redis limiter, listed,
// released and restricted by hand — what Microsoft's "Restricted entities" page does for an
// administrator. The limiter's own methods (restricted, release, restrict) do the work; this
// file reads the command line and prints their answers for a person or, with --json, a script.

import { limitKeyOf } from '../address.js';
import type { RestrictedSender, RestrictionCause } from '../providers/types.js';
import { parseCommandLine } from './args.js';
import { redisRateLimiter } from './decide.js';
import { UsageError, type CliIo } from './io.js';
import { clockFlag } from './srs-map.js';

export const RESTRICTED_USAGE = `Usage: outbound-pools restricted list --redis-url <url> [--json]
       outbound-pools restricted release <sender> --redis-url <url> [--json]
       outbound-pools restricted restrict <sender> --redis-url <url> [--until <time>] [--reason <text>] [--json]

The restricted senders of the Redis rate limiter every node of a fleet shares (docs/limits.md).
<sender> is an envelope address or a SASL login, keyed as decisions key it (lowercased, an
address in its canonical form: <"Megan"@Bücher.DE> is megan@xn--bcher-kva.de):
  list       the senders restricted now: since when, why (a limit, spam, an administrator), until when
  release    lift a sender's restriction; it is not restricted again automatically (by a limit
             or by spam) until the next UTC day, as Microsoft's release does
  restrict   restrict a sender by hand, until --until or, without it, until released

Options:
  --redis-url <url>     the Redis of the limiter (redis://host:port, rediss://…)
  --redis-prefix <p>    the limiter's key prefix (default outbound-pools:)
  --until <time>        end of the restriction: ISO 8601 or Unix seconds (default: until released)
  --reason <text>       why, shown by list and in the sender-restricted reason
  --json                print JSON: list an array, release and restrict one object
  --now <time>          clock: Unix seconds or ISO 8601 (default: now; for tests)

Exit status: 0 done, 1 release of a sender that was not restricted, 2 usage error (or Redis
does not answer).`;

const OPTIONS = {
  'redis-url': { type: 'string' },
  'redis-prefix': { type: 'string' },
  until: { type: 'string' },
  reason: { type: 'string' },
  json: { type: 'boolean' },
  now: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const ACTIONS = ['list', 'release', 'restrict'] as const;
type Action = (typeof ACTIONS)[number];

/** Longest --reason accepted: it is stored with the restriction and shown in every refusal. */
const MAX_REASON = 500;

/** What a cause says, in a few words. */
export function describeCause(cause: RestrictionCause): string {
  switch (cause.kind) {
    case 'limit':
      return `limit ${cause.window} of ${cause.set}`;
    case 'spam':
      return `spam: ${cause.count} in an ${cause.window === 'hour' ? 'hour' : 'day'}`;
    case 'admin':
      return 'administrator';
  }
}

/** The list as a table with a header row, columns padded to their widest cell. */
function table(senders: readonly RestrictedSender[]): string {
  if (senders.length === 0) return 'No sender is restricted.\n';
  const rows = [
    ['SENDER', 'SINCE', 'UNTIL', 'CAUSE', 'REASON'],
    ...senders.map((sender) => [sender.key, sender.since, sender.until ?? 'released by hand', describeCause(sender.cause), sender.reason ?? '']),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function untilFlag(value: string | undefined, nowMs: number): Date | null {
  if (value === undefined || value === 'never') return null;
  const date = /^\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--until must be Unix seconds or an ISO 8601 date, got "${value}".`);
  if (date.getTime() <= nowMs) throw new UsageError(`--until ${value} is not in the future: nothing would be restricted.`);
  return date;
}

/** `outbound-pools restricted …`; returns the exit status. */
export async function runRestricted(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help === true) {
    io.stdout(`${RESTRICTED_USAGE}\n`);
    return 0;
  }
  const [action, typed, ...extra] = positionals;
  // The sender as the decision keys it, whatever the spelling typed (`<Megan@Contoso.com>`, a
  // quoted local part, a U-label domain, a login in capitals): else a restriction would never
  // meet the decisions it was meant for.
  const key = typed === undefined ? undefined : limitKeyOf(typed);
  if (action === undefined) throw new UsageError(`restricted needs an action: ${ACTIONS.join(', ')}.`);
  if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action "${action}"; known: ${ACTIONS.join(', ')}.`);
  const chosen = action as Action;
  if (chosen === 'list' && key !== undefined) throw new UsageError('restricted list takes no sender.');
  if (chosen !== 'list' && key === undefined) throw new UsageError(`restricted ${chosen} needs the sender: restricted ${chosen} <sender>.`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}".`);
  if (chosen !== 'restrict' && (values.until !== undefined || values.reason !== undefined)) {
    throw new UsageError(`--until and --reason go with restricted restrict, not ${chosen}.`);
  }
  const url = values['redis-url'];
  if (url === undefined) throw new UsageError('--redis-url is required: restrictions live in the Redis the fleet shares.');
  const clock = clockFlag(values.now);
  const now = new Date(clock === undefined ? Date.now() : clock());
  const until = chosen === 'restrict' ? untilFlag(values.until, now.getTime()) : null;
  const reason = values.reason;
  if (reason !== undefined && (reason.length === 0 || reason.length > MAX_REASON || /[\u0000-\u001f\u007f]/.test(reason))) {
    throw new UsageError(`--reason must be 1–${MAX_REASON} characters without control characters.`);
  }

  const limiter = await redisRateLimiter(url, values['redis-prefix']);
  try {
    switch (chosen) {
      case 'list': {
        const senders = await limiter.restricted(now);
        io.stdout(values.json === true ? `${JSON.stringify(senders)}\n` : table(senders));
        return 0;
      }
      case 'release': {
        const released = await limiter.release(key!, now);
        if (values.json === true) io.stdout(`${JSON.stringify({ key, released })}\n`);
        else if (released) io.stdout(`Released ${key}; it is not restricted again automatically until the next UTC day.\n`);
        else io.stdout(`${key} was not restricted.\n`);
        return released ? 0 : 1;
      }
      case 'restrict': {
        const restricted = await limiter.restrict(key!, reason === undefined ? { until, now } : { until, reason, now });
        if (values.json === true) io.stdout(`${JSON.stringify(restricted)}\n`);
        else io.stdout(`Restricted ${key} ${restricted.until === null ? 'until released' : `until ${restricted.until}`}.\n`);
        return 0;
      }
    }
  } finally {
    await limiter.close();
  }
}
