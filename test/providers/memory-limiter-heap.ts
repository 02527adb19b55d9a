// Run by memory-limiter.test.ts in a child process started with --expose-gc: how many bytes the
// memory limiter keeps per remembered Message-ID when each id is a slice of a large header
// block, as the decision hands it over. Prints one JSON line: { ids, senders, bytesPerId,
// retryRecognised }. bytesPerId is the growth of the heap after a full collection between the
// first and the second half of the senders, divided by the ids of the second half: the slope,
// so that whatever the last message leaves behind (a 1 MB block) cancels out.
// Arguments: <header block size in bytes> <senders> <ids per sender> [decide]
// With `decide`, the messages go through decidePool with their whole header block, so that the
// parse of the header block is in the path too.
import { createMemoryRateLimiter } from '../../src/providers/memory-limiter.js';
import { decidePool } from '../../src/decide/gather.js';

const [sizeArg, sendersArg, idsArg, mode] = process.argv.slice(2);
const size = Number(sizeArg);
const senders = Number(sendersArg);
const idsPerSender = Number(idsArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function heapUsed(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

/** A fresh, flat header block of about `size` bytes whose Message-ID field holds `id`. */
function headerBlock(id: string, n: number): string {
  const parts = [`Message-ID: ${id}\r\n`, `Subject: message ${n}\r\n`];
  let length = parts[0]!.length + parts[1]!.length;
  for (let i = 0; length < size; i++) {
    const line = `X-Filler-${i}: ${n.toString(36)}-${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}\r\n`;
    parts.push(line);
    length += line.length;
  }
  return parts.join('') + '\r\n';
}

const limiter = createMemoryRateLimiter({ maxSenders: senders, maxMessageIdsPerSender: idsPerSender });
const limits = [{ name: 'none', action: 'alert' as const, messagesPerMinute: 1_000_000 }];
const base = Date.parse('2026-11-23T09:00:00.000Z');
// Warm up the code paths and the limiter's own structures with one sender, then measure.
limiter.consumeSync({ key: 'warm-up', messageId: 'warm-up-id', internalRecipients: 0, externalRecipients: 1, limits, now: new Date(base) });
let before = 0;
let idsBefore = 0;
let n = 0;
for (let s = 0; s < senders; s++) {
  if (s === Math.floor(senders / 2)) {
    before = heapUsed();
    idsBefore = n;
  }
  for (let k = 0; k < idsPerSender; k++, n++) {
    const id = `<${n}.${s}.${k}.f3a9c1e7@mail-${s % 97}.fabrikam.example>`;
    const block = headerBlock(id, n);
    const now = new Date(base + n);
    if (mode === 'decide') {
      await decidePool(
        { mailFrom: `user${s}@fabrikam.example`, rcptTo: ['lee@northwind.example'], headers: block },
        { policy: { acceptedDomains: ['fabrikam.example'], limits }, providers: { rateLimiter: limiter }, now },
      );
    } else {
      // The id as the header parser hands it over: a slice of the block (V8 keeps the parent).
      const start = block.indexOf('<');
      const messageId = block.slice(start, block.indexOf('>', start) + 1);
      limiter.consumeSync({ key: `user${s}@fabrikam.example`, messageId, internalRecipients: 0, externalRecipients: 1, limits, now });
    }
  }
}
const after = heapUsed();
// The retry of the first id must still be recognised: the ids were remembered, not dropped.
const first = `<0.0.0.f3a9c1e7@mail-0.fabrikam.example>`;
const retry = limiter.consumeSync({ key: 'user0@fabrikam.example', messageId: first, internalRecipients: 0, externalRecipients: 1, limits, now: new Date(base + n) });
console.log(JSON.stringify({ ids: n, senders: limiter.stats().senders, bytesPerId: (after - before) / (n - idsBefore), retryRecognised: retry.counted && idsPerSender > 0 }));
