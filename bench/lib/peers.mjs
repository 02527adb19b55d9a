// Another language's SRS library as a bench case. The peer runs as a long-lived child
// process that times itself (so interpreter start-up and the pipe are not in the number)
// and answers one timed round per request, which lets its rounds interleave with the
// in-process cases like any other case.
// Protocol: argv[1] is the address file; the peer round-trips every address, prints
// {"ready":true}, then for each stdin line "<seconds>" prints {"opsPerSec":N}.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const script = (name) => fileURLToPath(new URL(`../peers/${name}`, import.meta.url));

export const PEERS = [
  { name: 'Mail::SRS (Perl)', command: 'perl', script: script('mail-srs-bench.pl') },
  // Debian's python3-srs is only importable by the system interpreter, not a pyenv one on PATH.
  { name: 'pysrs (Python)', command: '/usr/bin/python3', script: script('pysrs-bench.py') },
];

/**
 * Rejects if the peer cannot start or its round-trip check fails: peers are optional
 * system packages, so the caller reports them as not measured instead of aborting.
 * @returns {Promise<{ name: string, run: (ms: number) => Promise<number>, close: () => void }>}
 */
export async function startPeer(peer, addressFile) {
  const child = spawn(peer.command, [peer.script, addressFile], { stdio: ['pipe', 'pipe', 'pipe'] });
  // Not events.once: that would also reject on a spawn 'error', unhandled if nobody awaits it.
  const closed = new Promise((resolve) => child.on('close', resolve));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const spawned = Promise.race([once(child, 'spawn'), once(child, 'error').then(([err]) => Promise.reject(err))]);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) {
      await closed;
      throw new Error(stderr.trim().split('\n').pop() || `${peer.command} exited with ${child.exitCode}`);
    }
    return JSON.parse(value);
  };

  await spawned;
  await next();
  return {
    name: peer.name,
    async run(ms) {
      child.stdin.write(`${ms / 1000}\n`);
      return (await next()).opsPerSec;
    },
    close: () => child.stdin.end(),
  };
}
