// The built `outbound-pools` bin in a child process, spawned asynchronously (the servers' helpers
// live in the test process), for the CLI tests that talk to real servers.
import { spawn } from 'node:child_process';

export const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

/** What a run printed, and its exit status. */
export interface BinResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `outbound-pools args…`; rejects when it has not exited within `timeoutMs` (killed then). */
export function runBin(args: readonly string[], timeoutMs = 30_000): Promise<BinResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // The command must end by itself: providers closed, no handle left open.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`outbound-pools ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
