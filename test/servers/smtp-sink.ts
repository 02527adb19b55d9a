// A sink SMTP server on loopback for the integration tests: accepts every message and records,
// for each delivery, the client address it came from, the envelope and the message.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One message the sink received. */
export interface SinkDelivery {
  /** The source address of the client's TCP connection: which pool's address sent it. */
  readonly clientAddress: string;
  readonly helo: string;
  /** The envelope sender; '' for the null sender. */
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly message: string;
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  readonly deliveries: readonly SinkDelivery[];
  /** Resolves when `count` messages have arrived in all (or rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<readonly SinkDelivery[]>;
  stop(): Promise<void>;
}

/** Options of {@link startSmtpSink}. */
export interface SmtpSinkOptions {
  /** Recipients refused with 550 at RCPT TO (to make the sending MTA bounce). Default: none. */
  readonly rejectRecipient?: (address: string) => boolean;
}

/** Starts the sink on 127.0.0.1 at a free port (or `port`). */
export async function startSmtpSink(port = 0, options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const deliveries: SinkDelivery[] = [];
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (options.rejectRecipient?.(address.address) === true) {
        return callback(Object.assign(new Error('5.1.1 Recipient refused by the sink'), { responseCode: 550 }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        deliveries.push({
          clientAddress: session.remoteAddress.replace(/^::ffff:/, ''),
          helo: session.hostNameAppearsAs,
          mailFrom: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          message: Buffer.concat(chunks).toString('utf8'),
        });
        for (const wake of waiters.splice(0)) wake();
        callback();
      });
    },
  });
  // smtp-server re-emits a listen error (EADDRINUSE, EACCES) on itself: fail with it, not hang.
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => reject(new Error(`the SMTP sink cannot listen on 127.0.0.1:${port}: ${error.message}`));
    server.once('error', failed);
    server.server.once('listening', () => {
      server.off('error', failed);
      resolve();
    });
    server.listen(port, '127.0.0.1');
  });
  const address = server.server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port: address.port,
    deliveries,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (deliveries.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`the sink received ${deliveries.length} of ${count} messages within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return deliveries;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
