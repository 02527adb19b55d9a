// The Perl and Python SRS peers as long-running child processes: one request per JSON line on
// stdin, one answer per line on stdout, answered in order (see mail-srs.pl and pysrs.py).
// Spawning one process per address would cost more than the whole comparison, so a whole batch
// is written at once and the answers are matched to the requests first-in, first-out.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type Separator = '=' | '+' | '-';

/** The SRS options both drivers understand; `now` is their fixed clock in Unix seconds. */
export interface PeerConfig {
  readonly secret: readonly string[];
  readonly separator: Separator;
  readonly hashLength: number;
  readonly hashMin: number;
  readonly now: number;
}

export type PeerRequest =
  | (PeerConfig & { readonly op: 'forward'; readonly address: string; readonly alias: string })
  | (PeerConfig & { readonly op: 'reverse'; readonly address: string });

/** What a peer answered: its result, or the message it failed with. */
export type PeerReply = { readonly ok: true; readonly result: string } | { readonly ok: false; readonly error: string };

/** The peers that run as line drivers, with how to start them and how to install them. */
export const LINE_PEERS = {
  'Mail::SRS': {
    // Debian's libmail-srs-perl installs into the system perl; a perlbrew or plenv perl earlier
    // on PATH would not see it.
    command: '/usr/bin/perl',
    driver: fileURLToPath(new URL('mail-srs.pl', import.meta.url)),
    probe: ['-MMail::SRS', '-e', 'exit 0'],
    install: 'apt-get install libmail-srs-perl',
  },
  pysrs: {
    // python3-srs installs into /usr/lib/python3/dist-packages, which only the system Python
    // reads; a pyenv python3 earlier on PATH cannot import SRS.
    command: '/usr/bin/python3',
    driver: fileURLToPath(new URL('pysrs.py', import.meta.url)),
    probe: ['-c', 'import SRS.Guarded'],
    install: 'apt-get install python3-srs',
  },
} as const;

export type LinePeerName = keyof typeof LINE_PEERS;

/**
 * Why a peer cannot run, naming the Debian package that provides it, or null when it is
 * installed. The interop test fails on such a machine; it must never pass by skipping a peer.
 */
export function linePeerMissing(name: LinePeerName): Error | null {
  const peer = LINE_PEERS[name];
  const probe = spawnSync(peer.command, peer.probe, { encoding: 'utf8' });
  if (probe.status === 0) return null;
  const why = probe.error?.message ?? probe.stderr.trim();
  const hint = `${name} not found: install it with \`${peer.install}\` (or run scripts/install-peers.sh).`;
  return new Error(`${hint}\n${peer.command} ${peer.probe.join(' ')}: ${why}`);
}

/** How much of a driver's stderr to keep for the error message when it dies. */
const STDERR_TAIL = 4096;

export class LineDriver {
  readonly name: LinePeerName;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending: { resolve: (reply: PeerReply) => void; reject: (error: Error) => void }[] = [];
  #stderr = '';
  #exited: Error | null = null;

  private constructor(name: LinePeerName) {
    const peer = LINE_PEERS[name];
    this.name = name;
    this.#child = spawn(peer.command, [peer.driver], { stdio: ['pipe', 'pipe', 'pipe'] });
    // Drained so that the driver never blocks on a full pipe; Mail::SRS and pysrs warn on
    // stderr for every case-insensitive hash match.
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL);
    });
    createInterface({ input: this.#child.stdout, crlfDelay: Infinity }).on('line', (line) => this.#answer(line));
    this.#child.on('error', (error) => this.#fail(error));
    this.#child.on('exit', (code, signal) => this.#fail(new Error(`exited with ${signal ?? `code ${code}`}`)));
  }

  /** Starts a driver; check {@link linePeerMissing} first for a helpful error. */
  static start(name: LinePeerName): LineDriver {
    return new LineDriver(name);
  }

  #answer(line: string): void {
    const waiter = this.#pending.shift();
    if (waiter === undefined) {
      this.#fail(new Error(`answered without a request: ${line}`));
      return;
    }
    waiter.resolve(JSON.parse(line) as PeerReply);
  }

  #fail(cause: Error): void {
    this.#exited ??= new Error(`${this.name} driver failed: ${cause.message}\n${this.#stderr}`);
    for (const waiter of this.#pending.splice(0)) waiter.reject(this.#exited);
  }

  /** Sends every request at once and resolves with the answers in the same order. */
  requestAll(requests: readonly PeerRequest[]): Promise<PeerReply[]> {
    if (this.#exited !== null) return Promise.reject(this.#exited);
    const replies = requests.map(
      (request) =>
        new Promise<PeerReply>((resolve, reject) => {
          this.#pending.push({ resolve, reject });
          this.#child.stdin.write(`${JSON.stringify(request)}\n`);
        }),
    );
    return Promise.all(replies);
  }

  request(request: PeerRequest): Promise<PeerReply> {
    return this.requestAll([request]).then((replies) => replies[0]!);
  }

  /** Ends the driver: closing stdin ends its read loop; the kill covers a hung one. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}
