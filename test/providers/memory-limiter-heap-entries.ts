// Run by memory-limiter.test.ts in a child process started with --expose-gc: how many bytes the
// memory limiter keeps per tenant (its external recipients over 24 h), per released sender
// remembered as immune, and per sender's spam reports. Prints one JSON line: { what, entries,
// bytesPerEntry }.
// Each figure is the growth of the heap after a full collection between the first and the second
// half of the entries, divided by the entries of the second half: the slope, so that the LRU
// tables sized up front and the warm-up cancel out. The keys are fresh strings of realistic
// length, counted with the entry.
// Arguments: <tenant-one-bucket | tenant-full-day | immune | sender | spam-sender | sliced-…> <entries>; one figure a
// process, so that no measurement sees another's garbage.
import { decidePool } from '../../src/decide/gather.js';
import { createPolicy } from '../../src/policy.js';
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';

const what = process.argv[2];
const entries = Number(process.argv[3] ?? '20000');
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function heapUsed(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

const base = Date.parse('2026-11-23T09:00:00.000Z');
const BUCKET = 1_440_000; // a bucket of the 24 h window
const tenantKey = (i: number): string => `tenant-${i.toString(36)}.onmicrosoft.example`;

/** Heap growth per entry over the second half of `add(0 … entries − 1)`. */
function slope(add: (i: number) => void): number {
  const half = Math.floor(entries / 2);
  for (let i = 0; i < half; i++) add(i);
  const before = heapUsed();
  for (let i = half; i < entries; i++) add(i);
  return (heapUsed() - before) / (entries - half);
}

/** Bytes per tenant, with `buckets` buckets (a message every 24 minutes) of its 24 h window. */
function perTenant(buckets: number): number {
  const limiter = createMemoryRateLimiter({ maxSenders: 10, maxTenants: entries });
  const sender = 'relay@fabrikam.example';
  const bytes = slope((i) => {
    const tenant = { key: tenantKey(i), externalRecipientsPerDay: 1_000_000 };
    for (let b = 0; b < buckets; b++) {
      limiter.consumeSync({ key: sender, internalRecipients: 0, externalRecipients: 2, limits: [], tenant, now: new Date(base + b * BUCKET) });
    }
  });
  if (limiter.stats().tenants !== entries) throw new Error('tenants were not kept');
  return bytes;
}

/** Bytes per released sender remembered as immune (its restriction gone). */
function perImmune(): number {
  const limiter = createMemoryRateLimiter({ maxSenders: 10, maxRestricted: entries, maxImmune: entries });
  const bytes = slope((i) => {
    const key = `user${i}@fabrikam.example`;
    void limiter.restrict(key, { now: new Date(base) });
    void limiter.release(key, new Date(base + 1));
  });
  const { immune, restrictions } = limiter.stats();
  if (immune !== entries || restrictions !== 0) throw new Error(`expected ${entries} immune and no restriction, got ${immune} and ${restrictions}`);
  return bytes;
}

/**
 * Bytes per sender that has sent one message, and (`reports`) had two spam reports with their
 * ids: the difference of the two figures is what the reports cost.
 */
function perSender(reports: boolean): number {
  const restrictAfter = { count: 1_000, window: 'hour', action: 'block-user' } as const;
  const limiter = createMemoryRateLimiter({ maxSenders: entries });
  return slope((i) => {
    const key = `user${i}@fabrikam.example`;
    limiter.consumeSync({ key, internalRecipients: 0, externalRecipients: 1, limits: [], now: new Date(base) });
    if (!reports) return;
    limiter.reportSpamSync({ key, messageId: `<${i}.a@mail.fabrikam.example>`, restrictAfter, now: new Date(base) });
    limiter.reportSpamSync({ key, messageId: `<${i}.b@mail.fabrikam.example>`, restrictAfter, now: new Date(base + 60_000) });
  });
}

/** A copy of `text` that V8 keeps as a slice of a 16 KB string: it holds the whole parent alive. */
function sliceOfLarge(text: string, i: number): string {
  const parent = `${text}${'x'.repeat(16_384)}${i}`;
  return parent.slice(0, text.length);
}

/**
 * Bytes per sender (and its tenant) counted through decidePool when the message's mailFrom,
 * submitter and tenant are slices of 16 KB strings the caller then drops: the limiter must keep
 * copies, not the slices (each would keep its 16 KB parent).
 */
async function perSlicedSender(field: 'mailFrom' | 'submitter' | 'tenant' | 'limiter'): Promise<number> {
  const limiter = createMemoryRateLimiter({ maxSenders: entries, maxTenants: entries });
  const policy = createPolicy({ acceptedDomains: ['fabrikam.example'], tenantLimits: { externalRecipientsPerDay: 1_000_000 } });
  const half = Math.floor(entries / 2);
  const add = async (i: number): Promise<void> => {
    const address = `user${i}@fabrikam.example`;
    if (field === 'limiter') {
      limiter.consumeSync({ key: sliceOfLarge(address, i), internalRecipients: 0, externalRecipients: 1, limits: [], now: new Date(base) });
      return;
    }
    await decidePool(
      {
        mailFrom: field === 'mailFrom' ? sliceOfLarge(address, i) : address,
        rcptTo: ['someone@example.net'],
        ...(field === 'submitter' ? { submitter: sliceOfLarge(`login-${i}`, i) } : {}),
        tenant: field === 'tenant' ? sliceOfLarge(`tenant-${i}.example`, i) : `tenant-${i}.example`,
      },
      { policy, providers: { rateLimiter: limiter }, now: new Date(base) },
    );
  };
  for (let i = 0; i < half; i++) await add(i);
  const before = heapUsed();
  for (let i = half; i < entries; i++) await add(i);
  return (heapUsed() - before) / (entries - half);
}

const measures: Record<string, () => number | Promise<number>> = {
  'tenant-one-bucket': () => perTenant(1),
  'tenant-full-day': () => perTenant(60),
  immune: perImmune,
  sender: () => perSender(false),
  'spam-sender': () => perSender(true),
  'sliced-mail-from': () => perSlicedSender('mailFrom'),
  'sliced-submitter': () => perSlicedSender('submitter'),
  'sliced-tenant': () => perSlicedSender('tenant'),
  'sliced-limiter-key': () => perSlicedSender('limiter'),
};
const measure = what === undefined ? undefined : measures[what];
if (measure === undefined) throw new Error(`measure one of ${Object.keys(measures).join(', ')}`);
console.log(JSON.stringify({ what, entries, bytesPerEntry: await measure() }));
