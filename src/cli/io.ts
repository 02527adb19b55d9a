// What a CLI command may touch, passed in so that commands can run inside tests too.

/** The streams of one CLI run. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  /** Whether stderr is a terminal (progress indicators are shown there only then, or on request). */
  readonly stderrIsTTY?: boolean;
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
};
