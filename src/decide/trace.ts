// One line that tells an administrator which pool sent a message and why, the way the message
// trace of Microsoft 365 shows OutboundIpPoolName. Safe as a header field value or a log line,
// and read back field for field by parseTrace: whatever a sender address or a pool name holds
// (`"x; action=block"@example.org`), it cannot add, end or change a field.

import type { Decision } from './types.js';

/** Header field name suggested for the trace (`X-Outbound-Pool: <formatTrace(decision)>`). */
export const TRACE_HEADER = 'X-Outbound-Pool';

/** One `name=value` of a trace line, the value unquoted. */
export type TraceField = readonly [name: string, value: string];

/** A value written as it is: printable ASCII without the separator `;`, a quote or a backslash. */
const BARE = /^[\x21\x23-\x3a\x3c-\x5b\x5d-\x7e]+$/;
/** What JSON.stringify leaves that a header field value cannot hold (RFC 5322 §2.2: printable ASCII). */
const NOT_PRINTABLE_ASCII = /[\u007f-\uffff]/g;

/**
 * A value as the trace writes it: bare when it can be (most are), else a quoted string with
 * JSON's escapes, every character outside printable ASCII as `\uXXXX` — so the line is ASCII,
 * has no CR or LF, and the value reads back exactly (lone surrogates included).
 */
function traceValue(value: string): string {
  if (BARE.test(value)) return value;
  return JSON.stringify(value).replace(NOT_PRINTABLE_ASCII, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The fields of a decision's trace, in order (see {@link formatTrace}). */
export function traceFields(decision: Decision): TraceField[] {
  const reasons = decision.reasons.map((reason) => (reason.provider ? `${reason.code}(${reason.provider})` : reason.code)).join(',');
  const fields: TraceField[] = [
    ['OutboundIpPoolName', decision.poolName ?? 'none'],
    ['action', decision.action],
    ['pool', decision.pool ?? 'none'],
    ['reasons', reasons],
  ];
  if (decision.srs?.applied) fields.push(['mail-from', decision.mailFrom]);
  if (decision.reply !== null) fields.push(['reply', decision.reply.line]);
  return fields;
}

/**
 * `OutboundIpPoolName=RegularRelayOutboundPool; action=deliver; pool=relay; reasons=relay-unverified`
 * — plus `mail-from=` when SRS rewrote the sender and `reply=` for refusals. Provider failures
 * show as `provider-failed(spam)`. A value that holds a space, `;`, `"`, `\` or anything outside
 * printable ASCII is a quoted string with JSON's escapes (`reply="550 5.7.1 …"`).
 * {@link parseTrace} reads it back.
 */
export function formatTrace(decision: Decision): string {
  return traceFields(decision)
    .map(([name, value]) => `${name}=${traceValue(value)}`)
    .join('; ');
}

/** A quoted value from `start` (its opening quote): the index after its closing quote, or -1. */
function quotedEnd(line: string, start: number): number {
  for (let i = start + 1; i < line.length; i++) {
    const code = line.charCodeAt(i);
    if (code === 0x5c) i++;
    else if (code === 0x22) return i + 1;
  }
  return -1;
}

/**
 * The fields of a trace line, in order, values unquoted; null when the line is not one that
 * {@link formatTrace} writes (a field without a name or `=`, a separator other than `; `, a
 * quoted value that does not end or does not parse, a name given twice).
 */
export function parseTrace(line: string): TraceField[] | null {
  if (typeof line !== 'string') return null;
  const fields: TraceField[] = [];
  const names = new Set<string>();
  let pos = 0;
  while (pos < line.length) {
    const equals = line.indexOf('=', pos);
    if (equals <= pos) return null;
    const name = line.slice(pos, equals);
    if (!/^[A-Za-z-]+$/.test(name) || names.has(name)) return null;
    let value: string;
    let end: number;
    if (line.charCodeAt(equals + 1) === 0x22) {
      end = quotedEnd(line, equals + 1);
      if (end < 0) return null;
      try {
        value = JSON.parse(line.slice(equals + 1, end)) as string;
      } catch {
        return null;
      }
    } else {
      end = line.indexOf(';', equals + 1);
      if (end < 0) end = line.length;
      value = line.slice(equals + 1, end);
      if (!BARE.test(value)) return null;
    }
    names.add(name);
    fields.push([name, value]);
    if (end === line.length) return fields;
    if (line.charCodeAt(end) !== 0x3b || line.charCodeAt(end + 1) !== 0x20) return null;
    pos = end + 2;
  }
  return null; // empty, or a separator with nothing after it
}
