// `outbound-pools srs-map`: the SRS socketmap daemon for Postfix (postsrsd 2.x's `forward` and
// `reverse` maps), and the pieces the milter daemon shares with it: the secrets file, the listen
// address and the wait for SIGTERM.

import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OutboundPoolsError } from '../errors.js';
import { createPolicy } from '../policy.js';
import { parseListenAddress, type ListenAddress } from '../postfix/listener.js';
import { createSrsMaps, startSocketmapServer, type SocketmapServer } from '../postfix/socketmap.js';
import { Srs, SrsError } from '../srs/index.js';
import { UsageError, type CliIo } from './io.js';

export const SRS_MAP_USAGE = `Usage: outbound-pools srs-map --listen <address> --srs-secret-file <file> --srs-domain <domain> [options]

A socketmap server (Postfix socketmap_table(5)) with two maps, named as postsrsd 2.x names them:
  forward   the SRS address of a sender outside the local domains (NOTFOUND for a local one)
  reverse   the original sender of a valid SRS address (NOTFOUND otherwise, with the reason)
so that, in Postfix's main.cf,
  recipient_canonical_maps = socketmap:inet:127.0.0.1:10003:reverse
sends bounces addressed to SRS addresses back to the original sender (docs/postfix.md).

Options:
  --listen <address>        inet:host:port or unix:/path
  --srs-secret-file <file>  one secret a line; the first signs, all verify (postsrsd's file)
  --srs-domain <domain>     the forwarding domain SRS addresses are written in
  --policy <file.json>      its accepted domains are local: forward leaves their senders alone
  --max-connections <n>     open connections at most (default 1000); one more is closed at
                            once, and Postfix's lookup fails for now (docs/postfix.md)
  --now <time>              clock: Unix seconds or ISO 8601 (default: now; for tests)

Runs until SIGTERM or SIGINT, then finishes the requests under way and exits 0.
Exit status: 0 stopped by a signal, 2 usage error (or the address cannot be listened on).`;

const OPTIONS = {
  listen: { type: 'string' },
  'srs-secret-file': { type: 'string' },
  'srs-domain': { type: 'string' },
  policy: { type: 'string' },
  'max-connections': { type: 'string' },
  now: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses a daemon's flags strictly; a mistake is a {@link UsageError}. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The listen address of `--listen` (or another flag's `value`). */
export function listenFlag(value: string | undefined, flag = '--listen'): ListenAddress {
  if (value === undefined) throw new UsageError(`${flag} is required (inet:host:port or unix:/path).`);
  try {
    return parseListenAddress(value);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

/** The secrets of a postsrsd-style file: one a line, blank lines skipped, the first signs. */
export function readSecretsFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the SRS secrets file ${file}: ${(error as Error).message}`);
  }
  const secrets = text.split(/\r?\n/).filter((line) => line.length > 0);
  if (secrets.length === 0) throw new UsageError(`the SRS secrets file ${file} has no secret in it.`);
  return secrets;
}

/** A count flag (`--max-connections` …): a whole number of at least 1, or undefined when not given. */
export function countFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value) || Number(value) < 1) throw new UsageError(`${flag} must be a whole number of at least 1, got "${value}".`);
  return Number(value);
}

/** `--now` as milliseconds, or undefined for the real clock. */
export function clockFlag(value: string | undefined): (() => number) | undefined {
  if (value === undefined) return undefined;
  const date = /^-?\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--now must be Unix seconds or an ISO 8601 date, got "${value}".`);
  const fixed = date.getTime();
  return () => fixed;
}

/** Resolves on the first SIGTERM or SIGINT. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/** Listens, or explains why it cannot (the address is in use, the path cannot be made). */
export async function started<T>(what: string, address: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    throw new UsageError(`${what} cannot listen on ${address}: ${(error as Error).message}`);
  }
}

/** The local domains of a policy file: its accepted domains, wildcards (`*.contoso.com`) included. */
function localDomains(policyFile: string | undefined): string[] {
  if (policyFile === undefined) return [];
  let policy;
  try {
    policy = createPolicy(JSON.parse(readFileSync(policyFile, 'utf8')) as object);
  } catch (error) {
    if (error instanceof OutboundPoolsError || error instanceof SyntaxError) throw new UsageError(`the policy is invalid: ${error.message}`);
    throw new UsageError(`cannot read the policy ${policyFile}: ${(error as Error).message}`);
  }
  return [...policy.acceptedDomains];
}

/** Options of the SRS socketmap shared by `srs-map` and `milter --srs-map-listen`. */
export interface SrsMapSettings {
  readonly secrets: readonly string[];
  readonly domain: string;
  readonly localDomains: readonly string[];
  readonly now: (() => number) | undefined;
  /** Open connections at most (`--max-connections`); undefined for the server's default. */
  readonly maxConnections: number | undefined;
}

/** Starts the SRS socketmap server; errors go to stderr. */
export async function startSrsMap(address: ListenAddress, spec: string, settings: SrsMapSettings, io: CliIo): Promise<SocketmapServer> {
  let srs: Srs;
  try {
    srs = new Srs({ secrets: settings.secrets });
  } catch (error) {
    if (error instanceof SrsError) throw new UsageError(`SRS: ${error.message}`);
    throw error;
  }
  const maps = createSrsMaps({ srs, domain: settings.domain, localDomains: settings.localDomains, ...(settings.now === undefined ? {} : { now: settings.now }) });
  return started('srs-map', spec, () =>
    startSocketmapServer(address, {
      maps,
      ...(settings.maxConnections === undefined ? {} : { maxConnections: settings.maxConnections }),
      onError: (error, remote) => io.stderr(`srs-map: ${remote}: ${error.message}\n`),
    }),
  );
}

/** Runs `srs-map` until a signal; returns the exit status. */
export async function runSrsMap(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(args, OPTIONS);
  if (values.help) {
    io.stdout(`${SRS_MAP_USAGE}\n`);
    return 0;
  }
  const address = listenFlag(values.listen);
  if (values['srs-secret-file'] === undefined) throw new UsageError('--srs-secret-file is required.');
  if (values['srs-domain'] === undefined) throw new UsageError('--srs-domain is required.');
  const maxConnections = countFlag(values['max-connections'], '--max-connections');
  const server = await startSrsMap(
    address,
    values.listen!,
    {
      secrets: readSecretsFile(values['srs-secret-file']),
      domain: values['srs-domain'],
      localDomains: localDomains(values.policy),
      now: clockFlag(values.now),
      maxConnections,
    },
    io,
  );
  io.stdout(`srs-map: listening on ${server.address}\n`);
  const signal = await untilSignal();
  io.stdout(`srs-map: ${signal}: draining ${server.connections} connection(s)\n`);
  await server.close();
  return 0;
}
