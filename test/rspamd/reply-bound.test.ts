// rspamd's reply is read up to MAX_RSPAMD_REPLY_BYTES (1 MiB) and no further: a server on
// rspamd's URL that answers with an enormous reply — streamed, or announced by Content-Length —
// gets its connection dropped, and the classifier rejects with EPROTOCOL. Real HTTP servers on
// loopback that count what they managed to send.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRspamdClassifier, MAX_RSPAMD_REPLY_BYTES, RspamdError } from '../../src/rspamd/classifier.js';
import { decidePool } from '../../src/decide/gather.js';

const MESSAGE = 'From: megan@contoso.com\r\nTo: lee@example.net\r\nSubject: Hello\r\n\r\nHi.\r\n';
const PROVIDER_MESSAGE = { raw: MESSAGE, mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'] };
const NEVER = new AbortController().signal;
/** What the oversized replies would send in all: 64 times the limit, a well-formed rspamd reply padded out. */
const HUGE = 64 * MAX_RSPAMD_REPLY_BYTES;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
const HEAD = Buffer.from('{"score":1,"action":"no action","symbols":{},"pad":"');
const TAIL = Buffer.from('"}');

interface Streaming {
  readonly url: string;
  /** Bytes of the body the server wrote before it finished or the client hung up. */
  readonly sent: () => number;
  /** Resolves when the reply ended: `true` when the client hung up before the end. */
  readonly ended: Promise<boolean>;
  readonly stop: () => Promise<void>;
}

/**
 * An HTTP server that answers any request with 200 and a JSON body of `total` bytes, written
 * in 64 KiB chunks as fast as the client reads them (it waits for `drain`), announced by
 * Content-Length when `announce` is set and chunked otherwise.
 */
async function streamingServer(total: number, announce: boolean, status = 200): Promise<Streaming> {
  let sent = 0;
  let settle!: (cutShort: boolean) => void;
  const ended = new Promise<boolean>((resolve) => (settle = resolve));
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => void stream(response));
  });
  async function stream(response: ServerResponse): Promise<void> {
    let closed = false;
    response.on('close', () => {
      closed = true;
      settle(!response.writableFinished);
    });
    response.writeHead(status, { 'content-type': 'application/json', ...(announce ? { 'content-length': String(total) } : {}) });
    const write = async (bytes: Buffer) => {
      sent += bytes.length;
      if (!response.write(bytes)) await new Promise((resolve) => { response.once('drain', resolve); response.once('close', resolve); });
    };
    await write(HEAD);
    for (let left = total - HEAD.length - TAIL.length; left > 0 && !closed; left -= CHUNK.length) await write(left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left));
    if (closed) return;
    sent += TAIL.length;
    response.end(TAIL);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent: () => sent,
    ended,
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<RspamdError> {
  const error = await promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (reason: unknown) => reason,
  );
  assert.ok(error instanceof RspamdError, `expected an RspamdError, got ${String(error)}`);
  return error;
}

describe('rspamd replies larger than MAX_RSPAMD_REPLY_BYTES are cut off unread', () => {
  it('is 1 MiB', () => {
    assert.equal(MAX_RSPAMD_REPLY_BYTES, 1_048_576);
  });

  for (const announce of [false, true]) {
    const how = announce ? 'announced by Content-Length' : 'streamed without a length';
    it(`a 64 MiB reply ${how} is refused with EPROTOCOL, and the connection is dropped long before its end`, async () => {
      const server = await streamingServer(HUGE, announce);
      try {
        const error = await rejection(createRspamdClassifier({ url: server.url }).classify(PROVIDER_MESSAGE, NEVER));
        assert.equal(error.code, 'EPROTOCOL', error.message);
        assert.match(error.message, /larger than 1048576 bytes/);
        assert.equal(await server.ended, true, 'the server finished sending the whole reply');
        // What the server wrote before the hang-up: the limit, plus what the socket buffers held.
        assert.ok(server.sent() < 16 * MAX_RSPAMD_REPLY_BYTES, `the server sent ${server.sent()} of ${HUGE} bytes`);
      } finally {
        await server.stop();
      }
    });
  }

  it('a reply of exactly the limit is read and mapped', async () => {
    const server = await streamingServer(MAX_RSPAMD_REPLY_BYTES, false);
    try {
      assert.deepEqual(await createRspamdClassifier({ url: server.url }).classify(PROVIDER_MESSAGE, NEVER), { score: 1, isSpam: false });
    } finally {
      await server.stop();
    }
  });

  it('an oversized reply with a status other than 200 is still EHTTP, with the status', async () => {
    const server = await streamingServer(HUGE, false, 502);
    try {
      const error = await rejection(createRspamdClassifier({ url: server.url }).classify(PROVIDER_MESSAGE, NEVER));
      assert.equal(error.code, 'EHTTP');
      assert.equal(error.status, 502);
      assert.equal(await server.ended, true);
    } finally {
      await server.stop();
    }
  });

  it('through decidePool, an oversized reply is a provider failure that quotes the limit', async () => {
    const server = await streamingServer(HUGE, false);
    try {
      const decision = await decidePool(
        { mailFrom: 'megan@contoso.com', rcptTo: ['lee@example.net'], headers: MESSAGE },
        { policy: { acceptedDomains: ['contoso.com'], spam: { threshold: 6 } }, providers: { spam: createRspamdClassifier({ url: server.url }) } },
      );
      const failed = decision.reasons.find((reason) => reason.code === 'provider-failed');
      assert.ok(failed !== undefined, JSON.stringify(decision.reasons));
      assert.match(failed.message, /EPROTOCOL: rspamd's reply is larger than 1048576 bytes/);
    } finally {
      await server.stop();
    }
  });
});
