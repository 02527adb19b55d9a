// `outbound-pools milter`: the Postfix milter daemon. Configured like `decide` (policy, DNS,
// rspamd, Redis, SRS), it decides each message submitted through the listener that has it in
// smtpd_milters, and logs one line per decision.

import { OutboundPoolsError } from '../errors.js';
import { parseForwarders } from '../postfix/forwarders.js';
import { createPoolMilter, POOL_HEADER } from '../postfix/pool-milter.js';
import { startMilterServer } from '../postfix/milter/server.js';
import type { SocketmapServer } from '../postfix/socketmap.js';
import { setUp } from './decide.js';
import { UsageError, type CliIo } from './io.js';
import { clockFlag, countFlag, listenFlag, parseFlags, readSecretsFile, started, startSrsMap, untilSignal } from './srs-map.js';

export const MILTER_USAGE = `Usage: outbound-pools milter --listen <address> [options]

A milter for Postfix (protocol 6): at the end of each message it decides the pool and adds
  X-Outbound-Pool-Route: <normal|high-risk|relay>   for milter_header_checks → FILTER pool_x:
  X-Outbound-Pool: <trace>                          why (also logged, one line per decision)
rewrites the envelope sender of verified forwards with SRS, refuses blocked messages with the
decision's 5xx and deferred ones with its 4xx. docs/postfix.md has the main.cf/master.cf lines.

Options:
  --listen <address>        inet:host:port or unix:/path (smtpd_milters = inet:host:port)
  --policy <file.json>      policy (default: the bundled examples/policy-set.json)
  --zone <file.json>        DNS zone for the static resolver (default: examples/zone.json)
  --dns-server <host:port>  ask this DNS server instead of the static zone; repeat for several
  --rspamd-url <url>        classify spam with rspamd (then the body is read, up to --body-limit)
  --redis-url <url>         count sending limits in Redis (redis://host:port)
  --srs-secret-file <file>  rewrite verified forwards with SRS: one secret a line, the first signs
  --srs-domain <domain>     SRS forwarding domain (default: the first accepted domain)
  --srs-map-listen <addr>   also serve the SRS socketmap (forward, reverse) here, as srs-map does
  --authserv-id <id>        trust Authentication-Results fields of this authserv-id (the inbound
                            MX that checked SPF/DKIM/ARC of forwarded mail); repeat for several.
                            Needs --auth-results-from: the submitting client writes the header
  --auth-results-from <cidr|login>
                            read those fields only in messages from this designated forwarder
                            (a mailbox server resubmitting forwarded mail): a client address or
                            CIDR range, or a SASL login (any case); repeat for several
  --spam-score-header <h>   read the spam score from this header field (its first number), put
                            there by a filter that runs before this milter and writes it for
                            every client, authenticated ones included (else a client scores its
                            own mail); not with --rspamd-url. Without either, no spam verdict
  --pool-header <name>      the pool header (default ${POOL_HEADER})
  --tenant <from>           the organisation each message counts for (policy.tenantLimits):
                            login-domain (the SASL login's domain) or sender-domain
  --body-limit <octets>     body octets read for rspamd (default 10485760 with --rspamd-url, else 0)
  --max-recipients <n>      recipients a message may have (default 10000); past a limit a message
                            is refused for now (452) without a decision (docs/postfix.md)
  --max-header-bytes <n>    octets of header a message may have (default 1048576)
  --max-header-fields <n>   header fields a message may have (default 10000)
  --max-macro-bytes <n>     octets of macros a connection keeps, all stages (default 65536); a
                            macro packet over it closes the connection
  --max-connections <n>     open connections at most, per listener (default 1000); one more is
                            closed at once, and Postfix applies milter_default_action
  --now <time>              clock: Unix seconds or ISO 8601 (default: now; for tests)

When the daemon is down, Postfix applies milter_default_action (tempfail by default: messages
wait in the client's queue; docs/postfix.md).
Runs until SIGTERM or SIGINT, then finishes the messages under way and exits 0.
Exit status: 0 stopped by a signal, 2 usage error (or the address cannot be listened on).`;

const OPTIONS = {
  listen: { type: 'string' },
  policy: { type: 'string' },
  zone: { type: 'string' },
  'dns-server': { type: 'string', multiple: true },
  'rspamd-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'srs-secret-file': { type: 'string' },
  'srs-domain': { type: 'string' },
  'srs-map-listen': { type: 'string' },
  'authserv-id': { type: 'string', multiple: true },
  'auth-results-from': { type: 'string', multiple: true },
  'spam-score-header': { type: 'string' },
  'pool-header': { type: 'string' },
  tenant: { type: 'string' },
  'body-limit': { type: 'string' },
  'max-recipients': { type: 'string' },
  'max-header-bytes': { type: 'string' },
  'max-header-fields': { type: 'string' },
  'max-macro-bytes': { type: 'string' },
  'max-connections': { type: 'string' },
  now: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const RSPAMD_BODY_LIMIT = 10 * 1024 * 1024;

/** `{ [key]: value }`, or nothing when `value` is undefined (exactOptionalPropertyTypes). */
function optional<K extends string>(key: K, value: number | undefined): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

/** Runs `milter` until a signal; returns the exit status. */
export async function runMilter(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, OPTIONS);
  if (values.help) {
    io.stdout(`${MILTER_USAGE}\n`);
    return 0;
  }
  const address = listenFlag(values.listen);
  const mapAddress = values['srs-map-listen'] === undefined ? undefined : listenFlag(values['srs-map-listen'], '--srs-map-listen');
  const secrets = values['srs-secret-file'] === undefined ? undefined : readSecretsFile(values['srs-secret-file']);
  if (mapAddress !== undefined && secrets === undefined) throw new UsageError('--srs-map-listen needs --srs-secret-file.');
  const bodyLimitText = values['body-limit'];
  if (bodyLimitText !== undefined && !/^\d{1,10}$/.test(bodyLimitText)) throw new UsageError(`--body-limit must be a number of octets, got "${bodyLimitText}".`);
  const bodyLimit = bodyLimitText !== undefined ? Number(bodyLimitText) : values['rspamd-url'] !== undefined ? RSPAMD_BODY_LIMIT : 0;
  const now = clockFlag(values.now);
  const tenant = values.tenant;
  // Server options only when given: the servers' defaults are documented in one place.
  const limits = {
    ...optional('maxRecipients', countFlag(values['max-recipients'], '--max-recipients')),
    ...optional('maxHeaderBytes', countFlag(values['max-header-bytes'], '--max-header-bytes')),
    ...optional('maxHeaderFields', countFlag(values['max-header-fields'], '--max-header-fields')),
    ...optional('maxMacroBytes', countFlag(values['max-macro-bytes'], '--max-macro-bytes')),
  };
  const maxConnections = countFlag(values['max-connections'], '--max-connections');
  if (values['authserv-id'] !== undefined && values['auth-results-from'] === undefined) {
    throw new UsageError(
      '--authserv-id needs --auth-results-from. The milter runs on the submission listener, where the submitting client writes the whole header block, ' +
        "so an Authentication-Results field naming the inbound MX proves nothing by itself: only a designated forwarder's copy of the inbound MX's fields can be trusted. " +
        'Name the forwarders (the mailbox server that resubmits forwarded mail) with --auth-results-from <cidr|login> (docs/postfix.md).',
    );
  }
  if (values['auth-results-from'] !== undefined) {
    if (values['authserv-id'] === undefined) {
      throw new UsageError('--auth-results-from needs --authserv-id: it names whose Authentication-Results fields the forwarders hand over.');
    }
    try {
      parseForwarders(values['auth-results-from'], '--auth-results-from');
    } catch (error) {
      if (error instanceof OutboundPoolsError) throw new UsageError(error.message);
      throw error;
    }
  }
  if (values['spam-score-header'] !== undefined && values['rspamd-url'] !== undefined) {
    throw new UsageError(
      '--spam-score-header cannot be combined with --rspamd-url: a message carrying that field would skip rspamd, and on the submission listener the client can write the field itself. ' +
        'Use rspamd, or a score field that a filter before this milter writes for every client, authenticated ones included (docs/postfix.md).',
    );
  }
  if (tenant !== undefined && tenant !== 'login-domain' && tenant !== 'sender-domain') {
    throw new UsageError(`--tenant must be login-domain or sender-domain, got "${tenant}".`);
  }

  const setup = await setUp({ ...values, ...(secrets === undefined ? {} : { 'srs-secret': secrets[0] }) });
  let handler;
  try {
    handler = createPoolMilter({
      decide: setup.decide,
      bodyLimit,
      log: (line) => io.stdout(`milter: ${line}\n`),
      ...(values['authserv-id'] === undefined ? {} : { authservIds: values['authserv-id'] }),
      ...(values['auth-results-from'] === undefined ? {} : { authResultsFrom: values['auth-results-from'] }),
      ...(values['spam-score-header'] === undefined ? {} : { spamScoreHeader: values['spam-score-header'] }),
      ...(values['pool-header'] === undefined ? {} : { poolHeader: values['pool-header'] }),
      ...(tenant === undefined ? {} : { tenant }),
    });
  } catch (error) {
    if (error instanceof TypeError || error instanceof OutboundPoolsError) throw new UsageError(error.message);
    throw error;
  }
  const servers: { readonly address: string; readonly connections: number; close(): Promise<void> }[] = [];
  try {
    const milter = await started('milter', values.listen!, () =>
      startMilterServer(address, { handler, ...limits, ...optional('maxConnections', maxConnections), onError: (error, remote) => io.stderr(`milter: ${remote}: ${error.message}\n`) }),
    );
    servers.push(milter);
    io.stdout(`milter: listening on ${milter.address}\n`);
    if (mapAddress !== undefined) {
      const srsDomain = values['srs-domain'] ?? setup.policy.acceptedDomains.find((domain) => !domain.startsWith('*.'));
      if (srsDomain === undefined) throw new UsageError('--srs-map-listen needs --srs-domain (the policy has no accepted domain to use).');
      const map: SocketmapServer = await startSrsMap(
        mapAddress,
        values['srs-map-listen']!,
        { secrets: secrets!, domain: srsDomain, localDomains: setup.policy.acceptedDomains.filter((domain) => !domain.startsWith('*.')), now, maxConnections },
        io,
      );
      servers.push(map);
      io.stdout(`srs-map: listening on ${map.address}\n`);
    }
    const signal = await untilSignal();
    io.stdout(`milter: ${signal}: draining ${servers.reduce((sum, server) => sum + server.connections, 0)} connection(s)\n`);
  } finally {
    await Promise.all(servers.map((server) => server.close()));
    await setup.close();
  }
  return 0;
}
