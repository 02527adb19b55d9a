/**
 * outbound-pools/postfix: the Postfix adapter. A milter (protocol 6, as Postfix ≥ 2.6 speaks it)
 * that decides each message's pool and names it in a header Postfix's milter_header_checks turns
 * into `FILTER pool_x:`, and a socketmap server with postsrsd 2.x's `forward` and `reverse` SRS
 * maps. The `outbound-pools milter` and `outbound-pools srs-map` commands run them as daemons;
 * docs/postfix.md has the main.cf and master.cf lines.
 *
 * @packageDocumentation
 */
export { parseListenAddress, DEFAULT_MAX_CONNECTIONS, type ListenAddress } from './listener.js';
export { createPoolMilter, milterMessage, verdictFor, POOL_HEADER, type PoolMilterOptions } from './pool-milter.js';
export { startMilterServer, type MilterServer, type MilterServerOptions } from './milter/server.js';
export {
  MilterSession,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADER_FIELDS,
  DEFAULT_MAX_MACRO_BYTES,
  DEFAULT_MAX_RECIPIENTS,
  type MessageChange,
  type MilterClient,
  type MilterHandler,
  type MilterMessage,
  type MilterSessionOptions,
  type MilterVerdict,
} from './milter/session.js';
export {
  decodeCommand,
  respond,
  MILTER_VERSION,
  SMFIC,
  SMFIF,
  SMFIM,
  SMFIP,
  SMFIR,
  type ConnectFamily,
  type MilterCommand,
  type SymbolLists,
} from './milter/commands.js';
export {
  encodePacket,
  MilterProtocolError,
  PacketReader,
  DEFAULT_MAX_PACKET_SIZE,
  type MilterProtocolErrorCode,
  type Packet,
} from './milter/packet.js';
export {
  createSrsMaps,
  encodeNetstring,
  NetstringReader,
  SocketmapProtocolError,
  startSocketmapServer,
  DEFAULT_MAX_REQUEST,
  type SocketmapLookup,
  type SocketmapReply,
  type SocketmapServer,
  type SocketmapServerOptions,
  type SrsMapsOptions,
} from './socketmap.js';
