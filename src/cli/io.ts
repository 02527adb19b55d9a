// What a CLI command may touch, passed in so that commands can run inside tests too.

import { once } from 'node:events';

/** The streams of one CLI run. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** All of standard input as text (`srs … -` reads addresses this way). */
  readStdin(): Promise<string>;
  /** Standard input as it arrives, chunk by chunk (`decide -` reads a batch this way). */
  stdin(): AsyncIterable<Uint8Array>;
  /**
   * Resolves once what was written to stdout has been taken by the reader, when it has fallen
   * behind; undefined when it has not. Awaited between decisions, so that a slow reader holds
   * back the run instead of piling output up in memory.
   */
  drained?(): Promise<void> | undefined;
  /** Whether stderr is a terminal (progress indicators are shown there only then, or on request). */
  readonly stderrIsTTY?: boolean;
  /** Whether stdout is a terminal too (the progress line is then cleared before output). */
  readonly stdoutIsTTY?: boolean;
  /** A monotonic clock in milliseconds, for progress rates (default: performance.now). */
  now?(): number;
}

/** A mistake in the command line itself: printed with the usage hint, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

let pipeWatched = false;

/** A reader that goes away (`outbound-pools demo | head`) ends the run quietly, not with an EPIPE trace. */
function watchPipe(): void {
  if (pipeWatched) return;
  pipeWatched = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}

/** The process's own streams. */
export const processIo: CliIo = {
  stderrIsTTY: process.stderr.isTTY === true,
  stdoutIsTTY: process.stdout.isTTY === true,
  stdout: (text) => {
    watchPipe();
    process.stdout.write(text);
  },
  stderr: (text) => process.stderr.write(text),
  async readStdin() {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  stdin: () => process.stdin,
  drained: () => (process.stdout.writableNeedDrain ? once(process.stdout, 'drain').then(() => undefined) : undefined),
  now: () => performance.now(),
};
