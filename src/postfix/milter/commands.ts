// Milter commands: the MTA's requests (SMFIC_*) decoded from packet data into typed objects, and
// the milter's responses (SMFIR_*) encoded into packets. Codes, flags and data layouts are those
// of milter protocol version 6 as libmilter's mfdef.h defines them and as described publicly in
// milter-protocol.txt (protocol 2, "COMMAND CODES" and "RESPONSE CODES") and
// milter-protocol-extras.txt (the version 6 additions); both are cited by entry below.

import { encodePacket, MilterProtocolError, type Packet } from './packet.js';

/** The milter protocol version this implementation speaks (Postfix ≥ 2.6 offers 6). */
export const MILTER_VERSION = 6;

/** Request command octets, MTA → milter (mfdef.h SMFIC_*). */
export const SMFIC = Object.freeze({
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  QUIT_NC: 0x4b, // 'K' quit this SMTP session, a new one follows on the same connection
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
  UNKNOWN: 0x55, // 'U'
});

/** Response command octets, milter → MTA (mfdef.h SMFIR_*). */
export const SMFIR = Object.freeze({
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  ACCEPT: 0x61, // 'a'
  CHGFROM: 0x65, // 'e'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  SETSYMLIST: 0x6c, // 'l'
  CHGHEADER: 0x6d, // 'm'
  PROGRESS: 0x70, // 'p'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  OPTNEG: 0x4f, // 'O'
});

/** Actions a milter may take (the second word of SMFIC_OPTNEG; milter-protocol-extras.txt "Actions"). */
export const SMFIF = Object.freeze({
  ADDHDRS: 0x01,
  CHGBODY: 0x02,
  ADDRCPT: 0x04,
  DELRCPT: 0x08,
  CHGHDRS: 0x10,
  QUARANTINE: 0x20,
  CHGFROM: 0x40,
  ADDRCPT_PAR: 0x80,
  SETSYMLIST: 0x100,
});

/** Protocol steps and reply modes (the third word of SMFIC_OPTNEG; milter-protocol-extras.txt "Protocol flags"). */
export const SMFIP = Object.freeze({
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  SKIP: 0x400,
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  HDR_LEADSPC: 0x100000,
});

/** The stages a macro list may be asked for with SMFIR_SETSYMLIST (mfapi.h SMFIM_*). */
export const SMFIM = Object.freeze({ CONNECT: 0, HELO: 1, ENVFROM: 2, ENVRCPT: 3, DATA: 4, EOM: 5, EOH: 6 });

/** The commands SMFIC_MACRO may name as its stage: those an MTA sends macros before. */
const MACRO_STAGES: ReadonlySet<number> = new Set([
  SMFIC.CONNECT,
  SMFIC.HELO,
  SMFIC.MAIL,
  SMFIC.RCPT,
  SMFIC.DATA,
  SMFIC.HEADER,
  SMFIC.EOH,
  SMFIC.BODY,
  SMFIC.BODYEOB,
  SMFIC.UNKNOWN,
]);

/** The network family of SMFIC_CONNECT: '4', '6', 'L' (a Unix socket) or 'U' (unknown). */
export type ConnectFamily = 'inet' | 'inet6' | 'unix' | 'unknown';

const FAMILIES: Readonly<Record<string, ConnectFamily>> = { '4': 'inet', '6': 'inet6', L: 'unix', U: 'unknown' };

/** A decoded MTA request. */
export type MilterCommand =
  | { readonly type: 'optneg'; readonly version: number; readonly actions: number; readonly protocol: number }
  | { readonly type: 'macro'; readonly stage: number; readonly macros: ReadonlyMap<string, string> }
  | { readonly type: 'connect'; readonly hostname: string; readonly family: ConnectFamily; readonly port: number; readonly address: string }
  | { readonly type: 'helo'; readonly name: string }
  | { readonly type: 'mail'; readonly args: readonly string[] }
  | { readonly type: 'rcpt'; readonly args: readonly string[] }
  | { readonly type: 'data' }
  | { readonly type: 'header'; readonly name: string; readonly value: string }
  | { readonly type: 'eoh' }
  | { readonly type: 'body'; readonly chunk: Buffer }
  | { readonly type: 'eob'; readonly chunk?: Buffer }
  | { readonly type: 'abort' }
  | { readonly type: 'quit' }
  | { readonly type: 'quit-nc' }
  | { readonly type: 'unknown'; readonly line: string };

function malformed(what: string): MilterProtocolError {
  return new MilterProtocolError('malformed', what);
}

/**
 * The NUL-terminated strings filling `data` (milter-protocol.txt: `char args[][]`). Every string
 * must be terminated: data that does not end in NUL is malformed. Text is read as UTF-8 (SMTPUTF8
 * addresses); headers are read as Latin-1 elsewhere so that their octets survive unchanged.
 */
function strings(data: Buffer, what: string, encoding: BufferEncoding = 'utf8'): string[] {
  if (data.length === 0 || data[data.length - 1] !== 0) throw malformed(`${what}: the data is not NUL-terminated`);
  const out: string[] = [];
  let start = 0;
  for (let end = data.indexOf(0, start); end !== -1; end = data.indexOf(0, start)) {
    out.push(data.toString(encoding, start, end));
    start = end + 1;
  }
  return out;
}

function exactly(data: Buffer, count: number, what: string, encoding?: BufferEncoding): string[] {
  const parts = strings(data, what, encoding);
  if (parts.length !== count) throw malformed(`${what}: expected ${count} NUL-terminated string(s), got ${parts.length}`);
  return parts;
}

function noData(data: Buffer, what: string): void {
  if (data.length !== 0) throw malformed(`${what} takes no data, got ${data.length} octet(s)`);
}

/**
 * Decodes one MTA request. @throws {MilterProtocolError} `malformed` for data of the wrong shape,
 * `unknown-command` for a command octet the protocol does not define.
 */
export function decodeCommand(packet: Packet): MilterCommand {
  const { command, data } = packet;
  switch (command) {
    case SMFIC.OPTNEG: {
      // milter-protocol.txt SMFIC_OPTNEG: uint32 version, uint32 actions, uint32 protocol.
      if (data.length < 12) throw malformed(`SMFIC_OPTNEG needs 12 octets, got ${data.length}`);
      return { type: 'optneg', version: data.readUInt32BE(0), actions: data.readUInt32BE(4), protocol: data.readUInt32BE(8) };
    }
    case SMFIC.MACRO: {
      // SMFIC_MACRO: char cmdcode, then name/value pairs, each NUL-terminated.
      if (data.length === 0) throw malformed('SMFIC_MACRO has no command code');
      const stage = data[0]!;
      // The stage is the command the macros come before; libmilter fails the connection on any
      // other octet (engine.c st_macros). Refused here too, so that a connection keeps macros for
      // a few known stages, not for 256 octets.
      if (!MACRO_STAGES.has(stage)) throw malformed(`SMFIC_MACRO for ${JSON.stringify(String.fromCharCode(stage))}, which is no command that macros come before`);
      const macros = new Map<string, string>();
      if (data.length > 1) {
        const parts = strings(data.subarray(1), 'SMFIC_MACRO');
        if (parts.length % 2 !== 0) throw malformed('SMFIC_MACRO: a macro name has no value');
        for (let i = 0; i < parts.length; i += 2) macros.set(unbrace(parts[i]!), parts[i + 1]!);
      }
      return { type: 'macro', stage, macros };
    }
    case SMFIC.CONNECT: {
      // SMFIC_CONNECT: char hostname[], char family, then for '4'/'6'/'L' uint16 port and char address[].
      const nul = data.indexOf(0);
      if (nul === -1 || nul + 1 >= data.length) throw malformed('SMFIC_CONNECT: no hostname or family');
      const hostname = data.toString('utf8', 0, nul);
      const family = FAMILIES[String.fromCharCode(data[nul + 1]!)];
      if (family === undefined) throw malformed(`SMFIC_CONNECT: unknown family ${JSON.stringify(String.fromCharCode(data[nul + 1]!))}`);
      if (family === 'unknown') return { type: 'connect', hostname, family, port: 0, address: '' };
      const rest = data.subarray(nul + 2);
      if (rest.length < 3) throw malformed('SMFIC_CONNECT: no port or address');
      const [address] = exactly(rest.subarray(2), 1, 'SMFIC_CONNECT address');
      return { type: 'connect', hostname, family, port: rest.readUInt16BE(0), address: address! };
    }
    case SMFIC.HELO:
      return { type: 'helo', name: exactly(data, 1, 'SMFIC_HELO')[0]! };
    case SMFIC.MAIL:
      // SMFIC_MAIL / SMFIC_RCPT: char args[][], the address first, then ESMTP parameters.
      return { type: 'mail', args: strings(data, 'SMFIC_MAIL') };
    case SMFIC.RCPT:
      return { type: 'rcpt', args: strings(data, 'SMFIC_RCPT') };
    case SMFIC.HEADER: {
      // SMFIC_HEADER: char name[], char value[].
      const [name, value] = exactly(data, 2, 'SMFIC_HEADER', 'latin1');
      if (name === '') throw malformed('SMFIC_HEADER: empty header name');
      return { type: 'header', name: name!, value: value! };
    }
    case SMFIC.BODY:
      return { type: 'body', chunk: data };
    case SMFIC.UNKNOWN:
      return { type: 'unknown', line: exactly(data, 1, 'SMFIC_UNKNOWN')[0]! };
    case SMFIC.DATA:
      noData(data, 'SMFIC_DATA');
      return { type: 'data' };
    case SMFIC.EOH:
      noData(data, 'SMFIC_EOH');
      return { type: 'eoh' };
    case SMFIC.BODYEOB:
      // SMFIC_BODYEOB may carry a last body chunk (milter-protocol.txt); Postfix sends none.
      return data.length === 0 ? { type: 'eob' } : { type: 'eob', chunk: data };
    case SMFIC.ABORT:
      noData(data, 'SMFIC_ABORT');
      return { type: 'abort' };
    case SMFIC.QUIT:
      noData(data, 'SMFIC_QUIT');
      return { type: 'quit' };
    case SMFIC.QUIT_NC:
      noData(data, 'SMFIC_QUIT_NC');
      return { type: 'quit-nc' };
    default:
      throw new MilterProtocolError('unknown-command', `unknown command octet 0x${command.toString(16).padStart(2, '0')}`);
  }
}

/** `{auth_authen}` → `auth_authen`: sendmail writes long macro names in braces, Postfix sends them so. */
function unbrace(name: string): string {
  return name.length > 2 && name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

const NUL = Buffer.from([0]);

function cstring(text: string, encoding: BufferEncoding = 'utf8'): Buffer[] {
  return [Buffer.from(text, encoding), NUL];
}

/** A macro list to ask the MTA for, per stage (SMFIR_OPTNEG with SMFIF_SETSYMLIST). */
export type SymbolLists = ReadonlyMap<number, readonly string[]>;

/** The milter's responses, encoded as packets. */
export const respond = {
  /**
   * SMFIR_OPTNEG: version, actions, protocol, then for each stage `uint32 stage, char macros[]`
   * (milter-protocol-extras.txt "Protocol negotiation"; the lists only with SMFIF_SETSYMLIST).
   */
  optneg(version: number, actions: number, protocol: number, symbols?: SymbolLists): Buffer {
    const head = Buffer.alloc(12);
    head.writeUInt32BE(version, 0);
    head.writeUInt32BE(actions, 4);
    head.writeUInt32BE(protocol, 8);
    const parts: Buffer[] = [head];
    for (const [stage, names] of symbols ?? []) {
      const word = Buffer.alloc(4);
      word.writeUInt32BE(stage, 0);
      parts.push(word, ...cstring(names.map((name) => (name.length > 1 ? `{${name}}` : name)).join(' ')));
    }
    return encodePacket(SMFIR.OPTNEG, Buffer.concat(parts));
  },
  continue: (): Buffer => CONTINUE,
  accept: (): Buffer => ACCEPT,
  reject: (): Buffer => REJECT,
  tempfail: (): Buffer => TEMPFAIL,
  discard: (): Buffer => encodePacket(SMFIR.DISCARD),
  skip: (): Buffer => SKIP,
  progress: (): Buffer => encodePacket(SMFIR.PROGRESS),
  /**
   * SMFIR_REPLYCODE: `char smtpcode[3], char space, char text[]`, NUL-terminated: a 4xx or 5xx
   * reply. milter-protocol.txt: "'%' characters present in text must be doubled" (the MTA may
   * format it printf-style).
   */
  replyCode(line: string): Buffer {
    return encodePacket(SMFIR.REPLYCODE, Buffer.concat(cstring(line.replace(/%/g, '%%'))));
  },
  /** SMFIR_ADDHEADER: `char name[], char value[]`, appended after the last header. */
  addHeader(name: string, value: string): Buffer {
    return encodePacket(SMFIR.ADDHEADER, Buffer.concat([...cstring(name, 'latin1'), ...cstring(value, 'latin1')]));
  },
  /** SMFIR_INSHEADER: `uint32 index, char name[], char value[]`, inserted before header `index` (0 = first). */
  insertHeader(index: number, name: string, value: string): Buffer {
    const word = Buffer.alloc(4);
    word.writeUInt32BE(index, 0);
    return encodePacket(SMFIR.INSHEADER, Buffer.concat([word, ...cstring(name, 'latin1'), ...cstring(value, 'latin1')]));
  },
  /**
   * SMFIR_CHGHEADER: `uint32 index, char name[], char value[]`: changes the `index`-th (from 1)
   * field called `name`; an empty value deletes it (milter-protocol.txt SMFIR_CHGHEADER).
   */
  changeHeader(index: number, name: string, value: string): Buffer {
    const word = Buffer.alloc(4);
    word.writeUInt32BE(index, 0);
    return encodePacket(SMFIR.CHGHEADER, Buffer.concat([word, ...cstring(name, 'latin1'), ...cstring(value, 'latin1')]));
  },
  /** SMFIR_CHGFROM: `char from[]` and optionally `char args[]` (ESMTP parameters): a new envelope sender. */
  changeFrom(address: string, args?: string): Buffer {
    return encodePacket(SMFIR.CHGFROM, Buffer.concat([...cstring(`<${address}>`), ...(args === undefined ? [] : cstring(args))]));
  },
};

const CONTINUE = encodePacket(SMFIR.CONTINUE);
const ACCEPT = encodePacket(SMFIR.ACCEPT);
const REJECT = encodePacket(SMFIR.REJECT);
const TEMPFAIL = encodePacket(SMFIR.TEMPFAIL);
const SKIP = encodePacket(SMFIR.SKIP);
