#!/usr/bin/env node
// The `outbound-pools` command: one entry per command in COMMANDS (its summary line, its usage
// text, how to run it), read by the dispatcher, `help` and the usage text alike.

import { readFileSync } from 'node:fs';
import { closest } from './args.js';
import { OutboundPoolsError } from '../errors.js';
import { DECIDE_USAGE, EXPLAIN_USAGE, runDecide, runExplain } from './decide.js';
import { processIo, UsageError, type CliIo } from './io.js';
import { MILTER_USAGE, runMilter } from './milter.js';
import { RESTRICTED_USAGE, runRestricted } from './restricted.js';
import { runSrs, SRS_USAGE } from './srs.js';
import { runSrsMap, SRS_MAP_USAGE } from './srs-map.js';

/** A command of the tool. */
interface Command {
  /** How it is called, as the usage text lists it. */
  readonly synopsis: string;
  /** One line on what it does. */
  readonly summary: string;
  /** Its full usage text (`outbound-pools help <command>`, `<command> --help`). */
  readonly usage: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  demo: {
    synopsis: 'demo',
    summary: 'decide over the bundled example messages (offline)',
    usage: DECIDE_USAGE,
    run: (args, io) => runDecide(args, io, true),
  },
  decide: {
    synopsis: 'decide <message | directory | batch | ->...',
    summary: 'which pool each message leaves through, and why, with a summary table',
    usage: DECIDE_USAGE,
    run: runDecide,
  },
  explain: {
    synopsis: 'explain <message | ->',
    summary: 'why a message gets its pool, rule by rule',
    usage: EXPLAIN_USAGE,
    run: runExplain,
  },
  srs: {
    synopsis: 'srs forward|reverse',
    summary: 'rewrite or undo an envelope sender with SRS',
    usage: SRS_USAGE,
    run: runSrs,
  },
  milter: {
    synopsis: 'milter --listen <address>',
    summary: 'the Postfix milter daemon: decides each message at end of data',
    usage: MILTER_USAGE,
    run: runMilter,
  },
  'srs-map': {
    synopsis: 'srs-map --listen <address>',
    summary: "the SRS socketmap daemon for Postfix's canonical maps",
    usage: SRS_MAP_USAGE,
    run: runSrsMap,
  },
  restricted: {
    synopsis: 'restricted list|release|restrict',
    summary: 'the restricted senders in Redis: list them, release one, restrict one',
    usage: RESTRICTED_USAGE,
    run: runRestricted,
  },
};

function usage(): string {
  const entries = Object.values(COMMANDS);
  const width = Math.max(...entries.map((command) => command.synopsis.length), 'help [<command>]'.length) + 2;
  const line = (synopsis: string, summary: string) => `  ${synopsis.padEnd(width)}${summary}`;
  return `Usage: outbound-pools <command> [options]

Commands:
${entries.map((command) => line(command.synopsis, command.summary)).join('\n')}
${line('help [<command>]', 'this text, or the usage of one command (also: <command> --help)')}

Options:
  -h, --help            this text
  -v, --version         the version

Exit status: 0 success, 1 a message could not be read or was invalid (decide, explain), an
address could not be rewritten or verified (srs), or the sender to release was not restricted
(restricted release), 2 usage error.`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function unknownCommand(name: string): UsageError {
  return new UsageError(`unknown command "${name}" (did you mean ${closest(name, [...Object.keys(COMMANDS), 'help'])}?)`);
}

/** `help` and `help <command>`. */
function help(args: readonly string[], io: CliIo): number {
  const [name, ...extra] = args;
  if (extra.length > 0) throw new UsageError('help takes at most one command.');
  if (name === undefined || name === 'help') {
    io.stdout(`${usage()}\n`);
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, name)) throw unknownCommand(name);
  io.stdout(`${COMMANDS[name]!.usage}\n`);
  return 0;
}

/** Runs the command line `args` (without `node` and the script); returns the exit status. */
async function main(args: readonly string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = args;
  try {
    if (name === undefined) {
      io.stderr(`no command given\n${usage()}\n`);
      return 2;
    }
    if (name === '-v' || name === '--version') {
      io.stdout(`${version()}\n`);
      return 0;
    }
    if (name === '-h' || name === '--help' || name === 'help') return help(name === 'help' ? rest : [], io);
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (command === undefined) throw unknownCommand(name);
    return await command.run(rest, io);
  } catch (error) {
    // A library error that reaches here came from what the command was given (a flag's value, a
    // file): a usage error, one line and exit 2, no stack trace (docs/cli.md).
    if (!(error instanceof UsageError) && !(error instanceof OutboundPoolsError)) throw error;
    const hint = name !== undefined && Object.hasOwn(COMMANDS, name) ? `outbound-pools help ${name}` : 'outbound-pools help';
    io.stderr(`outbound-pools: ${error.message}\nTry: ${hint}\n`);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
