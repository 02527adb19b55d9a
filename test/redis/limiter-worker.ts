// A child process for test/redis/limiter.test.ts: its own Redis rate limiter (its own
// connection), started with `node --import tsx limiter-worker.ts <mode> <json>`.
//
// - `consume {url, key, total, batch, now, messagesPerMinute}`: prints `ready`, waits for a line
//   on stdin (so that all workers start together), then makes `total` consume calls for one key,
//   `batch` at a time concurrently (Promise.all), and prints `{counted, refused, failed, ms}`.
// - `restriction {url, key, now}`: prints the restriction of `key` as JSON.
// - `tenant {url | cluster, key, tenant, cap, senders, total, batch, now}`: as `consume`, each
//   message 1 external recipient from one of `senders` sender keys (`<key>:<n>`) of the tenant,
//   whose cap is `cap` a day; prints `{counted, refused, tenantRefused, failed, ms}`. With
//   `cluster` (startup nodes) the limiter is given an ioredis Cluster client.
import { createInterface } from 'node:readline';
import { Cluster } from 'ioredis';
import { createRedisRateLimiter } from '../../src/redis/limiter.js';

const [mode, json] = process.argv.slice(2);
const args = JSON.parse(json ?? '{}') as {
  url: string;
  key: string;
  now: string;
  total?: number;
  batch?: number;
  messagesPerMinute?: number;
  cluster?: { host: string; port: number }[];
  tenant?: string;
  cap?: number;
  senders?: number;
  prefix?: string;
};
const clusterClient = args.cluster === undefined ? undefined : new Cluster(args.cluster, { redisOptions: { maxRetriesPerRequest: 1 }, slotsRefreshTimeout: 2_000 });
clusterClient?.on('error', () => {});
const limiter =
  clusterClient === undefined
    ? createRedisRateLimiter({ url: args.url, commandTimeoutMs: 20_000, ...(args.prefix === undefined ? {} : { prefix: args.prefix }) })
    : createRedisRateLimiter({ client: clusterClient, commandTimeoutMs: 20_000, ...(args.prefix === undefined ? {} : { prefix: args.prefix }) });
const now = new Date(args.now);

/** Waits for the line on stdin that starts every worker at once. */
async function go(): Promise<void> {
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once('line', () => {
      lines.close();
      process.stdin.destroy();
      resolve();
    });
  });
}

async function tenantMode(): Promise<void> {
  const total = args.total ?? 5_000;
  const batch = args.batch ?? total;
  const senders = args.senders ?? 20;
  const limits = [{ name: 'loose', messagesPerMinute: 1_000_000, recipientsPerDay: 1_000_000, action: 'block' as const }];
  const tenant = { key: args.tenant!, externalRecipientsPerDay: args.cap! };
  // Connect and load the scripts on every node before the signal.
  for (let s = 0; s < senders; s++) await limiter.restriction(`${args.key}:${s}`, now);
  await go();
  let counted = 0;
  let refused = 0;
  let tenantRefused = 0;
  let failed = 0;
  const started = performance.now();
  for (let done = 0; done < total; done += batch) {
    const size = Math.min(batch, total - done);
    const results = await Promise.allSettled(
      Array.from({ length: size }, (_, i) => limiter.consume({ key: `${args.key}:${(done + i) % senders}`, internalRecipients: 0, externalRecipients: 1, limits, tenant, now })),
    );
    for (const result of results) {
      if (result.status === 'rejected') failed += 1;
      else if (result.value.counted) counted += 1;
      else if (result.value.tenantBreach) tenantRefused += 1;
      else refused += 1;
    }
  }
  const ms = Math.round(performance.now() - started);
  process.stdout.write(`${JSON.stringify({ counted, refused, tenantRefused, failed, ms })}\n`);
}

async function consumeMode(): Promise<void> {
  const total = args.total ?? 5_000;
  const batch = args.batch ?? total;
  const limits = [{ name: 'concurrency', messagesPerMinute: args.messagesPerMinute ?? 1_000, action: 'block' as const }];
  // Connect (and load the script) before the signal: the first call waits for the connection.
  await limiter.restriction(args.key, now);
  await go();
  let counted = 0;
  let refused = 0;
  let failed = 0;
  const started = performance.now();
  for (let done = 0; done < total; done += batch) {
    const size = Math.min(batch, total - done);
    const results = await Promise.allSettled(
      Array.from({ length: size }, () => limiter.consume({ key: args.key, internalRecipients: 0, externalRecipients: 1, limits, now })),
    );
    for (const result of results) {
      if (result.status === 'rejected') failed += 1;
      else if (result.value.counted) counted += 1;
      else refused += 1;
    }
  }
  const ms = Math.round(performance.now() - started);
  process.stdout.write(`${JSON.stringify({ counted, refused, failed, ms })}\n`);
}

async function restrictionMode(): Promise<void> {
  process.stdout.write(`${JSON.stringify(await limiter.restriction(args.key, now))}\n`);
}

try {
  if (mode === 'consume') await consumeMode();
  else if (mode === 'restriction') await restrictionMode();
  else if (mode === 'tenant') await tenantMode();
  else throw new Error(`unknown mode ${mode}`);
} finally {
  await limiter.close();
  if (clusterClient !== undefined) await clusterClient.quit().catch(() => clusterClient.disconnect());
}
