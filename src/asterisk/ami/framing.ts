/**
 * AMI byte framing (SPEC §6). Pure: no I/O, no timers, and nothing here throws
 * on bytes from the wire, because a parse error must never reach the event loop.
 *
 * Wire format: the server's first line is a greeting (`Asterisk Call Manager/9.0.0`,
 * CRLF, no blank line after it); after that every message is `Key: value` lines
 * closed by an empty line. We cut lines on LF bytes and decode each complete line
 * as UTF-8, so a chunk boundary anywhere (inside CRLF, inside a multi-byte
 * character) cannot change the result.
 */
import { SmsRouterError } from '../../errors.js';

/** Fields in wire order, keys exactly as received (AMI keys are case-insensitive). */
export type AmiFields = ReadonlyArray<readonly [string, string]>;

export interface AmiMessage {
  readonly fields: AmiFields;
  /** Case-insensitive; when a key repeats, the last occurrence wins. */
  get(key: string): string | undefined;
  /** Every value of a repeated key, in order (e.g. the `Output:` lines of a Command response). */
  getAll(key: string): string[];
}

export type AmiFrame =
  | { type: 'greeting'; text: string }
  | { type: 'message'; message: AmiMessage }
  | { type: 'error'; reason: string };

/** A key or value that would break the line framing (header injection). */
export class AmiUnsafeValueError extends SmsRouterError {
  constructor(
    readonly key: string,
    readonly part: 'key' | 'value',
  ) {
    // Never echo the value: it may be a secret or a message body.
    super('AMI_UNSAFE_VALUE', `AMI ${part} ${JSON.stringify(key.slice(0, 40))} contains a character that would break the framing`);
  }
}

/** A class (not an object literal) so `assert.deepStrictEqual` compares messages by their fields only. */
class Message implements AmiMessage {
  readonly fields: AmiFields;
  constructor(fields: Array<readonly [string, string]>) {
    this.fields = Object.freeze(fields.map((f) => Object.freeze(f)));
  }
  get(key: string): string | undefined {
    const k = key.toLowerCase();
    for (let i = this.fields.length - 1; i >= 0; i--) {
      const f = this.fields[i]!;
      if (f[0].toLowerCase() === k) return f[1];
    }
    return undefined;
  }
  getAll(key: string): string[] {
    const k = key.toLowerCase();
    return this.fields.filter((f) => f[0].toLowerCase() === k).map((f) => f[1]);
  }
}

export function createMessage(fields: AmiFields): AmiMessage {
  return new Message(fields.map(([k, v]) => [k, v] as const));
}

const LF = 0x0a;
const CR = 0x0d;
const DEFAULT_MAX = 1024 * 1024;

/**
 * One line: `Key: value` splits at the first ': ' (values such as `From: "x" <sip:a@b>` keep
 * their colons); `Key:` is a key with an empty value; anything else (command output, a
 * legacy `Response: Follows` body, garbage) is kept whole under the key '' so nothing is lost.
 */
function parseLine(text: string): readonly [string, string] {
  const i = text.indexOf(': ');
  if (i > 0) return [text.slice(0, i), text.slice(i + 2)];
  if (text.length > 1 && text.indexOf(':') === text.length - 1) return [text.slice(0, -1), ''];
  return ['', text];
}

export interface AmiParserOptions {
  /** A message (or the greeting) longer than this is reported as an error frame and skipped. Default 1 MiB. */
  maxMessageBytes?: number;
  /** True (default) when parsing what a server sends; false to parse what a client sends (no greeting). */
  expectGreeting?: boolean;
}

export class AmiParser {
  private readonly max: number;
  private awaitingGreeting: boolean;
  // The line being received: its bytes (copied, the caller may reuse its buffer),
  // its length, and its first byte (enough to tell "" and "\r" from a real line
  // while we are discarding and no longer keep the bytes).
  // One buffer that grows by doubling, not one Buffer per piece: fed one byte at a
  // time, a Buffer per byte cost ~110 heap bytes per byte held (7 MB for a 64 KiB
  // line; found by test/fuzz/ami-framing.test.ts). Now at most twice the limit.
  private line: Buffer = Buffer.alloc(0);
  private lineKept = 0; // bytes of `line` in use (lineBytes counts discarded ones too)
  private lineBytes = 0;
  private lineFirst = -1;
  private fields: Array<readonly [string, string]> = [];
  private messageBytes = 0;
  // After an oversized message: drop everything up to the next blank line, then resynchronise.
  private discarding = false;

  constructor(options: AmiParserOptions = {}) {
    this.max = options.maxMessageBytes ?? DEFAULT_MAX;
    this.awaitingGreeting = options.expectGreeting ?? true;
  }

  /** Feeds bytes split anywhere; returns the frames completed by them, in order. */
  push(chunk: Uint8Array): AmiFrame[] {
    const out: AmiFrame[] = [];
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(LF, start);
      const end = nl === -1 ? buf.length : nl;
      this.append(buf.subarray(start, end), out);
      if (nl === -1) break;
      this.endLine(out);
      start = nl + 1;
    }
    return out;
  }

  private append(piece: Buffer, out: AmiFrame[]): void {
    if (piece.length === 0) return;
    if (this.lineFirst === -1) this.lineFirst = piece[0]!;
    this.lineBytes += piece.length;
    if (this.discarding) return;
    if (this.messageBytes + this.lineBytes > this.max) {
      this.overflow(out);
      return;
    }
    const need = this.lineKept + piece.length;
    if (need > this.line.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.line.length, 256));
      this.line.copy(grown, 0, 0, this.lineKept);
      this.line = grown;
    }
    piece.copy(this.line, this.lineKept);
    this.lineKept = need;
  }

  private overflow(out: AmiFrame[]): void {
    out.push({ type: 'error', reason: `AMI message longer than ${this.max} bytes skipped` });
    // The greeting slot is used up too: a server that opens with a huge line is not AMI.
    this.awaitingGreeting = false;
    this.discarding = true;
    this.fields = [];
    this.messageBytes = 0;
    this.line = Buffer.alloc(0);
    this.lineKept = 0;
  }

  private endLine(out: AmiFrame[]): void {
    const blank = this.lineBytes === 0 || (this.lineBytes === 1 && this.lineFirst === CR);
    const bytes = this.lineBytes + 1;
    const kept = this.lineKept;
    this.lineKept = 0;
    this.lineBytes = 0;
    this.lineFirst = -1;

    if (this.discarding) {
      if (blank) this.discarding = false;
      return;
    }
    if (this.messageBytes + bytes > this.max) {
      this.overflow(out);
      if (blank) this.discarding = false;
      return;
    }
    let text = this.line.toString('utf8', 0, kept); // invalid UTF-8 becomes U+FFFD, never an exception
    if (this.line.length > 64 * 1024) this.line = Buffer.alloc(0); // do not keep a big line's buffer for good
    if (text.endsWith('\r')) text = text.slice(0, -1);

    if (this.awaitingGreeting) {
      if (text === '') return; // tolerate stray blank lines before the greeting
      this.awaitingGreeting = false;
      out.push({ type: 'greeting', text });
      return;
    }
    if (text === '') {
      if (this.fields.length > 0) out.push({ type: 'message', message: new Message(this.fields) });
      this.fields = [];
      this.messageBytes = 0;
      return;
    }
    this.messageBytes += bytes;
    this.fields.push(parseLine(text));
  }
}

// CR, LF and NUL end a line somewhere (Asterisk reads C strings); in a key, ':' would
// move the key/value split and whitespace or other controls have no business at all.
const UNSAFE_VALUE = /[\r\n\0]/;
const SAFE_KEY = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * `Action: X\r\nKey: value\r\n...\r\n\r\n`. Throws AmiUnsafeValueError before building
 * anything if a key or value could inject a line, so no partial action can reach a socket.
 */
export function encodeAction(action: string, fields: Record<string, string> | AmiFields): Buffer {
  const list: AmiFields = [['Action', action], ...(Array.isArray(fields) ? (fields as AmiFields) : Object.entries(fields))];
  let text = '';
  for (const [key, value] of list) {
    if (typeof key !== 'string' || !SAFE_KEY.test(key)) throw new AmiUnsafeValueError(String(key), 'key');
    if (typeof value !== 'string' || UNSAFE_VALUE.test(value)) throw new AmiUnsafeValueError(key, 'value');
    text += `${key}: ${value}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'utf8');
}
