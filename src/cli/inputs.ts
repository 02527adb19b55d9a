// The inputs of `decide` and `explain`, recognised by kind — an RFC 5322 message (.eml, .msg), a
// JSON message or envelope sidecar (.json), a JSON-lines batch (.jsonl, .ndjson), a directory of
// messages, standard input — and read one message at a time: a batch line by line from a stream,
// a directory entry by entry, so that memory stays bounded however long the input is.

import { createReadStream, readFileSync } from 'node:fs';
import { open, opendir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { OutboundMessage } from '../decide/types.js';
import { UsageError } from './io.js';

/** A message that cannot be decided (unreadable, bad JSON, no envelope): reported and counted invalid; the run goes on. */
export class MessageError extends Error {
  override readonly name = 'MessageError';
}

/** One message to decide, under the name the output gives it. */
export interface Job {
  readonly id: string;
  readonly message: OutboundMessage | MessageError;
}

/** The envelope given as flags: each overrides the field it names in the sidecar, nothing else. */
export interface EnvelopeFlags {
  /** `--mail-from`; `<>` (or '') is the null sender. */
  readonly mailFrom?: string;
  readonly rcpt?: readonly string[];
}

/** One input of a run, planned before the first decision; its messages are read as they are decided. */
export interface Input {
  /** How the input is named in messages. */
  readonly name: string;
  /** One message (the envelope flags may describe it), not a batch or a directory. */
  readonly single: boolean;
  /** A JSON-lines batch (its lines give their own envelopes). */
  readonly batch: boolean;
  /** The message file it decides, resolved: `x.eml` and its sidecar `x.json` both named decide it once. */
  readonly messageFile?: string;
  /** The messages, one at a time. */
  jobs(flags: EnvelopeFlags): AsyncIterable<Job>;
  /** How many messages there are, counted ahead for the progress indicator; null if unknowable (standard input). */
  count(): Promise<number | null>;
}

/** The envelope fields of a sidecar, a JSON message or a batch line (OutboundMessage's). */
const ENVELOPE_FIELDS = ['mailFrom', 'rcptTo', 'submitter', 'queueId', 'ingress', 'authentication', 'spam', 'groups', 'autoForwarded', 'tenant'];
/** The fields of a batch line or a JSON message: the envelope, what the message is, and its name. */
const MESSAGE_FIELDS = ['id', 'file', 'raw', ...ENVELOPE_FIELDS];

/** What a file holds. */
export type FileKind = 'message' | 'json' | 'batch';

const KIND_BY_EXTENSION: Readonly<Record<string, FileKind>> = {
  '.eml': 'message',
  '.msg': 'message',
  '.json': 'json',
  '.jsonl': 'batch',
  '.ndjson': 'batch',
};

/** Bytes read from the start of a file whose name does not tell its kind. */
const SNIFF_BYTES = 64 * 1024;
/** A batch line longer than this is reported invalid and skipped, not held in memory. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** A directory with at most this many messages is decided in name order; a larger one, as it lists them. */
const SORTED_DIRECTORY_MAX = 10_000;

// RFC 5322 §2.2: a header field name is printable US-ASCII except the colon; §4.5.8 (obs-optional)
// allows white space before the colon.
const HEADER_FIELD = /^[\x21-\x39\x3b-\x7e]+[ \t]*:/;
// [MS-CFB] §2.2: the signature of a Compound File, Outlook's binary .msg.
const COMPOUND_FILE = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/**
 * What the start of a file says it is: a message (it opens with an RFC 5322 header field), JSON
 * lines (its first line is a JSON object) or one JSON document (a `{` whose first line is not
 * one); otherwise, why it is neither. `whole` is true when `head` is the entire content.
 */
export function sniffKind(head: Buffer, whole: boolean): FileKind | { readonly why: string } {
  if (head.subarray(0, COMPOUND_FILE.length).equals(COMPOUND_FILE)) return { why: 'an Outlook .msg in its binary format: save or export it as .eml (RFC 5322) first' };
  const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  let start = bom;
  while (start < head.length && isSpace(head[start]!)) start++;
  if (start === head.length) return { why: 'empty' };
  // JSON first: `{"id":` would pass for a header field name, which may hold braces and quotes.
  if (head[start] === 0x5b) return { why: 'a JSON array: give one JSON object a line (JSON lines, .jsonl)' };
  if (head[start] === 0x7b) {
    const newline = head.indexOf(0x0a, start);
    // A first line cut off by the end of the head: a long line, JSON lines are the likelier (and
    // a one-line JSON message is the same as a batch of one).
    if (newline < 0 && !whole) return 'batch';
    const end = newline < 0 ? head.length : newline;
    // A line that does not end in "}" is no JSON object: say so without parsing it (a failed
    // JSON.parse costs a SyntaxError with its stack, whatever the length).
    let last = end - 1;
    while (last > start && isSpace(head[last]!)) last--;
    if (head[last] !== 0x7d) return 'json';
    try {
      const value: unknown = JSON.parse(head.subarray(start, end).toString('utf8'));
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? 'batch' : 'json';
    } catch {
      return 'json';
    }
  }
  const lineEnd = head.indexOf(0x0a, bom);
  const firstLine = head.subarray(bom, lineEnd < 0 ? head.length : lineEnd).toString('latin1');
  if (HEADER_FIELD.test(firstLine)) return 'message';
  if (firstLine.startsWith('From ')) return { why: 'an mbox file: split it into one .eml per message' };
  return { why: 'neither an RFC 5322 message (a header block) nor JSON' };
}

/** A line of a JSON-lines input, numbered from 1; `text` is null for a line over the limit. */
export interface Line {
  readonly number: number;
  readonly text: string | null;
}

/**
 * Splits a byte stream into lines (LF or CRLF), one at a time as the stream is read: the only
 * bytes held are those of the line being read, and a line over `maxBytes` is dropped as it is
 * read and given with `text: null`. Linear in the input whatever its shape.
 */
export async function* readLines(chunks: AsyncIterable<Uint8Array>, maxBytes = MAX_LINE_BYTES): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  let number = 0;
  const finish = (last: Buffer): Line => {
    number++;
    let text: string | null = null;
    if (!tooLong) {
      parts.push(last);
      text = (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
    }
    parts = [];
    size = 0;
    tooLong = false;
    return { number, text };
  };
  for await (const chunk of chunks) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let newline = bytes.indexOf(0x0a); newline >= 0; newline = bytes.indexOf(0x0a, start)) {
      if (size + newline - start > maxBytes) tooLong = true;
      yield finish(bytes.subarray(start, newline));
      start = newline + 1;
    }
    if (start < bytes.length && !tooLong) {
      size += bytes.length - start;
      if (size > maxBytes) {
        tooLong = true;
        parts = [];
      } else {
        parts.push(bytes.subarray(start));
      }
    }
  }
  if (size > 0 || tooLong) yield finish(Buffer.alloc(0));
}

/** How many lines of a JSON-lines stream are not blank (for the progress indicator's total). */
async function countLines(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let count = 0;
  let open = false;
  for await (const chunk of chunks) {
    const bytes = chunk as Buffer;
    let start = 0;
    for (let newline = bytes.indexOf(0x0a); newline >= 0; newline = bytes.indexOf(0x0a, start)) {
      const length = newline - start;
      // A line is blank when empty or a lone CR; lines of spaces alone are rare enough to count.
      if (open || length > 1 || (length === 1 && bytes[start] !== 0x0d)) count++;
      open = false;
      start = newline + 1;
    }
    if (start < bytes.length) open = true;
  }
  return open ? count + 1 : count;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The fields with the envelope flags applied: each flag replaces the field it names. */
function withFlags(fields: Record<string, unknown>, flags: EnvelopeFlags): Record<string, unknown> {
  const merged = { ...fields };
  if (flags.mailFrom !== undefined) merged.mailFrom = flags.mailFrom === '<>' ? '' : flags.mailFrom;
  if (flags.rcpt !== undefined) merged.rcptTo = [...flags.rcpt];
  return merged;
}

/** `x.json` beside `x.eml` (or beside any message file, whatever its extension). */
function sidecarPath(messagePath: string): string {
  const extension = extname(messagePath);
  return `${extension === '' ? messagePath : messagePath.slice(0, -extension.length)}.json`;
}

/** A sidecar's fields; null when there is none; a MessageError when it cannot be used. */
async function readSidecar(messagePath: string): Promise<Record<string, unknown> | null | MessageError> {
  const path = sidecarPath(messagePath);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return new MessageError(`cannot read ${basename(path)}: ${errorText(error)}`);
  }
  return sidecarFields(text, basename(path));
}

function sidecarFields(text: string, name: string): Record<string, unknown> | MessageError {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return new MessageError(`${name}: ${errorText(error)}`);
  }
  if (!isRecord(value)) return new MessageError(`${name} must be a JSON object`);
  const unknown = Object.keys(value).filter((key) => !ENVELOPE_FIELDS.includes(key));
  if (unknown.length > 0) return new MessageError(`${name}: unknown field ${unknown.map((key) => JSON.stringify(key)).join(', ')}; an envelope sidecar has ${ENVELOPE_FIELDS.join(', ')}`);
  return value;
}


/** A message file and its sidecar: the decision's input, or why there is none. */
async function messageFileJob(path: string, id: string, flags: EnvelopeFlags): Promise<Job> {
  const sidecar = await readSidecar(path);
  if (sidecar instanceof MessageError) return { id, message: sidecar };
  const fields = withFlags(sidecar ?? {}, flags);
  if (fields.mailFrom === undefined) {
    return { id, message: new MessageError(sidecar === null ? `no envelope: write ${basename(sidecarPath(path))} (or give --mail-from and --rcpt for a single file)` : `no "mailFrom" in ${basename(sidecarPath(path))}`) };
  }
  try {
    return { id, message: { ...fields, headers: await readFile(path) } as unknown as OutboundMessage };
  } catch (error) {
    return { id, message: new MessageError(`cannot read ${path}: ${errorText(error)}`) };
  }
}

/** A batch line or a JSON message: its fields checked, its "file" read relative to `dir`. */
async function fieldsJob(value: unknown, dir: string, flags: EnvelopeFlags, fallbackId: string): Promise<Job> {
  if (!isRecord(value)) return { id: fallbackId, message: new MessageError('a message must be a JSON object') };
  const id = typeof value.id === 'string' ? value.id : typeof value.file === 'string' && value.file !== '' ? value.file : fallbackId;
  const invalid = (why: string): Job => ({ id, message: new MessageError(why) });
  const unknown = Object.keys(value).filter((key) => !MESSAGE_FIELDS.includes(key));
  if (unknown.length > 0) return invalid(`unknown field ${unknown.map((key) => JSON.stringify(key)).join(', ')}; known: ${MESSAGE_FIELDS.join(', ')}`);
  if (value.id !== undefined && typeof value.id !== 'string') return invalid('"id" must be a string');
  if (value.file !== undefined && value.raw !== undefined) return invalid('give "file" or "raw", not both');
  const { id: _id, file, raw, ...envelope } = value;
  let headers: string | Buffer | undefined;
  if (file !== undefined) {
    if (typeof file !== 'string' || file === '') return invalid('"file" must be a non-empty string');
    try {
      headers = await readFile(resolve(dir, file));
    } catch (error) {
      return invalid(`cannot read ${file}: ${errorText(error)}`);
    }
  } else if (raw !== undefined) {
    if (typeof raw !== 'string') return invalid('"raw" must be a string');
    headers = raw;
  }
  const fields = withFlags(envelope, flags);
  return { id, message: { ...fields, ...(headers === undefined ? {} : { headers }) } as unknown as OutboundMessage };
}

async function* batchJobs(chunks: AsyncIterable<Uint8Array>, name: string, dir: string): AsyncGenerator<Job> {
  for await (const line of readLines(chunks)) {
    const fallbackId = `${name}:${line.number}`;
    if (line.text === null) {
      yield { id: fallbackId, message: new MessageError(`line longer than ${MAX_LINE_BYTES / 2 ** 20} MiB, skipped`) };
      continue;
    }
    if (!/\S/.test(line.text)) continue;
    let value: unknown;
    try {
      value = JSON.parse(line.text);
    } catch (error) {
      yield { id: fallbackId, message: new MessageError(`not JSON: ${errorText(error)}`) };
      continue;
    }
    yield await fieldsJob(value, dir, {}, fallbackId);
  }
}

function isMessageName(name: string): boolean {
  return KIND_BY_EXTENSION[extname(name).toLowerCase()] === 'message';
}

/**
 * The message files of a directory (*.eml, *.msg), read entry by entry with opendir: in name
 * order when there are at most SORTED_DIRECTORY_MAX of them (the common case, and the same
 * output on every run), else in the order the directory lists them, so that memory stays bounded.
 */
async function* messageNames(dir: string): AsyncGenerator<string> {
  let first: string[] | null = [];
  for await (const entry of await opendir(dir, { bufferSize: 256 })) {
    if (!isMessageName(entry.name) || entry.isDirectory()) continue;
    if (first === null) {
      yield entry.name;
      continue;
    }
    first.push(entry.name);
    if (first.length > SORTED_DIRECTORY_MAX) {
      yield* first;
      first = null;
    }
  }
  if (first !== null) yield* first.sort();
}

async function* oneJob<T>(make: () => Promise<T>): AsyncGenerator<T> {
  yield await make();
}

/** Reads `path` from the start in chunks (64 KiB, so the line reader holds little). */
function fileChunks(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: 64 * 1024 });
}

async function readHead(path: string): Promise<{ head: Buffer; whole: boolean }> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    return { head: buffer.subarray(0, bytesRead), whole: bytesRead < SNIFF_BYTES };
  } finally {
    await handle.close();
  }
}

/** The kind of a file: its extension's, or else what its first bytes say; a UsageError when neither tells. */
async function fileKind(path: string, forced: FileKind | undefined): Promise<FileKind> {
  if (forced !== undefined) return forced;
  const byExtension = KIND_BY_EXTENSION[extname(path).toLowerCase()];
  let sniffed: FileKind | { why: string };
  let head: Buffer;
  try {
    const read = await readHead(path);
    head = read.head;
    sniffed = sniffKind(head, read.whole);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${errorText(error)}`);
  }
  // Many tools name JSON lines .json: a first line that is a whole object, with more after it,
  // is a batch (read line by line), not one document to read whole.
  if (byExtension === 'json' && sniffed === 'batch' && hasSecondLine(head)) return 'batch';
  // The extension decides, except for what no reader could take (an Outlook binary .msg).
  if (byExtension !== undefined && (typeof sniffed === 'string' || !sniffed.why.startsWith('an Outlook'))) return byExtension;
  if (typeof sniffed === 'string') return sniffed;
  throw new UsageError(`${path}: not a message this tool reads: ${sniffed.why}. Inputs are RFC 5322 messages (.eml, .msg), JSON messages or envelopes (.json) and JSON-lines batches (.jsonl, .ndjson).`);
}

/** Whether something other than white space follows the first line that is not blank. */
function hasSecondLine(head: Buffer): boolean {
  let start = 0;
  while (start < head.length && isSpace(head[start]!)) start++;
  const newline = head.indexOf(0x0a, start);
  return newline >= 0 && head.subarray(newline + 1).some((byte) => !isSpace(byte));
}

/** Whether the stream has a non-blank byte, read until the first one (a batch with no line is a usage error). */
async function hasContent(chunks: AsyncIterable<Uint8Array>): Promise<boolean> {
  for await (const chunk of chunks) {
    for (const byte of chunk) if (!isSpace(byte)) return true;
  }
  return false;
}

/** Parses a JSON message or envelope file read whole; a MessageError when it is not JSON. */
function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    return new MessageError(`${name}: not JSON: ${errorText(error)}`);
  }
}

/** The envelope check every single message named on the command line gets before the first decision. */
function requireEnvelope(name: string, fields: Record<string, unknown> | null, flags: EnvelopeFlags, where: string | null): void {
  const or = (field: string) => (where === null ? '' : `, or "${field}" in ${where}`);
  // Never a default null sender: that would make any message an NDR (rule 4).
  if (flags.mailFrom === undefined && fields?.mailFrom === undefined) {
    throw new UsageError(`${name}: no envelope sender: give --mail-from <address> (--mail-from '<>' for the null sender of a bounce)${or('mailFrom')}`);
  }
  if (flags.rcpt === undefined && fields?.rcptTo === undefined) throw new UsageError(`${name}: no envelope recipient: give --rcpt <address> (repeat for several)${or('rcptTo')}`);
}

function messageInput(path: string, flags: EnvelopeFlags): Input {
  const sidecar = sidecarPath(path);
  let fields: Record<string, unknown> | null | MessageError = null;
  try {
    fields = sidecarFields(readFileSync(sidecar, 'utf8'), basename(sidecar));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') fields = new MessageError(errorText(error));
  }
  // A sidecar that cannot be read is reported when the message is decided (exit status 1).
  if (!(fields instanceof MessageError)) requireEnvelope(basename(path), fields, flags, basename(sidecar));
  return {
    name: path,
    single: true,
    batch: false,
    messageFile: resolve(path),
    jobs: (jobFlags) => oneJob(() => messageFileJob(path, basename(path), jobFlags)),
    count: async () => 1,
  };
}

/** A .json file: one message in JSON (with "file" or "raw", or the envelope alone), or the sidecar of the message beside it. */
async function jsonInput(path: string, flags: EnvelopeFlags): Promise<Input> {
  const name = basename(path);
  const value = parseJson(await readFile(path, 'utf8'), name);
  const sibling = isRecord(value) && value.file === undefined && value.raw === undefined ? await messageBeside(path) : undefined;
  if (sibling !== undefined) return messageInput(sibling, flags);
  if (isRecord(value)) requireEnvelope(name, value, flags, name);
  return {
    name: path,
    single: true,
    batch: false,
    jobs: (jobFlags) => oneJob(async () => (value instanceof MessageError ? { id: name, message: value } : fieldsJob(value, dirname(path), jobFlags, name))),
    count: async () => 1,
  };
}

/** The .eml or .msg whose sidecar `jsonPath` is, if there is one. */
async function messageBeside(jsonPath: string): Promise<string | undefined> {
  const base = jsonPath.slice(0, -extname(jsonPath).length);
  for (const extension of ['.eml', '.msg']) {
    const found = await stat(base + extension).then((stats) => stats.isFile(), () => false);
    if (found) return base + extension;
  }
  return undefined;
}

function batchInput(name: string, dir: string, chunks: () => AsyncIterable<Uint8Array>, countable: boolean): Input {
  return {
    name,
    single: false,
    batch: true,
    jobs: () => batchJobs(chunks(), basename(name), dir),
    count: async () => (countable ? countLines(chunks()) : null),
  };
}

async function directoryInput(path: string): Promise<Input> {
  let any = false;
  for await (const _ of messageNames(path)) {
    any = true;
    break;
  }
  if (!any) throw new UsageError(`no message files (.eml, .msg) in ${path}`);
  return {
    name: path,
    single: false,
    batch: false,
    jobs: async function* () {
      for await (const name of messageNames(path)) yield await messageFileJob(join(path, name), name, {});
    },
    count: async () => {
      let count = 0;
      for await (const _ of messageNames(path)) count++;
      return count;
    },
  };
}

/**
 * Standard input: a JSON-lines batch, one JSON message, or one RFC 5322 message, told apart by
 * its first bytes (read ahead and then given back, so nothing is lost).
 */
async function stdinInput(stdin: AsyncIterable<Uint8Array>, flags: EnvelopeFlags, forced: FileKind | undefined): Promise<Input> {
  const iterator = stdin[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let ended = false;
  let headBytes = 0;
  // Enough to tell: up to the end of the first line that is not blank, or SNIFF_BYTES. Each
  // chunk is looked at once, as it comes (leading blank lines in any number cost linear time).
  let nonSpaceSeen = false;
  let lineEnded = false;
  for (;;) {
    if (nonSpaceSeen && (lineEnded || headBytes >= SNIFF_BYTES)) break;
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    const chunk = Buffer.from(next.value);
    head.push(chunk);
    headBytes += chunk.length;
    let from = 0;
    if (!nonSpaceSeen) {
      from = chunk.findIndex((byte) => !isSpace(byte));
      nonSpaceSeen = from >= 0;
    }
    if (nonSpaceSeen && !lineEnded) lineEnded = chunk.indexOf(0x0a, from) >= 0;
  }
  const prefix = Buffer.concat(head);
  let used = false;
  const chunks = (): AsyncIterable<Uint8Array> => {
    if (used) throw new Error('standard input is read once');
    used = true;
    return (async function* () {
      yield prefix;
      if (ended) return;
      for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
    })();
  };
  if (!prefix.some((byte) => !isSpace(byte))) throw new UsageError('standard input is empty: nothing to decide.');
  const sniffed = forced ?? sniffKind(prefix, ended);
  if (typeof sniffed !== 'string') throw new UsageError(`standard input is not a message this tool reads: ${sniffed.why}.`);
  const name = 'stdin';
  switch (sniffed) {
    case 'batch':
      return batchInput(name, process.cwd(), chunks, false);
    case 'json': {
      const parts: Buffer[] = [];
      for await (const chunk of chunks()) parts.push(Buffer.from(chunk));
      const value = parseJson(Buffer.concat(parts).toString('utf8'), name);
      if (isRecord(value)) requireEnvelope(name, value, flags, 'the JSON message');
      return {
        name,
        single: true,
        batch: false,
        jobs: (jobFlags) => oneJob(async () => (value instanceof MessageError ? { id: name, message: value } : fieldsJob(value, process.cwd(), jobFlags, name))),
        count: async () => 1,
      };
    }
    case 'message':
      requireEnvelope(name, null, flags, null);
      return {
        name,
        single: true,
        batch: false,
        jobs: (jobFlags) =>
          oneJob(async () => {
            const parts: Buffer[] = [];
            for await (const chunk of chunks()) parts.push(Buffer.from(chunk));
            return { id: name, message: { ...withFlags({}, jobFlags), headers: Buffer.concat(parts) } as unknown as OutboundMessage };
          }),
        count: async () => 1,
      };
  }
}

/** Where the inputs of a run come from: paths on the command line, `--batch` files, `-` for standard input. */
export interface InputRequest {
  readonly paths: readonly string[];
  readonly batches: readonly string[];
  readonly flags: EnvelopeFlags;
  readonly stdin: () => AsyncIterable<Uint8Array>;
}

/**
 * Plans the inputs of a run before the first decision: each path recognised (or a UsageError
 * saying why not), every single message named on the command line checked for an envelope
 * sender and recipients, the envelope flags allowed for one message only. Reads no more than the
 * start of each file (and the sidecars and JSON messages, which are small).
 */
export async function planInputs(request: InputRequest): Promise<Input[]> {
  const { flags } = request;
  const named = [...request.paths.map((path) => ({ path, forced: undefined })), ...request.batches.map((path) => ({ path, forced: 'batch' as const }))];
  if (named.filter(({ path }) => path === '-').length > 1) throw new UsageError('- (standard input) can be given once.');
  const inputs: Input[] = [];
  for (const { path, forced } of named) {
    if (path === '-') {
      inputs.push(await stdinInput(request.stdin(), flags, forced));
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(path)).isDirectory();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UsageError(code === 'ENOENT' ? `no such file or directory: ${path}` : `cannot read ${path}: ${errorText(error)}`);
    }
    if (isDirectory) {
      if (forced === 'batch') throw new UsageError(`--batch ${path}: a directory, not a JSON-lines file`);
      inputs.push(await directoryInput(path));
      continue;
    }
    const kind = await fileKind(path, forced);
    if (kind === 'batch') {
      if (!(await hasContent(fileChunks(path)))) throw new UsageError(`no messages in the batch ${path}`);
      inputs.push(batchInput(path, dirname(path), () => fileChunks(path), true));
    } else if (kind === 'json') {
      inputs.push(await jsonInput(path, flags));
    } else {
      inputs.push(messageInput(path, flags));
    }
    // `decide dir/*` names x.eml and x.json: one message, decided once.
    const added = inputs.at(-1)!;
    if (added.messageFile !== undefined && inputs.slice(0, -1).some((input) => input.messageFile === added.messageFile)) inputs.pop();
  }
  const hasFlags = flags.mailFrom !== undefined || flags.rcpt !== undefined;
  if (hasFlags && inputs.some((input) => input.batch)) throw new UsageError('--mail-from and --rcpt describe one message; a batch gives each envelope on its line.');
  if (hasFlags && (inputs.length > 1 || inputs.some((input) => !input.single))) {
    throw new UsageError('--mail-from and --rcpt describe one message; for several, put an envelope .json next to each .eml.');
  }
  return inputs;
}
