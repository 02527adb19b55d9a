// The milter session state machine: one per MTA connection. It negotiates options, keeps the
// connection's and the message's macros, collects the envelope, the header and as much of the
// body as its handler asks for, and at end of message turns the handler's verdict into responses.
// It does no I/O: the server feeds it decoded commands and writes back what it returns.
//
// The order of a conversation (milter-protocol.txt, "A TYPICAL MILTER CONVERSATION"):
//   OPTNEG, then per SMTP session CONNECT, HELO*, then per message MAIL, RCPT+, DATA, HEADER*,
//   EOH, BODY*, BODYEOB; ABORT ends a message early, QUIT the connection, QUIT_NC the SMTP
//   session (a new CONNECT follows on the same connection). SMFIC_MACRO may precede any of them.

import { MILTER_VERSION, respond, SMFIC, SMFIF, SMFIP, type ConnectFamily, type MilterCommand, type SymbolLists } from './commands.js';
import { wholeNumberOption } from '../options.js';
import { MilterProtocolError } from './packet.js';

/** Where the SMTP client connected from (SMFIC_CONNECT). */
export interface MilterClient {
  readonly hostname: string;
  readonly family: ConnectFamily;
  readonly port: number;
  readonly address: string;
}

/** A message as the milter saw it at end of message. */
export interface MilterMessage {
  readonly client: MilterClient | null;
  /** The HELO/EHLO name, when the client gave one. */
  readonly helo: string | null;
  /** The envelope sender without angle brackets; `''` for the null sender. */
  readonly mailFrom: string;
  /** The ESMTP parameters of MAIL FROM (`SIZE=…`, `BODY=8BITMIME` …). */
  readonly mailParameters: readonly string[];
  /** The envelope recipients without angle brackets. */
  readonly rcptTo: readonly string[];
  /** The header fields in order: `[name, value]`, octets kept as Latin-1 code points. */
  readonly headers: readonly (readonly [string, string])[];
  /** The first octets of the body, up to the handler's `bodyLimit` (empty when it asked for none). */
  readonly body: Buffer;
  /** Whether the body was longer than what was kept. */
  readonly bodyTruncated: boolean;
  /** A macro's value (`i`, `auth_authen`, `client_addr`, `j` …; names without braces), latest first. */
  macro(name: string): string | undefined;
  /** The actions the MTA agreed to (SMFIF_* bits): a change it did not agree to cannot be made. */
  readonly actions: number;
}

/** A change to the message made at end of message. */
export type MessageChange =
  | { readonly type: 'add-header'; readonly name: string; readonly value: string }
  /** Changes the `index`-th (from 1) field named `name`; an empty value deletes it. */
  | { readonly type: 'change-header'; readonly name: string; readonly index: number; readonly value: string }
  | { readonly type: 'change-from'; readonly address: string };

/** What to do with a message. */
export type MilterVerdict =
  /** Let it through, with these changes. */
  | { readonly action: 'continue'; readonly changes: readonly MessageChange[] }
  /** Refuse it for good: the reply line is `5xx x.y.z text`, or Postfix's default 5xx. */
  | { readonly action: 'reject'; readonly reply?: string }
  /** Refuse it for now: the reply line is `4xx x.y.z text`, or Postfix's default 4xx. */
  | { readonly action: 'tempfail'; readonly reply?: string };

/** What the session asks of its user: how much body it needs, which macros, and the verdict. */
export interface MilterHandler {
  /** Body octets to collect for the verdict; 0 (the default) asks the MTA for no body at all. */
  readonly bodyLimit?: number;
  /**
   * Macros to ask for per stage (SMFIR_OPTNEG macro lists, when the MTA offers SMFIF_SETSYMLIST),
   * replacing the MTA's configured lists for those stages (Postfix's milter_*_macros).
   */
  readonly macros?: SymbolLists;
  /** The verdict on a message, at end of message. May throw: the message is then tempfailed. */
  endOfMessage(message: MilterMessage): MilterVerdict | Promise<MilterVerdict>;
}

/** Actions the session may use; the MTA's offer is intersected with these. */
const WANTED_ACTIONS = SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.CHGFROM;

/**
 * Steps the session does without (SMFIP_NO*: unknown commands, DATA, end of header, whose
 * packets and macros the MTA then does not send) and steps it need not answer (SMFIP_NR_*):
 * each is asked for only when the MTA offers it. Postfix ≥ 2.6 offers them all; the no-reply
 * steps spare one round trip per SMTP command, so that a message costs one round trip (end of
 * message). Connect and HELO are kept (the client's address and name are decision input).
 */
const WANTED_PROTOCOL =
  SMFIP.NOUNKNOWN | SMFIP.NODATA | SMFIP.NOEOH | SMFIP.SKIP | SMFIP.NR_CONN | SMFIP.NR_HELO | SMFIP.NR_MAIL | SMFIP.NR_RCPT | SMFIP.NR_DATA | SMFIP.NR_UNKN | SMFIP.NR_EOH | SMFIP.NR_HDR;

/** Options of a {@link MilterSession}. */
export interface MilterSessionOptions {
  /**
   * Answer SMFIC_DATA (SMFIP_NODATA and SMFIP_NR_DATA are not asked for): one more round trip
   * per message, before the header. Wanted on TCP: Postfix's smtpd sends the envelope steps
   * (MAIL, RCPT, DATA: no reply) in one write at DATA, then its cleanup process sends the header
   * and end of message on the same socket. Postfix leaves Nagle's algorithm on for milter
   * sockets, so that second write waits until the first is acknowledged, and the milter, having
   * nothing to send, delays its acknowledgement (40 ms on Linux): ~40 ms per message. A reply at
   * DATA acknowledges the envelope at once. Unix-domain sockets have no such delay: default false.
   */
  readonly replyToData?: boolean;
  /**
   * The most recipients a message may have (default {@link DEFAULT_MAX_RECIPIENTS}: ten times
   * Postfix's smtpd_recipient_limit of 1,000), whose addresses may hold 256 characters each on
   * average (RFC 5321 §4.5.3.1.3: a path has at most 256 octets). A message with more is refused
   * for now at end of message (`452 4.5.3`) without asking the handler: raise it above
   * smtpd_recipient_limit if that is raised.
   */
  readonly maxRecipients?: number;
  /**
   * The largest header a message may have, in octets, each field counted as the header block
   * writes it, `name: value` and CRLF (default {@link DEFAULT_MAX_HEADER_BYTES}, 1 MiB: about ten
   * times Postfix's header_size_limit, which bounds one field; sendmail's MaxHeadersLength bounds
   * them all, at 32 KiB by default). A message with a larger one is refused for now at end of
   * message (`452 4.3.4`) without asking the handler.
   */
  readonly maxHeaderBytes?: number;
  /**
   * The most header fields a message may have (default {@link DEFAULT_MAX_HEADER_FIELDS}, 10,000).
   * `maxHeaderBytes` alone lets a header of tiny fields (`a: b`, six octets each) be 174,762
   * fields, which the session held as 12.7 MiB of strings and arrays (measured: heap after GC): this bounds
   * their count, and with it what they cost beyond their octets. A message with more is refused
   * for now at end of message (`452 4.3.4`) without asking the handler.
   */
  readonly maxHeaderFields?: number;
  /**
   * The most octets of macros a connection keeps (default {@link DEFAULT_MAX_MACRO_BYTES}, 64 KiB),
   * all stages together: each macro's name (without braces) and value, each with its NUL. The
   * session keeps the latest SMFIC_MACRO of each of eight stages; bounded by the packet size
   * alone (1 MiB), that was up to 8 MiB a connection. Postfix's macros are a few hundred octets
   * a stage (a client certificate's subject and issuer a few hundred more). A MACRO that would
   * take the connection's macros over the limit is a protocol error: the connection is closed,
   * and Postfix applies milter_default_action, as when the milter is down.
   */
  readonly maxMacroBytes?: number;
}

/** The default {@link MilterSessionOptions.maxRecipients}. */
export const DEFAULT_MAX_RECIPIENTS = 10_000;

/** The default {@link MilterSessionOptions.maxHeaderBytes}: 1 MiB. */
export const DEFAULT_MAX_HEADER_BYTES = 1_048_576;

/**
 * The default {@link MilterSessionOptions.maxHeaderFields}. A header has tens of fields, a few
 * hundred after many hops (Postfix bounces a message with more than hopcount_limit, 50,
 * Received fields, and each hop may add a handful of trace and authentication fields): 10,000
 * leaves room for any real one.
 */
export const DEFAULT_MAX_HEADER_FIELDS = 10_000;

/** The default {@link MilterSessionOptions.maxMacroBytes}: 64 KiB. */
export const DEFAULT_MAX_MACRO_BYTES = 65_536;

/** RFC 5321 §4.5.3.1.3: a reverse-path or forward-path has at most 256 octets. */
const PATH_LENGTH = 256;

/** Octets a header field adds to the header block besides its name and value: `: ` and CRLF. */
const FIELD_FRAMING = 4;

/** What one message may make the session keep, validated once. */
export interface MessageLimits {
  readonly maxRecipients: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaderFields: number;
  readonly maxMacroBytes: number;
}

/**
 * The limits of {@link MilterSessionOptions}, defaults filled in; `owner` names the caller in
 * error messages.
 * @throws {OutboundPoolsError} `invalid-context` when one is not a whole number of at least 1.
 */
export function messageLimits(options: MilterSessionOptions, owner = 'MilterSession'): MessageLimits {
  return Object.freeze({
    maxRecipients: wholeNumberOption(owner, 'maxRecipients', options.maxRecipients, DEFAULT_MAX_RECIPIENTS, 1),
    maxHeaderBytes: wholeNumberOption(owner, 'maxHeaderBytes', options.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES, 1),
    maxHeaderFields: wholeNumberOption(owner, 'maxHeaderFields', options.maxHeaderFields, DEFAULT_MAX_HEADER_FIELDS, 1),
    maxMacroBytes: wholeNumberOption(owner, 'maxMacroBytes', options.maxMacroBytes, DEFAULT_MAX_MACRO_BYTES, 1),
  });
}

type State = 'negotiate' | 'session' | 'message' | 'closed';

/** Macro stages (SMFIC_MACRO command codes) that belong to a message and end with it. */
const MESSAGE_STAGES = new Set<number>([SMFIC.MAIL, SMFIC.RCPT, SMFIC.DATA, SMFIC.HEADER, SMFIC.EOH, SMFIC.BODY, SMFIC.BODYEOB]);

/** The stages whose macros {@link MilterMessage.macro} reads, latest first: end of message, then back to connect. */
const READ_STAGES = [SMFIC.BODYEOB, SMFIC.EOH, SMFIC.HEADER, SMFIC.DATA, SMFIC.RCPT, SMFIC.MAIL, SMFIC.HELO, SMFIC.CONNECT] as const;
const KEPT_STAGES: ReadonlySet<number> = new Set(READ_STAGES);

/** One stage's macros, packed ({@link packMacros}), and their octets in UTF-8. */
interface PackedMacros {
  readonly text: string;
  readonly octets: number;
}

/**
 * A stage's macros as one string, `name NUL value NUL …`. Kept so, one stage's macros cost about
 * the octets of their packet; kept as a Map, a packet of tiny macros (`a`, `b`, … each with a
 * one-octet value) cost about ten times that.
 */
function packMacros(macros: ReadonlyMap<string, string>): PackedMacros {
  const parts: string[] = [];
  for (const [name, value] of macros) parts.push(name, value);
  // The last empty part ends the last value with its NUL.
  parts.push('');
  const text = parts.join('\0');
  return { text, octets: Buffer.byteLength(text, 'utf8') };
}

/** The value of `name` in packed macros (names are unique: the Map they came from kept the last). */
function packedMacro(packed: string, name: string): string | undefined {
  for (let at = 0; at < packed.length; ) {
    const nameEnd = packed.indexOf('\0', at);
    const valueEnd = packed.indexOf('\0', nameEnd + 1);
    if (nameEnd - at === name.length && packed.startsWith(name, at)) return packed.slice(nameEnd + 1, valueEnd);
    at = valueEnd + 1;
  }
  return undefined;
}

const NONE: readonly Buffer[] = Object.freeze([]);

/** The decision failed: tempfail rather than guess (as the Haraka adapter does). */
const FAILED_REPLY = '451 4.3.0 Outbound pool decision failed';

function unbracket(address: string): string {
  const trimmed = address.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1) : trimmed;
}

/** One milter conversation. Feed it commands in order; write out what each returns. */
export class MilterSession {
  readonly #handler: MilterHandler;
  readonly #bodyLimit: number;
  readonly #replyToData: boolean;
  readonly #limits: MessageLimits;
  #state: State = 'negotiate';
  #protocol = 0;
  #actions = 0;
  /** The macros of each stage read, packed ({@link packMacros}); a stage sent again replaces its macros. */
  #macros = new Map<number, PackedMacros>();
  #client: MilterClient | null = null;
  #helo: string | null = null;
  #mailFrom = '';
  #mailParameters: readonly string[] = [];
  #rcptTo: string[] = [];
  #headers: (readonly [string, string])[] = [];
  #body: Buffer[] = [];
  #bodyLength = 0;
  #bodyTruncated = false;
  /** Characters of the recipients' addresses and octets of the header kept for this message. */
  #recipientChars = 0;
  #headerBytes = 0;
  /** The reply to this message once it passed a limit: it is then kept no longer, nor decided. */
  #overLimit: string | null = null;
  #deciding = false;

  /** @throws {OutboundPoolsError} `invalid-context` when a limit of `options` is not a whole number of at least 1. */
  constructor(handler: MilterHandler, options: MilterSessionOptions = {}) {
    this.#handler = handler;
    this.#bodyLimit = handler.bodyLimit ?? 0;
    this.#replyToData = options.replyToData ?? false;
    this.#limits = messageLimits(options);
  }

  /** Whether a message is under way (between MAIL and its end): a draining server waits for it. */
  get busy(): boolean {
    return this.#state === 'message' || this.#deciding;
  }

  /** Whether the MTA said QUIT: the connection should be closed. */
  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** The protocol flags agreed in negotiation (SMFIP_* bits), 0 before it. */
  get protocol(): number {
    return this.#protocol;
  }

  /**
   * Handles one command; returns the packets to send back (none for a no-reply step). Only end
   * of message is asynchronous. @throws {MilterProtocolError} `out-of-order`, `negotiation`, or
   * `oversized` for a MACRO that takes the connection's macros over `maxMacroBytes`.
   */
  handle(command: MilterCommand): readonly Buffer[] | Promise<readonly Buffer[]> {
    if (this.#state === 'closed') throw this.#outOfOrder(command.type);
    if (this.#state === 'negotiate' && command.type !== 'optneg' && command.type !== 'macro') throw this.#outOfOrder(command.type);
    switch (command.type) {
      case 'optneg':
        return [this.#negotiate(command.version, command.actions, command.protocol)];
      case 'macro':
        // SMFIC_MACRO: sent before the command it belongs to, never answered. One string per
        // stage read, replaced when the stage comes again: what a connection keeps of macros is
        // the eight stages' latest packets, within maxMacroBytes together.
        if (KEPT_STAGES.has(command.stage)) this.#keepMacros(command.stage, packMacros(command.macros));
        return NONE;
      case 'connect':
        if (this.#state !== 'session' || this.#client !== null) throw this.#outOfOrder('connect');
        this.#client = { hostname: command.hostname, family: command.family, port: command.port, address: command.address };
        return this.#reply(SMFIP.NR_CONN);
      case 'helo':
        if (this.#state !== 'session') throw this.#outOfOrder('helo');
        this.#helo = command.name;
        return this.#reply(SMFIP.NR_HELO);
      case 'mail':
        if (this.#state !== 'session') throw this.#outOfOrder('mail');
        this.#state = 'message';
        this.#mailFrom = unbracket(command.args[0] ?? '');
        this.#mailParameters = command.args.slice(1);
        return this.#reply(SMFIP.NR_MAIL);
      case 'rcpt':
        this.#inMessage('rcpt');
        this.#keepRecipient(unbracket(command.args[0] ?? ''));
        return this.#reply(SMFIP.NR_RCPT);
      case 'data':
        this.#inMessage('data');
        return this.#reply(SMFIP.NR_DATA);
      case 'header':
        this.#inMessage('header');
        this.#keepHeader(command.name, command.value);
        return this.#reply(SMFIP.NR_HDR);
      case 'eoh':
        this.#inMessage('eoh');
        return this.#reply(SMFIP.NR_EOH);
      case 'body':
        this.#inMessage('body');
        return this.#bodyChunk(command.chunk);
      case 'eob':
        this.#inMessage('eob');
        if (command.chunk !== undefined) this.#keep(command.chunk);
        return this.#overLimit === null ? this.#endOfMessage() : this.#refuseOverLimit(this.#overLimit);
      case 'unknown':
        return this.#reply(SMFIP.NR_UNKN);
      case 'abort':
        // SMFIC_ABORT: the message is over (RSET, or the MTA gave up); the SMTP session goes on.
        this.#resetMessage();
        return NONE;
      case 'quit':
        this.#state = 'closed';
        return NONE;
      case 'quit-nc':
        // SMFIC_QUIT_NC: this SMTP session is over, another one follows on this connection.
        this.#resetMessage();
        this.#client = null;
        this.#helo = null;
        this.#macros = new Map();
        return NONE;
    }
  }

  #negotiate(version: number, offeredActions: number, offeredProtocol: number): Buffer {
    // milter-protocol.txt SMFIC_OPTNEG: the filter answers with the version it speaks and the
    // subsets of the offered actions and steps it wants; protocol 2 is the oldest with this form.
    if (this.#state !== 'negotiate') throw this.#outOfOrder('optneg');
    if (version < 2) throw new MilterProtocolError('negotiation', `the MTA speaks milter protocol ${version}; at least 2 is needed`);
    this.#actions = offeredActions & WANTED_ACTIONS;
    let wanted = WANTED_PROTOCOL;
    if (this.#bodyLimit === 0) wanted |= SMFIP.NOBODY;
    if (this.#replyToData) wanted &= ~(SMFIP.NODATA | SMFIP.NR_DATA);
    this.#protocol = offeredProtocol & wanted;
    this.#state = 'session';
    const symbols = offeredActions & SMFIF.SETSYMLIST && this.#handler.macros !== undefined && this.#handler.macros.size > 0 ? this.#handler.macros : undefined;
    if (symbols !== undefined) this.#actions |= SMFIF.SETSYMLIST;
    return respond.optneg(Math.min(version, MILTER_VERSION), this.#actions, this.#protocol, symbols);
  }

  #reply(noReplyFlag: number): readonly Buffer[] {
    return this.#protocol & noReplyFlag ? NONE : [respond.continue()];
  }

  #inMessage(what: string): void {
    if (this.#state !== 'message') throw this.#outOfOrder(what);
  }

  #outOfOrder(what: string): MilterProtocolError {
    return new MilterProtocolError('out-of-order', `${what} is not allowed ${this.#state === 'message' ? 'during a message' : this.#state === 'closed' ? 'after QUIT' : this.#state === 'negotiate' ? 'before option negotiation' : 'outside a message'}`);
  }

  // An MTA sends a message's recipients and header fields one packet each, without waiting for
  // an answer (SMFIP_NR_RCPT, SMFIP_NR_HDR), so their number is not bounded by the protocol: the
  // session keeps them up to its limits, then forgets the message and refuses it at its end.
  #keepRecipient(address: string): void {
    if (this.#overLimit !== null) return;
    this.#recipientChars += address.length;
    const { maxRecipients } = this.#limits;
    if (this.#rcptTo.length === maxRecipients) this.#passLimit(`452 4.5.3 Too many recipients: at most ${maxRecipients} per message`);
    else if (this.#recipientChars > maxRecipients * PATH_LENGTH) this.#passLimit(`452 4.5.3 Too many recipients: at most ${maxRecipients * PATH_LENGTH} characters of addresses per message`);
    else this.#rcptTo.push(address);
  }

  #keepHeader(name: string, value: string): void {
    if (this.#overLimit !== null) return;
    // Header names and values are decoded as Latin-1: one character per octet.
    this.#headerBytes += name.length + value.length + FIELD_FRAMING;
    const { maxHeaderBytes, maxHeaderFields } = this.#limits;
    if (this.#headers.length === maxHeaderFields) this.#passLimit(`452 4.3.4 Too many header fields: at most ${maxHeaderFields} per message`);
    else if (this.#headerBytes > maxHeaderBytes) this.#passLimit(`452 4.3.4 Message header too large: at most ${maxHeaderBytes} octets`);
    else this.#headers.push([name, value]);
  }

  /**
   * A limit is passed: what the message kept is dropped, and it is refused for now at its end
   * (a 4xx, as a failed decision is: the client keeps the message, and an operator may raise the
   * limit), without asking the handler, which would decide on a message it did not see whole.
   */
  #passLimit(reply: string): void {
    this.#overLimit = reply;
    this.#rcptTo = [];
    this.#headers = [];
    this.#body = [];
    this.#bodyLength = 0;
  }

  #keep(chunk: Buffer): boolean {
    if (this.#overLimit !== null) return false;
    const room = this.#bodyLimit - this.#bodyLength;
    if (room <= 0) {
      this.#bodyTruncated ||= chunk.length > 0;
      return false;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    // The packet's buffer may be reused by the reader: keep a copy.
    this.#body.push(Buffer.from(kept));
    this.#bodyLength += kept.length;
    if (kept.length < chunk.length) this.#bodyTruncated = true;
    return this.#bodyLength < this.#bodyLimit;
  }

  /** @throws {MilterProtocolError} `oversized` when the connection's macros would be over maxMacroBytes. */
  #keepMacros(stage: number, packed: PackedMacros): void {
    let octets = packed.octets;
    for (const [kept, macros] of this.#macros) if (kept !== stage) octets += macros.octets;
    const limit = this.#limits.maxMacroBytes;
    if (octets > limit) {
      throw new MilterProtocolError('oversized', `SMFIC_MACRO for ${JSON.stringify(String.fromCharCode(stage))} takes the connection's macros to ${octets} octets, over the limit of ${limit} (maxMacroBytes)`);
    }
    this.#macros.set(stage, packed);
  }

  #bodyChunk(chunk: Buffer): readonly Buffer[] {
    const wantsMore = this.#keep(chunk);
    // SMFIR_SKIP (protocol 6, when the MTA offered SMFIP_SKIP): no more body chunks for this message.
    if (!wantsMore && this.#protocol & SMFIP.SKIP) return [respond.skip()];
    return [respond.continue()];
  }

  #message(): MilterMessage {
    // A copy: the message's own stages are cleared when it ends, and the verdict may read later.
    const macros = new Map(this.#macros);
    return {
      client: this.#client,
      helo: this.#helo,
      mailFrom: this.#mailFrom,
      mailParameters: this.#mailParameters,
      rcptTo: this.#rcptTo,
      headers: this.#headers,
      body: this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body, this.#bodyLength),
      bodyTruncated: this.#bodyTruncated,
      actions: this.#actions,
      macro(name) {
        // The latest stage first: end of message, then back to connect.
        for (const stage of READ_STAGES) {
          const packed = macros.get(stage);
          const value = packed === undefined ? undefined : packedMacro(packed.text, name);
          if (value !== undefined) return value;
        }
        return undefined;
      },
    };
  }

  async #endOfMessage(): Promise<readonly Buffer[]> {
    const message = this.#message();
    this.#deciding = true;
    let verdict: MilterVerdict;
    try {
      verdict = await this.#handler.endOfMessage(message);
    } catch {
      verdict = { action: 'tempfail', reply: FAILED_REPLY };
    } finally {
      this.#deciding = false;
    }
    this.#resetMessage();
    return this.#responses(verdict);
  }

  #refuseOverLimit(reply: string): readonly Buffer[] {
    this.#resetMessage();
    return [respond.replyCode(reply)];
  }

  #responses(verdict: MilterVerdict): readonly Buffer[] {
    switch (verdict.action) {
      case 'reject':
        return [verdict.reply === undefined ? respond.reject() : respond.replyCode(verdict.reply)];
      case 'tempfail':
        return [verdict.reply === undefined ? respond.tempfail() : respond.replyCode(verdict.reply)];
      case 'continue': {
        const out: Buffer[] = [];
        for (const change of verdict.changes) {
          // A change the MTA did not agree to would end the conversation (Postfix logs it and
          // applies milter_default_action): refuse the message for now instead.
          const needed = change.type === 'add-header' ? SMFIF.ADDHDRS : change.type === 'change-header' ? SMFIF.CHGHDRS : SMFIF.CHGFROM;
          if ((this.#actions & needed) === 0) return [respond.replyCode(`451 4.3.0 The MTA does not allow the milter to ${change.type.replace('-', ' ')}`)];
          if (change.type === 'add-header') out.push(respond.addHeader(change.name, change.value));
          else if (change.type === 'change-header') out.push(respond.changeHeader(change.index, change.name, change.value));
          else out.push(respond.changeFrom(change.address));
        }
        out.push(respond.continue());
        return out;
      }
    }
  }

  #resetMessage(): void {
    if (this.#state === 'message') this.#state = 'session';
    this.#mailFrom = '';
    this.#mailParameters = [];
    this.#rcptTo = [];
    this.#headers = [];
    this.#body = [];
    this.#bodyLength = 0;
    this.#bodyTruncated = false;
    this.#recipientChars = 0;
    this.#headerBytes = 0;
    this.#overLimit = null;
    for (const stage of MESSAGE_STAGES) this.#macros.delete(stage);
  }
}
