// A small custom MTA built on outbound-pools: it receives mail over SMTP, asks the library which
// delivery pool each message leaves through, and relays it to one next hop from that pool's own
// source address. It shows the embedding of docs/architecture.md ("Embedding") end to end:
//
//   client ──SMTP──▶ relay MTA (smtp-server) ──decide──▶ deliver from the pool's address (nodemailer)
//                                                  └──▶ or refuse with the decision's reply
//
// It is an example, not a mail server: no queue (a message is accepted only once the next hop
// took it, so the client keeps the retry duty), one next hop instead of MX lookups, no TLS, and
// it relays for anyone who can reach 127.0.0.1.

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createTransport } from 'nodemailer';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import {
  createDecider,
  formatTrace,
  OutboundPoolsError,
  SrsError,
  TRACE_HEADER,
  type Decision,
  type DeliverDecision,
  type OutboundMessage,
  type Policy,
  type PolicyInput,
  type Pool,
  type Providers,
  type Srs,
} from '../../src/index.js';

/** Options of {@link startRelayMta}. */
export interface RelayMtaOptions {
  /** The routing policy: accepted domains, spam threshold, limits … */
  readonly policy: PolicyInput | Policy;
  /** Verdict providers (DNS, spam classifier, authenticator, rate limiter); all optional. */
  readonly providers?: Providers;
  /**
   * SRS: verified forwards leave with an envelope sender rewritten into `domain`, and bounces
   * that come back to such an address are reversed and relayed to the original sender.
   */
  readonly srs?: { readonly rewriter: Srs; readonly domain: string };
  /** The next hop every message is relayed to (a smarthost; a sink in the tests). */
  readonly relayHost: string;
  readonly relayPort: number;
  /** The source IP address of each pool: outbound connections bind to it. */
  readonly poolAddresses: Readonly<Record<Pool, string>>;
  /** The EHLO name of each pool; default `<pool>.pool.localhost`. Should match the address's PTR. */
  readonly poolHelo?: Readonly<Partial<Record<Pool, string>>>;
  /**
   * Checks SMTP AUTH credentials; the user name becomes the message's `submitter` (the key for
   * sending limits). Without it, AUTH is not offered.
   */
  readonly authenticate?: (username: string, password: string) => boolean | Promise<boolean>;
  /** The port to listen on, on 127.0.0.1; default 0 (a free port). */
  readonly port?: number;
  /** Largest message accepted, in bytes; default 25 MiB. */
  readonly maxMessageBytes?: number;
}

/** A running relay MTA. */
export interface RelayMta {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Stops accepting connections and waits for open sessions to end. */
  stop(): Promise<void>;
}

const POOLS: readonly Pool[] = ['normal', 'high-risk', 'relay'];

/** An error smtp-server turns into the reply `code text`. */
function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

/** The domain of an address, lowercased (SRS addresses are ASCII on the right of the `@`). */
function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/**
 * Starts the relay MTA on 127.0.0.1. Each message is decided at the end of DATA with the
 * envelope, the whole message, the client's IP and HELO, and the SMTP AUTH user; then
 * - `deliver`: relayed from the pool's source address with `decision.mailFrom` as the envelope
 *   sender (SRS-rewritten for verified forwards) and an `X-Outbound-Pool` trace header; the
 *   client gets 250 only once the next hop accepted it, 451 otherwise;
 * - `block` / `defer`: refused with the decision's reply.
 *
 * A recipient that is an SRS address of `options.srs.domain` is a bounce coming back: it is
 * reversed at RCPT (refused with 550 5.1.1 when forged or expired) and relayed to the original
 * sender.
 */
export async function startRelayMta(options: RelayMtaOptions): Promise<RelayMta> {
  const { srs, authenticate } = options;
  // One decider for the life of the MTA: the policy and providers are checked once, here, so a
  // wrong setting fails at start-up instead of on the first message.
  const decide = createDecider({
    policy: options.policy,
    ...(options.providers === undefined ? {} : { providers: options.providers }),
    ...(srs === undefined ? {} : { srs }),
  });

  // One transport per pool: a pool *is* its source address (and the EHLO name that goes with
  // it), which is what receivers judge the reputation of.
  const transports = new Map(
    POOLS.map((pool) => [
      pool,
      createTransport({
        host: options.relayHost,
        port: options.relayPort,
        secure: false,
        ignoreTLS: true,
        localAddress: options.poolAddresses[pool],
        name: options.poolHelo?.[pool] ?? `${pool}.pool.localhost`,
      }),
    ]),
  );

  // The original addresses of the SRS recipients accepted at RCPT, keyed by the address object
  // smtp-server keeps in the session's envelope: DATA relays to these instead.
  const reversedRecipients = new WeakMap<SMTPServerAddress, string>();

  /** Relays a message the decision sends on, from its pool's address. */
  async function relay(decision: DeliverDecision, recipients: readonly string[], message: Buffer): Promise<void> {
    // The trace goes on top, like a Received field: it records what this hop decided.
    const trace = Buffer.from(`${TRACE_HEADER}: ${formatTrace(decision)}\r\n`, 'ascii');
    await transports.get(decision.pool)!.sendMail({
      // The envelope is given explicitly: nodemailer must not derive it from the header
      // From/To. `decision.mailFrom` is '' for the null sender of bounces, sent as MAIL FROM:<>.
      envelope: { from: decision.mailFrom, to: [...recipients] },
      raw: Buffer.concat([trace, message]),
    });
  }

  const server = new SMTPServer({
    logger: false,
    // The decision uses the client's IP and HELO, never its reverse DNS name: skip the lookup.
    disableReverseLookup: true,
    // No TLS in this example; AUTH over plain text is acceptable only because it listens on loopback.
    disabledCommands: authenticate === undefined ? ['STARTTLS', 'AUTH'] : ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    size: options.maxMessageBytes ?? 25 * 1024 * 1024,
    // Replies carry the decision's own enhanced status code in their text: smtp-server must not
    // add a generic one in front of it.
    hideENHANCEDSTATUSCODES: true,

    onAuth(auth, _session, callback) {
      const { username = '', password } = auth;
      Promise.resolve(authenticate !== undefined && typeof password === 'string' && authenticate(username, password)).then(
        (ok) => callback(null, ok ? { user: username } : {}),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    },

    onRcptTo(address, _session, callback) {
      // A bounce to an address this MTA issued when it forwarded with SRS: undo the rewriting
      // here, at RCPT, so that a forged or expired address is refused before any data is sent
      // (backscatter protection: only addresses with a valid hash and age are relayed).
      if (srs !== undefined && domainOf(address.address) === srs.domain.toLowerCase() && srs.rewriter.isSrs(address.address)) {
        try {
          reversedRecipients.set(address, srs.rewriter.reverse(address.address));
        } catch (error) {
          // reverse() throws SrsError only: bad hash, expired, malformed … all mean "no such mailbox".
          const why = error instanceof SrsError ? error.code : String(error);
          return callback(smtpError(550, `5.1.1 <${address.address}>: invalid or expired SRS address (${why})`));
        }
      }
      callback();
    },

    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        // The message is read to the end before refusing it: the client only listens for the
        // reply after the final dot.
        if (stream.sizeExceeded) return callback(smtpError(552, '5.3.4 Message too big'));
        handle(session, Buffer.concat(chunks)).then(
          (text) => callback(null, text),
          (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
        );
      });
    },
  });

  /** Decides a complete message and acts on the decision; resolves with the 250 text or rejects with the SMTP error. */
  async function handle(session: SMTPServerSession, message: Buffer): Promise<string> {
    const { mailFrom, rcptTo } = session.envelope;
    const recipients = rcptTo.map((rcpt) => reversedRecipients.get(rcpt) ?? rcpt.address);
    // smtp-server reports the null sender `<>` as an empty address; the library takes '' for it
    // too, and decides such a message is an NDR (rule 4: high-risk pool).
    const outbound: OutboundMessage = {
      mailFrom: mailFrom === false ? '' : mailFrom.address,
      rcptTo: recipients,
      // The whole message: the decision reads the header (multipart/report DSNs, From,
      // Message-ID) and providers such as spam classifiers may read the body.
      headers: message,
      queueId: session.id,
      // How it reached us: authenticators check SPF for this IP and HELO.
      ingress: { ip: session.remoteAddress.replace(/^::ffff:/, ''), helo: session.hostNameAppearsAs },
      // The authenticated account, when there is one, is the key for sending limits.
      ...(typeof session.user === 'string' ? { submitter: session.user } : {}),
    };

    let decision: Decision;
    try {
      decision = await decide(outbound);
    } catch (error) {
      // The library throws only for input it cannot route (e.g. an address that is not RFC
      // 5321): a permanent refusal. Anything else is a fault of ours: try again later.
      if (error instanceof OutboundPoolsError) throw smtpError(550, `5.6.0 ${error.message}`);
      throw smtpError(451, '4.3.0 Internal error, try again later');
    }

    if (decision.action !== 'deliver') {
      // Blocked (restricted sender, per-message or sending limits) or deferred (a provider or
      // DNS failed and the policy prefers waiting): the decision already chose the reply, 5xx
      // or 4xx, with its enhanced status code.
      const { code, enhancedCode, text } = decision.reply;
      throw smtpError(code, `${enhancedCode} ${text}`);
    }

    try {
      await relay(decision, recipients, message);
    } catch (error) {
      // Without a queue, the client keeps the message: a temporary failure makes it retry.
      throw smtpError(451, `4.4.1 Next hop did not take the message: ${error instanceof Error ? error.message : String(error)}`);
    }
    return `2.0.0 Relayed via the ${decision.pool} pool (${decision.poolName})`;
  }

  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server.server, 'listening');
  return {
    port: (server.server.address() as AddressInfo).port,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const transport of transports.values()) transport.close();
    },
  };
}
