#!/usr/bin/env node
// The `outbound-pools` command.

import { readFileSync } from 'node:fs';
import { processIo, UsageError, type CliIo } from './io.js';
import { runDecide, runExplain } from './decide.js';
import { runSrs } from './srs.js';
import { runMilter } from './milter.js';
import { runSrsMap } from './srs-map.js';

const USAGE = `Usage: outbound-pools <command> [options]

Commands:
  demo                  decide over the bundled example messages (offline)
  decide <file.eml | directory | batch.jsonl>...
                        which pool each message leaves through, and why, with a summary
                        table (outbound-pools decide --help)
  explain <file.eml>    why a message gets its pool, rule by rule (outbound-pools explain --help)
  srs forward|reverse   rewrite or undo an envelope sender with SRS (outbound-pools srs --help)
  milter                the Postfix milter daemon (outbound-pools milter --help)
  srs-map               the SRS socketmap daemon for Postfix (outbound-pools srs-map --help)

Options:
  -h, --help            this text
  -v, --version         the version

Exit status: 0 success, 1 a message could not be read or was invalid (decide, explain) or an
address could not be rewritten or verified (srs), 2 usage error.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs the command line `args` (without `node` and the script); returns the exit status. */
async function main(args: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case 'srs':
        return await runSrs(rest, io);
      case 'decide':
        return await runDecide(rest, io);
      case 'explain':
        return await runExplain(rest, io);
      case 'milter':
        return await runMilter(rest, io);
      case 'srs-map':
        return await runSrsMap(rest, io);
      case 'demo':
        return await runDecide(rest, io, true);
      case '-v':
      case '--version':
        io.stdout(`${version()}\n`);
        return 0;
      case '-h':
      case '--help':
        io.stdout(`${USAGE}\n`);
        return 0;
      default:
        io.stderr(`${command === undefined ? 'no command given' : `unknown command "${command}"`}\n${USAGE}\n`);
        return 2;
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`outbound-pools: ${error.message}\nTry: outbound-pools ${command ?? ''} --help\n`);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
